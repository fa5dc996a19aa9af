"""Queries over engage's store: plain functions taking a ``Session`` and keyword-only arguments.

Transactions belong to the caller: no function here commits. Write with
``with Session(engine) as session, session.begin(): ...`` (or call ``session.commit()``).

Idempotent inserts (outcomes by ``outcome_id``, decisions by ``request_id``, rewards by decision,
snapshots by version, experiments by key) use ``INSERT .. ON CONFLICT DO NOTHING`` on SQLite and
PostgreSQL, so a duplicate never aborts the caller's transaction and no SAVEPOINT is needed (they
are unreliable on SQLite with Python's driver; see :mod:`experiments.store.engine`). Other
dialects fall back to one SAVEPOINT per row.

Insert functions take new (transient) model instances; the instance that ends up stored becomes
persistent in ``session`` so later attribute changes are flushed as UPDATEs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, text, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, SQLModel, col, select

from experiments.store.models import (
    ApiKey,
    Decision,
    Experiment,
    LearnerLease,
    Outcome,
    PolicySnapshot,
    Reward,
    utcnow,
)
from experiments.vocabulary import (
    Attribution,
    DecisionStatus,
    ExperimentStatus,
    Group,
    Scope,
)

# Ids per IN (...): well under SQLite's 32766 and PostgreSQL's 65535 bound parameters.
CHUNK = 500

_T = TypeVar("_T")
_M = TypeVar("_M", bound=SQLModel)


class StoreError(Exception):
    """Base of the store's errors (the tree is drawn in :mod:`experiments.store`)."""


class DuplicateError(StoreError):
    """A row with the same unique key already exists."""


class SnapshotVersionError(DuplicateError):
    """A policy snapshot's version must be strictly greater than the newest stored one."""


class DuplicateRequestError(DuplicateError):
    """A decision with this ``request_id`` already exists in the experiment; it is ``existing``.
    Nothing was written and the session's transaction is still usable."""

    def __init__(self, existing: Decision) -> None:
        super().__init__(
            f"request {existing.request_id!r} of experiment {existing.experiment_key!r} already "
            f"has decision {existing.id!r}"
        )
        self.existing = existing


class NotFoundError(StoreError, LookupError):
    """No row with this key."""


# --------------------------------------------------------------------------------------------
# helpers


def _chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


def _insert_ignoring_conflicts(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str],
    returning: str,
) -> list[Any]:
    """Insert ``rows``, skipping those that violate the unique key ``conflict``; return the
    ``returning`` column of the rows actually inserted.

    One cached statement runs as an executemany, which SQLAlchemy turns into batched multi-row
    ``INSERT .. VALUES .. RETURNING`` ("insertmanyvalues"). Rows go in key order so that
    PostgreSQL transactions inserting overlapping batches take the key locks in the same order
    instead of deadlocking on each other.
    """
    if not rows:
        return []
    table = _table(model)
    ordered = sorted(rows, key=lambda row: tuple(str(row[c]) for c in conflict))
    name = _dialect(session)
    if name in ("sqlite", "postgresql"):
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=list(conflict))
            .returning(table.c[returning])
        )
        return list(session.exec(stmt, params=[dict(row) for row in ordered]).scalars())
    # Any other dialect: one savepoint per row.
    inserted = []
    for row in ordered:
        try:
            with session.begin_nested():
                session.exec(sa_insert(table), params=dict(row))
        except IntegrityError:
            continue
        inserted.append(row[returning])
    return inserted


def _fill_defaults(
    model: type[SQLModel], values: Mapping[str, Any], *, exclude: Collection[str] = ()
) -> dict[str, Any]:
    """A full row for ``model`` from ``values`` plus the fields' defaults, without building a
    model instance (much cheaper per row for large batches)."""
    fields = model.model_fields
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no field(s) {sorted(unknown)}")
    row: dict[str, Any] = {}
    for name, field in fields.items():
        if name in exclude:
            continue
        if name in values:
            row[name] = values[name]
        elif field.is_required():
            raise ValueError(f"The {name!r} field of {model.__name__} is required.")
        else:
            row[name] = field.get_default(call_default_factory=True)
    return row


