"""engage's store: SQLModel tables, the queries on them, engines (SQLite or PostgreSQL),
migrations and data retention.

Nothing connects at import, and nothing is re-exported here: import each name from its module,
for example ``from experiments.store.decisions import insert_decision``. An entry point opens a
:class:`~experiments.store.database.Database` with
:func:`~experiments.store.database.open_database`, checks the schema with
``database.check_schema()`` (or applies migrations with :func:`~experiments.store.schema.upgrade`),
then opens ``database.session()`` and calls the query functions: plain functions taking a
``Session`` and keyword-only arguments, which never commit (the caller owns the transaction).

The store imports nothing of ``experiments`` but :mod:`experiments.vocabulary` and its own
modules, so it can be used, tested and moved on its own.

Modules:

- :mod:`~experiments.store.database`: :class:`Database` (sessions, ping, schema check, the
  session-level advisory lock) over one SQLAlchemy engine.
- :mod:`~experiments.store.connection`: database URLs and :func:`make_engine`.
- :mod:`~experiments.store.deadlines`: client-side deadlines on PostgreSQL connections.
- :mod:`~experiments.store.models`: the tables, as SQLModel table models.
- :mod:`~experiments.store.schema`: migrations (``engage db upgrade``) and the schema check.
- :mod:`~experiments.store.errors`: the store's error tree (drawn in its docstring).
- :mod:`~experiments.store.experiments`: the ``experiment`` table.
- :mod:`~experiments.store.decisions`: the ``decision`` table.
- :mod:`~experiments.store.attribution`: the decisions an outcome is attributed to, in bulk.
- :mod:`~experiments.store.outcomes`: the ``outcome`` table.
- :mod:`~experiments.store.rewards`: the ``reward`` table and the learner's rows.
- :mod:`~experiments.store.snapshots`: the ``policy_snapshot`` table and its state format.
- :mod:`~experiments.store.promotions`: the ``policy_promotion`` table (safe promotion's record
  of each learned snapshot) and the snapshot that serves.
- :mod:`~experiments.store.strategies`: the ``strategy_assignment`` and ``strategy_snapshot``
  tables (strategy experiments: a customer's strategy per epoch and its KPI).
- :mod:`~experiments.store.group_commit`: :class:`GroupCommit`, concurrent writers of a process
  sharing one transaction and commit (the decision and outcome paths).
- :mod:`~experiments.store.leases`: the ``learner_lease`` table (one learner at a time).
- :mod:`~experiments.store.api_keys`: the ``api_key`` table.
- :mod:`~experiments.store.key_hashing`: API key text and its salted PBKDF2 hashes (no queries).
- :mod:`~experiments.store.aggregates`: the counts and reward sums reports need.
- :mod:`~experiments.store.guardrails`: per-customer rows and events the guardrail checks read.
- :mod:`~experiments.store.retention`: purging old contexts, erasing a customer.
- ``_sql`` (private): what the query modules share (chunked ``IN`` lists, idempotent inserts).
- ``migrations/``: the alembic scripts, shipped with the package.
"""