def _row(instance: SQLModel, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    return instance.model_dump(exclude=set(exclude))


def _attach(session: Session, instance: _M) -> _M:
    """Make a just-inserted transient instance persistent in ``session`` without a SELECT."""
    make_transient_to_detached(instance)
    session.add(instance)
    return instance


def _now(now: datetime | None) -> datetime:
    return utcnow() if now is None else now


# --------------------------------------------------------------------------------------------
# experiments


def create_experiment(session: Session, *, experiment: Experiment) -> Experiment:
    """Store a new experiment; :class:`DuplicateError` if its key exists."""
    inserted = _insert_ignoring_conflicts(
        session, Experiment, [_row(experiment)], conflict=["key"], returning="key"
    )
    if not inserted:
        raise DuplicateError(f"experiment {experiment.key!r} already exists")
    return _attach(session, experiment)


def get_experiment(session: Session, *, key: str) -> Experiment | None:
    """The experiment ``key``, or ``None``."""
    return session.get(Experiment, key)


def require_experiment(session: Session, *, key: str) -> Experiment:
    """The experiment ``key``; :class:`NotFoundError` if there is none."""
    experiment = session.get(Experiment, key)
    if experiment is None:
        raise NotFoundError(f"experiment {key!r} not found")
    return experiment


def list_experiments(session: Session, *, status: str | None = None) -> list[Experiment]:
    """Every experiment (or those with ``status``), by key."""
    stmt = select(Experiment).order_by(col(Experiment.key))
    if status is not None:
        stmt = stmt.where(Experiment.status == _check_choice(status, ExperimentStatus, "status"))
    return list(session.exec(stmt))


def set_experiment_status(
    session: Session, *, key: str, status: str, now: datetime | None = None
) -> Experiment:
    """Set an experiment's status (``draft|running|paused|stopped``); transitions are the engine's
    business. :class:`NotFoundError` if there is no such experiment."""
    experiment = require_experiment(session, key=key)
    experiment.status = _check_choice(status, ExperimentStatus, "status")
    experiment.updated_at = _now(now)
    session.add(experiment)
    session.flush()
    return experiment


def update_experiment(
    session: Session,
    *,
    key: str,
    now: datetime | None = None,
    description: str | None = None,
    spec: dict[str, Any] | None = None,
    exploration_floor: float | None = None,
    apprentice: bool | None = None,
) -> Experiment:
    """Change the given fields (``None`` leaves a field as it is) and ``updated_at``."""
    experiment = require_experiment(session, key=key)
    changes = {
        "description": description,
        "spec": spec,
        "exploration_floor": exploration_floor,
        "apprentice": apprentice,
    }
    for field, value in changes.items():
        if value is not None:
            setattr(experiment, field, value)
    experiment.updated_at = _now(now)
    session.add(experiment)
    session.flush()
    return experiment


def _check_choice(value: str, choices: type[Any], field: str) -> str:
    allowed = [c.value for c in choices]
    if value not in allowed:
        raise ValueError(f"The {field!r} must be one of {'|'.join(allowed)}. Got {value!r}.")
    return str(value)


# --------------------------------------------------------------------------------------------
# decisions


def insert_decision(session: Session, *, decision: Decision) -> Decision:
    """Store a new decision and return it (persistent in ``session``).

    When ``decision.request_id`` was already used in this experiment nothing is written and
    :class:`DuplicateRequestError` carries the earlier decision as ``existing``: a retried request
    gets the same answer. The transaction stays usable (no IntegrityError is raised).
    """
    inserted = _insert_ignoring_conflicts(
        session,
        Decision,
        [_row(decision)],
        conflict=["experiment_key", "request_id"],
        returning="id",
    )
    if inserted:
        return _attach(session, decision)
    existing = (
        None
        if decision.request_id is None
        else find_decision_by_request(
            session, experiment_key=decision.experiment_key, request_id=decision.request_id
        )
    )
    if existing is None:  # pragma: no cover - only a request id can conflict, and rows stay
        raise StoreError(f"decision {decision.id!r} was not stored")
    raise DuplicateRequestError(existing)


def insert_decisions(session: Session, *, decisions: Sequence[Decision | Mapping[str, Any]]) -> int:
    """Store many new decisions at once (no request ids: simulations and bulk loads).

    Returns how many were written; a decision whose ``(experiment, request_id)`` already exists
    is skipped, exactly as :func:`insert_decision` would refuse it.
    """
    inserted = _insert_ignoring_conflicts(
        session,
        Decision,
        [decision if isinstance(decision, Mapping) else _row(decision) for decision in decisions],
        conflict=["experiment_key", "request_id"],
        returning="id",
    )
    return len(inserted)


def lock_decision_statuses(
    session: Session, *, decision_ids: Sequence[str], shared: bool
) -> dict[str, str]:
    """Lock the decisions' rows until the transaction ends and return their statuses.

    PostgreSQL: ``FOR SHARE`` (``shared``, when recording outcomes) or ``FOR UPDATE`` (when
    joining rewards), so a reward join and an outcome insert on the same decision serialise.
    SQLite has no row locks (the clause is dropped); there a transaction that has written
    holds the database's single write lock, which serialises the two just the same.
    """
    statuses: dict[str, str] = {}
    for chunk in _chunks(sorted(set(decision_ids))):
        stmt = (
            select(Decision.id, Decision.status)
            .where(col(Decision.id).in_(chunk))
            .order_by(col(Decision.id))
            .with_for_update(read=shared)
        )
        statuses.update(dict(session.exec(stmt).all()))
    return statuses


def mark_outcomes_late(session: Session, *, outcome_ids: Sequence[str]) -> int:
    """Relabel outcomes ``late``: their decision's reward was computed without them."""
    changed = 0
    for chunk in _chunks(list(dict.fromkeys(outcome_ids))):
        stmt = (
            update(Outcome)
            .where(col(Outcome.outcome_id).in_(chunk))
            .values(attribution=Attribution.LATE.value)
            .execution_options(synchronize_session=False)
        )
        changed += session.exec(stmt).rowcount
    return changed


def get_decision(session: Session, *, decision_id: str) -> Decision | None:
    """The decision ``decision_id``, or ``None``."""
    return session.get(Decision, decision_id)


def get_decisions(session: Session, *, decision_ids: Sequence[str]) -> dict[str, Decision]:
    """The decisions among ``decision_ids`` that exist, by id."""
    found: dict[str, Decision] = {}
    for chunk in _chunks(list(dict.fromkeys(decision_ids))):
        for decision in session.exec(select(Decision).where(col(Decision.id).in_(chunk))):
            found[decision.id] = decision
    return found


class DecisionHead(NamedTuple):
    """The columns outcome attribution needs, without the decision's JSON payloads."""

    id: str
    experiment_key: str
    customer_id: str
    status: str
    window_closes_at: datetime | None


def decision_heads(session: Session, *, decision_ids: Sequence[str]) -> dict[str, DecisionHead]:
    """:func:`get_decisions` without context, action and exclusions: cheap in bulk."""
    found: dict[str, DecisionHead] = {}
    for chunk in _chunks(list(dict.fromkeys(decision_ids))):
        stmt = select(
            Decision.id,
            Decision.experiment_key,
            Decision.customer_id,
            Decision.status,
            Decision.window_closes_at,
        ).where(col(Decision.id).in_(chunk))
        for row in session.exec(stmt):
            found[row[0]] = DecisionHead(*row)
    return found


def find_decision_by_request(
    session: Session, *, experiment_key: str, request_id: str
) -> Decision | None:
    """The decision made for ``request_id`` in ``experiment_key``, or ``None``."""
    stmt = select(Decision).where(
        Decision.experiment_key == experiment_key, Decision.request_id == request_id
    )
    return session.exec(stmt).first()


def count_recent_decisions(
    session: Session, *, experiment_key: str, customer_id: str, since: datetime
) -> int:
    """How many decisions (not suppressed ones) ``customer_id`` got in ``experiment_key`` at or
    after ``since``: the count behind contact limits."""
    stmt = select(func.count()).where(
        Decision.experiment_key == experiment_key,
        Decision.customer_id == customer_id,
        Decision.created_at >= since,
        Decision.status != DecisionStatus.SUPPRESSED.value,
    )
    return int(session.exec(stmt).one())


def count_recent_decisions_by_customer(
    session: Session, *, experiment_key: str, customer_ids: Sequence[str], since: datetime
) -> dict[str, int]:
    """:func:`count_recent_decisions` for many customers in one query per chunk."""
    counts: dict[str, int] = {}
    for chunk in _chunks(list(dict.fromkeys(customer_ids))):
        stmt = (
            select(Decision.customer_id, func.count())
            .where(
                Decision.experiment_key == experiment_key,
                col(Decision.customer_id).in_(chunk),
                Decision.created_at >= since,
                Decision.status != DecisionStatus.SUPPRESSED.value,
            )
            .group_by(Decision.customer_id)
        )
        counts.update({customer: int(count) for customer, count in session.exec(stmt)})
    return counts


def latest_open_decision(
    session: Session,
    *,
    experiment_key: str,
    customer_id: str,
    before: datetime,
    include_unactivated: bool = False,
) -> Decision | None:
    """The customer's newest open decision in ``experiment_key`` made at or before ``before``
    (an outcome's ``occurred_at``): where an outcome naming only the customer is attributed.

    Deferred decisions count only once activated at or before ``before`` (the customer cannot
    react to an offer never shown), unless ``include_unactivated``.
    """
    conditions: list[ColumnElement[bool]] = [
        Decision.experiment_key == experiment_key,
        Decision.customer_id == customer_id,
        Decision.status == DecisionStatus.OPEN.value,
        Decision.created_at <= before,
    ]
    if not include_unactivated:
        conditions.append(
            or_(
                col(Decision.deferred).is_(False),
                and_(col(Decision.activated_at).is_not(None), Decision.activated_at <= before),  # type: ignore[operator]
            )
        )
    stmt = (
        select(Decision)
        .where(*conditions)
        .order_by(col(Decision.created_at).desc(), col(Decision.id).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def activate_decision(
    session: Session, *, decision_id: str, activated_at: datetime, window_closes_at: datetime
) -> bool:
    """Activate a deferred, open, not yet activated decision; ``False`` if it was not one
    (already activated, not deferred, not open, or unknown). Safe against concurrent calls."""
    stmt = (
        update(Decision)
        .where(
            col(Decision.id) == decision_id,
            col(Decision.deferred).is_(True),
            col(Decision.activated_at).is_(None),
            col(Decision.status) == DecisionStatus.OPEN.value,
        )
        .values(activated_at=activated_at, window_closes_at=window_closes_at)
        .execution_options(synchronize_session="fetch")
    )
    return session.exec(stmt).rowcount == 1


def set_decision_status(
    session: Session,
    *,
    decision_ids: Sequence[str],
    status: str,
    from_status: str | None = DecisionStatus.OPEN.value,
) -> int:
    """Set ``status`` on the decisions among ``decision_ids`` whose status is ``from_status``
    (any status if ``None``); returns how many changed."""
    _check_choice(status, DecisionStatus, "status")
    changed = 0
    for chunk in _chunks(list(dict.fromkeys(decision_ids))):
        conditions: list[ColumnElement[bool]] = [col(Decision.id).in_(chunk)]
        if from_status is not None:
            conditions.append(col(Decision.status) == from_status)
        stmt = (
            update(Decision)
            .where(*conditions)
            .values(status=status)
            .execution_options(synchronize_session="fetch")
        )
        changed += session.exec(stmt).rowcount
    return changed


def decisions_due_for_reward(
    session: Session, *, experiment_key: str, now: datetime, limit: int = 1000
) -> list[Decision]:
    """Open decisions whose reward window has closed (``window_closes_at <= now``), oldest window
    first. Deferred decisions qualify only once activated."""
    stmt = (
        select(Decision)
        .where(
            Decision.experiment_key == experiment_key,
            Decision.status == DecisionStatus.OPEN.value,
            col(Decision.window_closes_at).is_not(None),
            Decision.window_closes_at <= now,  # type: ignore[operator]
            or_(col(Decision.deferred).is_(False), col(Decision.activated_at).is_not(None)),
        )
        .order_by(col(Decision.window_closes_at), col(Decision.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def decisions_with_outcomes_since(
    session: Session, *, experiment_key: str, since: datetime, limit: int = 1000
) -> list[Decision]:
    """Open decisions with an attributed outcome received at or after ``since``: candidates for
    an early reward when the definition cannot change any more (an ``event`` reward that fired).
    """
    fresh = select(Outcome.decision_id).where(
        Outcome.experiment_key == experiment_key,
        Outcome.attribution == Attribution.ATTRIBUTED.value,
        Outcome.received_at >= since,
        col(Outcome.decision_id).is_not(None),
    )
    stmt = (
        select(Decision)
        .where(
            Decision.experiment_key == experiment_key,
            Decision.status == DecisionStatus.OPEN.value,
            col(Decision.id).in_(fresh),
        )
        .order_by(col(Decision.created_at), col(Decision.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def expired_deferred_decisions(
    session: Session, *, experiment_key: str, created_before: datetime, limit: int = 1000
) -> list[Decision]:
    """Open deferred decisions never activated and created before ``created_before``: to be
    marked ``never_activated`` (not learned from, reported as such)."""
    stmt = (
        select(Decision)
        .where(
            Decision.experiment_key == experiment_key,
            Decision.status == DecisionStatus.OPEN.value,
            col(Decision.deferred).is_(True),
            col(Decision.activated_at).is_(None),
            Decision.created_at < created_before,
        )
        .order_by(col(Decision.created_at), col(Decision.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


# --------------------------------------------------------------------------------------------
# outcomes


@dataclass(frozen=True)
class InsertResult:
    """What an idempotent batch insert did: ``accepted`` new rows and ``duplicates`` skipped
    (already stored, or repeated earlier in the batch). Unpacks as ``accepted, duplicates``.

    ``inserted`` holds the keys of the rows this insert wrote: a caller that goes on to change
    rows of the batch in the same transaction must change only those, since the duplicates
    are rows stored (and settled) by an earlier request.
    """

    accepted: int
    duplicates: int
    inserted: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[int]:
        return iter((self.accepted, self.duplicates))


def insert_outcomes(
    session: Session, *, outcomes: Sequence[Outcome | Mapping[str, Any]]
) -> InsertResult:
    """Store outcomes, idempotent by ``outcome_id``: an id seen before (or earlier in the same
    batch) is skipped and counted as a duplicate. Accepts models or mappings of their fields.
    The result's ``inserted`` lists the outcome ids written."""
    rows: dict[str, dict[str, Any]] = {}
    for item in outcomes:
        row = (
            _row(item, exclude=("id",))
            if isinstance(item, Outcome)
            else _fill_defaults(Outcome, item, exclude=("id",))
        )
        rows.setdefault(row["outcome_id"], row)
    inserted = _insert_ignoring_conflicts(
        session, Outcome, list(rows.values()), conflict=["outcome_id"], returning="outcome_id"
    )
    return InsertResult(
        accepted=len(inserted), duplicates=len(outcomes) - len(inserted), inserted=tuple(inserted)
    )


def get_outcome(session: Session, *, outcome_id: str) -> Outcome | None:
    """The outcome with the client's idempotency key ``outcome_id``, or ``None``."""
    return session.exec(select(Outcome).where(Outcome.outcome_id == outcome_id)).first()


def outcomes_for_decisions(
    session: Session,
    *,
    decision_ids: Sequence[str],
    attributions: Collection[str] | None = None,
) -> list[Outcome]:
    """The outcomes of these decisions, ordered by decision id, then ``occurred_at``.

    All attributions by default; pass ``attributions=("attributed",)`` to leave out the late
    ones (kept for the report, but they do not change a reward).
    """
    ids = list(dict.fromkeys(decision_ids))
    found: list[Outcome] = []
    for chunk in _chunks(ids):
        stmt = select(Outcome).where(col(Outcome.decision_id).in_(chunk))
        if attributions is not None:
            stmt = stmt.where(col(Outcome.attribution).in_([str(a) for a in attributions]))
        found.extend(session.exec(stmt))
    found.sort(key=lambda o: (o.decision_id or "", o.occurred_at, o.id or 0))
    return found


# --------------------------------------------------------------------------------------------
# rewards


def insert_reward(session: Session, *, reward: Reward) -> bool:
    """Store a decision's reward; ``False`` (and nothing written) if it already has one.
    Setting the decision's status to ``rewarded`` is the caller's (same transaction)."""
    return bool(insert_rewards(session, rewards=[reward]))


def insert_rewards(session: Session, *, rewards: Sequence[Reward]) -> int:
    """Store rewards, skipping decisions that already have one; returns how many were new."""
    rows: dict[str, dict[str, Any]] = {}
    for reward in rewards:
        rows.setdefault(reward.decision_id, _row(reward))
    inserted = _insert_ignoring_conflicts(
        session, Reward, list(rows.values()), conflict=["decision_id"], returning="decision_id"
    )
    return len(inserted)


@dataclass(frozen=True)
class LearningRow:
    """One reward not yet learned, with the decision fields a policy update needs."""

    decision_id: str
    value: float
    computed_at: datetime
    context: dict[str, Any]
    action_index: int
    propensity: float | None
    group: str
    policy_version: int
    customer_id: str
    created_at: datetime


def reward_rows(
    session: Session,
    *,
    experiment_key: str,
    learned: bool | None = None,
    limit: int | None = None,
) -> list[LearningRow]:
    """Rewards joined with their decisions, oldest first (suppressed decisions have no reward).

    ``learned``: only rewards already folded into a snapshot (True), only those not yet
    (False), or all (None).
    """
    stmt = (
        select(
            Reward.decision_id,
            Reward.value,
            Reward.computed_at,
            Decision.context,
            Decision.action_index,
            Decision.propensity,
            Decision.group,
            Decision.policy_version,
            Decision.customer_id,
            Decision.created_at,
        )
        .select_from(Reward)
        .join(Decision, col(Decision.id) == col(Reward.decision_id))
        .where(Reward.experiment_key == experiment_key, col(Decision.action_index).is_not(None))
        .order_by(col(Reward.computed_at), col(Reward.decision_id))
    )
    if learned is not None:
        column = col(Reward.learned_version)
        stmt = stmt.where(column.is_not(None) if learned else column.is_(None))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [LearningRow(*row) for row in session.exec(stmt)]


def unlearned_rewards(
    session: Session, *, experiment_key: str, limit: int = 10_000
) -> list[LearningRow]:
    """Rewards with no ``learned_version`` yet, oldest first, joined with their decisions
    (decisions without an action, i.e. suppressed ones, are skipped)."""
    return reward_rows(session, experiment_key=experiment_key, learned=False, limit=limit)


def mark_rewards_learned(session: Session, *, decision_ids: Sequence[str], version: int) -> int:
    """Record that snapshot ``version`` folded in these rewards (only those not yet learned);
    returns how many changed."""
    changed = 0
    for chunk in _chunks(list(dict.fromkeys(decision_ids))):
        stmt = (
            update(Reward)
            .where(col(Reward.decision_id).in_(chunk), col(Reward.learned_version).is_(None))
            .values(learned_version=version)
            .execution_options(synchronize_session="fetch")
        )
        changed += session.exec(stmt).rowcount
    return changed


def count_rewards(session: Session, *, experiment_key: str, learned: bool | None = None) -> int:
    """How many rewards ``experiment_key`` has (only learned or unlearned ones if given)."""
    stmt = select(func.count()).select_from(Reward).where(Reward.experiment_key == experiment_key)
    if learned is True:
        stmt = stmt.where(col(Reward.learned_version).is_not(None))
    elif learned is False:
        stmt = stmt.where(col(Reward.learned_version).is_(None))
    return int(session.exec(stmt).one())


def count_unlearned_rewards(session: Session, *, experiment_key: str) -> int:
    """How many rewards of ``experiment_key`` no snapshot has folded in yet."""
    return count_rewards(session, experiment_key=experiment_key, learned=False)


# --------------------------------------------------------------------------------------------
# policy snapshots


def latest_snapshot(session: Session, *, experiment_key: str) -> PolicySnapshot | None:
    """The newest snapshot of ``experiment_key``, or ``None``."""
    stmt = (
        select(PolicySnapshot)
        .where(PolicySnapshot.experiment_key == experiment_key)
        .order_by(col(PolicySnapshot.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def latest_snapshot_version(session: Session, *, experiment_key: str) -> int | None:
    """The newest snapshot version of ``experiment_key`` without loading its state."""
    stmt = select(func.max(PolicySnapshot.version)).where(
        PolicySnapshot.experiment_key == experiment_key
    )
    return session.exec(stmt).one()


def get_snapshot(session: Session, *, experiment_key: str, version: int) -> PolicySnapshot | None:
    """Snapshot ``version`` of ``experiment_key``, or ``None``."""
    stmt = select(PolicySnapshot).where(
        PolicySnapshot.experiment_key == experiment_key, PolicySnapshot.version == version
    )
    return session.exec(stmt).first()


def insert_snapshot(session: Session, *, snapshot: PolicySnapshot) -> PolicySnapshot:
    """Publish a snapshot; its version must be strictly greater than the newest stored one,
    else :class:`SnapshotVersionError` (the unique key settles races between learners)."""
    newest = latest_snapshot_version(session, experiment_key=snapshot.experiment_key)
    if newest is not None and snapshot.version <= newest:
        raise SnapshotVersionError(
            f"snapshot version {snapshot.version} of {snapshot.experiment_key!r} is not above "
            f"the newest stored version {newest}"
        )
    inserted = _insert_ignoring_conflicts(
        session,
        PolicySnapshot,
        [_row(snapshot, exclude=("id",))],
        conflict=["experiment_key", "version"],
        returning="id",
    )
    if not inserted:
        raise SnapshotVersionError(
            f"snapshot version {snapshot.version} of {snapshot.experiment_key!r} already exists"
        )
    snapshot.id = inserted[0]
    return _attach(session, snapshot)


# --------------------------------------------------------------------------------------------
# learner leases and locks


def acquire_lease(
    session: Session, *, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now + ttl``, atomically: succeeds
    when nobody holds it, ``holder`` already does, or the previous lease expired. Commit to make
    it visible to other processes."""
    table = _table(LearnerLease)
    row = {"name": name, "holder": holder, "expires_at": now + ttl, "heartbeat_at": now}
    name_ = _dialect(session)
    if name_ not in ("sqlite", "postgresql"):  # pragma: no cover - both supported dialects upsert
        raise StoreError(f"leases need SQLite or PostgreSQL, not {name_}")
    if name_ == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    stmt = insert(table).values(row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "holder": stmt.excluded.holder,
            "expires_at": stmt.excluded.expires_at,
            "heartbeat_at": stmt.excluded.heartbeat_at,
        },
        where=or_(table.c.holder == stmt.excluded.holder, table.c.expires_at <= now),
    ).returning(table.c.holder)
    taken = session.exec(stmt).scalars().all()
    # A LearnerLease loaded earlier in this session is now stale.
    loaded = session.identity_map.get(session.identity_key(LearnerLease, name))
    if loaded is not None:
        session.expire(loaded)
    return list(taken) == [holder]


def release_lease(session: Session, *, name: str, holder: str) -> bool:
    """Give up the lease ``name`` if ``holder`` holds it; ``True`` if it did."""
    stmt = (
        delete(LearnerLease)
        .where(col(LearnerLease.name) == name, col(LearnerLease.holder) == holder)
        .execution_options(synchronize_session="fetch")
    )
    return session.exec(stmt).rowcount == 1


def get_lease(session: Session, *, name: str) -> LearnerLease | None:
    """The lease ``name`` (possibly expired), or ``None``."""
    return session.get(LearnerLease, name)


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name``, for PostgreSQL advisory locks."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def try_advisory_xact_lock(session: Session, *, name: str) -> bool:
    """PostgreSQL only: try to take the transaction-scoped advisory lock for ``name``; it is
    released when the session's transaction ends. ``True`` if taken."""
    if _dialect(session) != "postgresql":
        raise StoreError("advisory locks need PostgreSQL; use acquire_lease on SQLite")
    stmt = text("SELECT pg_try_advisory_xact_lock(:key)").bindparams(key=advisory_lock_key(name))
    return bool(session.exec(stmt).scalar_one())  # type: ignore[call-overload]


# --------------------------------------------------------------------------------------------
# API keys

API_KEY_PREFIX = "egk_"
"""Every API key starts with this, then :data:`KEY_PREFIX_LENGTH` lookup characters."""
KEY_PREFIX_LENGTH = 8
KEY_SECRET_LENGTH = 32
_KEY_ALPHABET = string.ascii_letters + string.digits
# The keys are 40 random alphanumerics (~238 bits), not passwords, so a slow KDF buys nothing
# against guessing; a modest PBKDF2 count keeps each authenticated request cheap.
PBKDF2_ITERATIONS = 2_000
_HASH_SCHEME = "pbkdf2_sha256"


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(length))


def hash_api_key(key: str, *, salt: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<hex digest>`` of the whole plaintext key with ``salt``."""
    digest = hashlib.pbkdf2_hmac("sha256", key.encode(), bytes.fromhex(salt), iterations)
    return f"{_HASH_SCHEME}${iterations}${digest.hex()}"


def _hash_matches(key: str, *, salt: str, stored: str) -> bool:
    try:
        scheme, iterations, _ = stored.split("$")
        rounds = int(iterations)
    except ValueError:
        return False
    if scheme != _HASH_SCHEME:
        return False
    return hmac.compare_digest(hash_api_key(key, salt=salt, iterations=rounds), stored)


def normalize_scopes(scopes: Iterable[str] | str) -> str:
    """Validate scopes (``admin``, ``decide``, ``read``) and join them, sorted, with commas."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    cleaned = {str(s).strip() for s in items if str(s).strip()}
    if not cleaned:
        raise ValueError("The 'scopes' must name at least one of admin|decide|read. Got none.")
    for scope in cleaned:
        _check_choice(scope, Scope, "scopes")
    return ",".join(sorted(cleaned))


def create_api_key(
    session: Session,
    *,
    scopes: Iterable[str] | str,
    name: str = "",
    now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the stored row and the plaintext ``egk_<prefix><secret>``, which is
    shown once and never stored (only its salted hash is)."""
    joined = normalize_scopes(scopes)
    for _attempt in range(5):
        prefix = _random_text(KEY_PREFIX_LENGTH)
        plaintext = API_KEY_PREFIX + prefix + _random_text(KEY_SECRET_LENGTH)
        salt = secrets.token_hex(16)
        key = ApiKey(
            prefix=prefix,
            key_hash=hash_api_key(plaintext, salt=salt),
            salt=salt,
            scopes=joined,
            name=name,
            created_at=_now(now),
        )
        inserted = _insert_ignoring_conflicts(
            session, ApiKey, [_row(key, exclude=("id",))], conflict=["prefix"], returning="id"
        )
        if inserted:
            key.id = inserted[0]
            return _attach(session, key), plaintext
    raise StoreError("could not draw an unused API key prefix")  # pragma: no cover


_DUMMY_SALT = "00" * 16


def verify_api_key(session: Session, *, key: str) -> ApiKey | None:
    """The active (not revoked) key row matching plaintext ``key``, else ``None``."""
    body = key[len(API_KEY_PREFIX) :] if key.startswith(API_KEY_PREFIX) else ""
    if len(body) != KEY_PREFIX_LENGTH + KEY_SECRET_LENGTH:
        return None
    row = session.exec(select(ApiKey).where(ApiKey.prefix == body[:KEY_PREFIX_LENGTH])).first()
    if row is None:
        # Spend the same work as a real check, so timing does not reveal which prefixes exist.
        hash_api_key(key, salt=_DUMMY_SALT)
        return None
    if not _hash_matches(key, salt=row.salt, stored=row.key_hash) or row.revoked_at is not None:
        return None
    return row


def revoke_api_key(
    session: Session,
    *,
    key_id: int | None = None,
    prefix: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Revoke the key with ``key_id`` or ``prefix``; ``False`` if none or already revoked."""
    if (key_id is None) == (prefix is None):
        raise ValueError("revoke_api_key needs exactly one of 'key_id' and 'prefix'")
    condition = col(ApiKey.id) == key_id if key_id is not None else col(ApiKey.prefix) == prefix
    stmt = (
        update(ApiKey)
        .where(condition, col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=_now(now))
        .execution_options(synchronize_session="fetch")
    )
    return session.exec(stmt).rowcount == 1


def list_api_keys(session: Session, *, include_revoked: bool = False) -> list[ApiKey]:
    """API keys by id (hashes only, of course)."""
    stmt = select(ApiKey).order_by(col(ApiKey.id))
    if not include_revoked:
        stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
    return list(session.exec(stmt))


# --------------------------------------------------------------------------------------------
# aggregates for reports


class RewardAggregate(NamedTuple):
    """Count, sum and sum of squares of rewards: enough for means, variances and Welch lift.
    Unpacks as ``count, total, total_sq``.

    ``m2 = Σx² - (Σx)²/n`` loses precision when the mean is huge relative to the spread; rewards
    (revenue, rates) are far from that regime.
    """

    count: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")

    @property
    def m2(self) -> float:
        """Sum of squared deviations from the mean (clipped at 0 against round-off)."""
        if not self.count:
            return 0.0
        return max(self.total_sq - self.total * self.total / self.count, 0.0)

    @property
    def variance(self) -> float:
        """Sample variance (``n - 1`` denominator); NaN below two rewards."""
        return self.m2 / (self.count - 1) if self.count > 1 else float("nan")


def _reward_aggregate_columns() -> tuple[Any, Any, Any]:
    return (
        func.count(col(Reward.decision_id)),
        func.coalesce(func.sum(Reward.value), 0.0),
        func.coalesce(func.sum(col(Reward.value) * col(Reward.value)), 0.0),
    )


def reward_aggregates(session: Session, *, experiment_key: str) -> dict[str, RewardAggregate]:
    """Reward count, sum and sum of squares per group (``treatment``, ``holdout``)."""
    stmt = (
        select(Decision.group, *_reward_aggregate_columns())
        .select_from(Reward)
        .join(Decision, col(Decision.id) == col(Reward.decision_id))
        .where(Reward.experiment_key == experiment_key)
        .group_by(col(Decision.group))
    )
    return {
        group: RewardAggregate(int(n), float(total), float(total_sq))
        for group, n, total, total_sq in session.exec(stmt)
    }


def reward_aggregates_by_action(
    session: Session, *, experiment_key: str
) -> dict[tuple[str, int], RewardAggregate]:
    """Reward count, sum and sum of squares per ``(group, action_index)``."""
    stmt = (
        select(Decision.group, Decision.action_index, *_reward_aggregate_columns())
        .select_from(Reward)
        .join(Decision, col(Decision.id) == col(Reward.decision_id))
        .where(Reward.experiment_key == experiment_key, col(Decision.action_index).is_not(None))
        .group_by(col(Decision.group), col(Decision.action_index))
    )
    return {
        (group, int(action)): RewardAggregate(int(n), float(total), float(total_sq))
        for group, action, n, total, total_sq in session.exec(stmt)
    }


def decision_counts_by_group(session: Session, *, experiment_key: str) -> dict[str, int]:
    """Decisions per group (suppressed ones included)."""
    stmt = (
        select(Decision.group, func.count())
        .where(Decision.experiment_key == experiment_key)
        .group_by(col(Decision.group))
    )
    return {group: int(n) for group, n in session.exec(stmt)}


def decision_counts_by_status(session: Session, *, experiment_key: str) -> dict[str, int]:
    """Decisions per status (``open``, ``rewarded``, ``never_activated``, ``suppressed``)."""
    stmt = (
        select(Decision.status, func.count())
        .where(Decision.experiment_key == experiment_key)
        .group_by(col(Decision.status))
    )
    return {status: int(n) for status, n in session.exec(stmt)}


def outcome_counts_by_attribution(
    session: Session, *, experiment_key: str | None
) -> dict[str, int]:
    """Outcomes per attribution for ``experiment_key``; ``None`` counts outcomes of every
    experiment and those tied to none (unknown decisions)."""
    stmt = select(Outcome.attribution, func.count()).group_by(col(Outcome.attribution))
    if experiment_key is not None:
        stmt = stmt.where(Outcome.experiment_key == experiment_key)
    return {attribution: int(n) for attribution, n in session.exec(stmt)}


def experiment_counts(session: Session, *, experiment_key: str) -> dict[str, dict[str, Any]]:
    """The report's counts, JSON-ready, with every status/group/attribution present (0 if none):

    ``{"decisions": {"total", "by_status", "by_group"}, "outcomes": {"total", "by_attribution"},
    "rewards": {"total", "learned", "unlearned"}}``
    """
    by_status = dict.fromkeys((s.value for s in DecisionStatus), 0)
    by_status.update(decision_counts_by_status(session, experiment_key=experiment_key))
    by_group = dict.fromkeys((g.value for g in Group), 0)
    by_group.update(decision_counts_by_group(session, experiment_key=experiment_key))
    by_attribution = dict.fromkeys((a.value for a in Attribution), 0)
    by_attribution.update(outcome_counts_by_attribution(session, experiment_key=experiment_key))
    learned = count_rewards(session, experiment_key=experiment_key, learned=True)
    unlearned = count_rewards(session, experiment_key=experiment_key, learned=False)
    return {
        "decisions": {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "by_group": by_group,
        },
        "outcomes": {"total": sum(by_attribution.values()), "by_attribution": by_attribution},
        "rewards": {"total": learned + unlearned, "learned": learned, "unlearned": unlearned},
    }
