"""Queries on the ``decision`` table: store decisions (idempotent by request id), find them,
count a customer's recent contacts, activate deferred ones, move their status, and pick those
whose reward is due.

Plain functions taking a ``Session`` and keyword-only arguments; none commits (the caller owns
the transaction). Insert functions take new (transient) model instances; the instance that ends
up stored becomes persistent in ``session`` so later attribute changes are flushed as UPDATEs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import JSON, ColumnElement, bindparam, exists, func, literal, or_, update
from sqlmodel import Session, col, select

from experiments.store._sql import (
    attach,
    check_choice,
    chunks,
    insert_ignoring_conflicts,
    row_of,
    rows_of,
    select_columns,
)
from experiments.store.errors import DuplicateRequestError, StoreError
from experiments.store.models import Decision, Outcome, Reward, ShortTermReward, UTCDateTime
from experiments.vocabulary import Attribution, DecisionStatus

__all__ = [
    "RewardCandidate",
    "activate_decision",
    "count_recent_decisions_by_customer",
    "decisions_due_for_early_reward",
    "decisions_due_for_reward",
    "decisions_with_outcomes_since",
    "decisions_with_status",
    "expired_deferred_decisions",
    "find_decision_by_request",
    "get_decision",
    "insert_decision",
    "insert_decisions",
    "lock_decision_statuses",
    "reward_candidates",
    "set_decision_status",
    "short_term_candidates",
    "store_decisions",
]


def insert_decision(session: Session, *, decision: Decision) -> Decision:
    """Store a new decision and return it (persistent in ``session``).

    When ``decision.request_id`` was already used in this experiment nothing is written and
    :class:`DuplicateRequestError` carries the earlier decision as ``existing``: a retried request
    gets the same answer. The transaction stays usable (no IntegrityError is raised).
    """
    inserted = insert_ignoring_conflicts(
        session,
        Decision,
        [row_of(decision)],
        conflict=["experiment_key", "request_id"],
        returning="id",
    )
    if inserted:
        return attach(session, decision)
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
    inserted = insert_ignoring_conflicts(
        session,
        Decision,
        [decision if isinstance(decision, Mapping) else row_of(decision) for decision in decisions],
        conflict=["experiment_key", "request_id"],
        returning="id",
    )
    return len(inserted)


def store_decisions(
    session: Session, *, decisions: Sequence[Mapping[str, Any]]
) -> list[Decision | None]:
    """Store new decisions (rows as column -> value mappings), each unless its request id was
    already used in its experiment; per decision, ``None`` when it was stored, else the
    decision stored earlier for its request id (a retried request gets that first answer).

    One ``INSERT .. ON CONFLICT DO NOTHING RETURNING id`` for the batch, and only when some
    row conflicted one ``SELECT`` of the earlier decisions: the decision path's single round
    trip. A batch holding the same request id twice stores the first and answers the second
    with it. No model instances are built for the rows stored.
    """
    stored = set(
        insert_ignoring_conflicts(
            session,
            Decision,
            decisions,
            conflict=["experiment_key", "request_id"],
            returning="id",
        )
    )
    earlier: dict[tuple[str, str], Decision] = {}
    conflicted = [row for row in decisions if row["id"] not in stored]
    for key in {row["experiment_key"] for row in conflicted}:
        request_ids = [row["request_id"] for row in conflicted if row["experiment_key"] == key]
        for chunk in chunks(list(dict.fromkeys(request_ids))):
            stmt = select(Decision).where(
                Decision.experiment_key == key, col(Decision.request_id).in_(chunk)
            )
            for found in session.exec(stmt):
                earlier[(key, str(found.request_id))] = found
    answers: list[Decision | None] = []
    for row in decisions:
        if row["id"] in stored:
            answers.append(None)
            continue
        existing = earlier.get((row["experiment_key"], row["request_id"]))
        if existing is None:  # pragma: no cover - only a request id can conflict, and rows stay
            raise StoreError(f"decision {row['id']!r} was not stored")
        answers.append(existing)
    return answers


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
    stmt = _status_lock_statement(shared)
    for chunk in chunks(sorted(set(decision_ids))):
        for id_, status in rows_of(session, stmt, {"ids": list(chunk)}):
            statuses[id_] = status
    return statuses


@functools.cache
def _status_lock_statement(shared: bool) -> Any:
    """:func:`lock_decision_statuses`' statement for an expanding list of ids, built once."""
    return (
        select_columns(Decision.id, Decision.status)
        .where(col(Decision.id).in_(bindparam("ids", expanding=True)))
        .order_by(col(Decision.id))
        .with_for_update(read=shared)
    )


def get_decision(session: Session, *, decision_id: str) -> Decision | None:
    """The decision ``decision_id``, or ``None``."""
    return session.get(Decision, decision_id)


def find_decision_by_request(
    session: Session, *, experiment_key: str, request_id: str
) -> Decision | None:
    """The decision made for ``request_id`` in ``experiment_key``, or ``None``."""
    stmt = select(Decision).where(
        Decision.experiment_key == experiment_key, Decision.request_id == request_id
    )
    return session.exec(stmt).first()


def count_recent_decisions_by_customer(
    session: Session, *, experiment_key: str, customer_ids: Sequence[str], since: datetime
) -> dict[str, int]:
    """How many decisions (not suppressed ones) each of ``customer_ids`` got in
    ``experiment_key`` at or after ``since``, in one query per chunk: the counts behind contact
    limits. A customer with none is absent from the result."""
    counts: dict[str, int] = {}
    for chunk in chunks(list(dict.fromkeys(customer_ids))):
        params = {"key": experiment_key, "customers": list(chunk), "since": since}
        rows = rows_of(session, _recent_counts_statement(), params)
        counts.update({customer: int(count) for customer, count in rows})
    return counts


@functools.cache
def _recent_counts_statement() -> Any:
    """:func:`count_recent_decisions_by_customer`'s query, built once (every decide batch
    runs it when the spec has a contact limit)."""
    return (
        select(Decision.customer_id, func.count())
        .where(
            Decision.experiment_key == bindparam("key"),
            col(Decision.customer_id).in_(bindparam("customers", expanding=True)),
            Decision.created_at >= bindparam("since", type_=UTCDateTime),
            Decision.status != DecisionStatus.SUPPRESSED.value,
        )
        .group_by(Decision.customer_id)
    )


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
    check_choice(status, DecisionStatus, "status")
    changed = 0
    for chunk in chunks(list(dict.fromkeys(decision_ids))):
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
    return list(session.exec(_due_for_reward(select(Decision), experiment_key, now, limit)))


def _due_for_reward(stmt: Any, experiment_key: str, now: datetime, limit: int) -> Any:
    """``stmt`` (a select from ``decision``) narrowed to :func:`decisions_due_for_reward`'s."""
    return (
        stmt.where(
            Decision.experiment_key == experiment_key,
            Decision.status == DecisionStatus.OPEN.value,
            col(Decision.window_closes_at).is_not(None),
            col(Decision.window_closes_at) <= now,
            or_(col(Decision.deferred).is_(False), col(Decision.activated_at).is_not(None)),
        )
        .order_by(col(Decision.window_closes_at), col(Decision.id))
        .limit(limit)
    )


def decisions_with_outcomes_since(
    session: Session, *, experiment_key: str, since: datetime, limit: int = 1000
) -> list[Decision]:
    """Open decisions with an attributed outcome received at or after ``since``: candidates for
    an early reward when the definition cannot change any more (an ``event`` reward that fired).
    """
    return list(session.exec(_with_outcomes_since(select(Decision), experiment_key, since, limit)))


def _with_outcomes_since(stmt: Any, experiment_key: str, since: datetime, limit: int) -> Any:
    """``stmt`` (a select from ``decision``) narrowed to
    :func:`decisions_with_outcomes_since`'s."""
    return (
        stmt.where(
            Decision.experiment_key == experiment_key,
            Decision.status == DecisionStatus.OPEN.value,
            col(Decision.id).in_(_fresh_outcomes(experiment_key, since)),
        )
        .order_by(col(Decision.created_at), col(Decision.id))
        .limit(limit)
    )


def _fresh_outcomes(experiment_key: str, since: datetime) -> Any:
    """The decision ids of attributed outcomes received at or after ``since``."""
    return select(Outcome.decision_id).where(
        Outcome.experiment_key == experiment_key,
        Outcome.attribution == Attribution.ATTRIBUTED.value,
        Outcome.received_at >= since,
        col(Outcome.decision_id).is_not(None),
    )


def short_term_candidates(
    session: Session,
    *,
    experiment_key: str,
    closed_before: datetime,
    activated_since: datetime | None,
    fresh_since: datetime | None,
    with_context: bool,
    limit: int = 1000,
) -> list[RewardCandidate]:
    """Decisions with an action and no short-term reward yet (``short_term_reward``): first
    those activated at or before ``closed_before`` (their short window has closed), and not
    before ``activated_since`` when given (those closed earlier were joined by an earlier
    pass), oldest activation first; then, when ``fresh_since`` is given, those with an
    attributed outcome received since then. Each part up to ``limit`` rows; the decision's
    own status (its reward's) does not matter."""
    columns = select_columns(
        Decision.id,
        Decision.activated_at,
        Decision.context if with_context else literal(None, type_=JSON),
    )
    unrewarded = (
        col(Decision.action_index).is_not(None),
        ~exists().where(col(ShortTermReward.decision_id) == col(Decision.id)),
    )
    due = columns.where(
        *unrewarded,
        Decision.experiment_key == experiment_key,
        col(Decision.activated_at).is_not(None),
        col(Decision.activated_at) <= closed_before,
    )
    if activated_since is not None:
        due = due.where(col(Decision.activated_at) >= activated_since)
    due = due.order_by(col(Decision.activated_at), col(Decision.id)).limit(limit)
    found = _candidates(session.exec(due), due=True)
    if fresh_since is None:
        return found
    # By id alone: the outcomes' index finds the few fresh ones (an outcome is attributed to
    # a decision of its own experiment); any narrowing on ``decision`` could make the planner
    # walk the experiment's decisions instead. A decision not yet activated is left out by
    # the join (it has no window yet).
    with_fresh = col(Decision.id).in_(_fresh_outcomes(experiment_key, fresh_since))
    fresh = (
        columns.where(*unrewarded, with_fresh)
        .order_by(col(Decision.created_at), col(Decision.id))
        .limit(limit)
    )
    return found + _candidates(session.exec(fresh), due=False)


class RewardCandidate(NamedTuple):
    """What the reward join reads of a candidate decision; ``context`` only when asked for
    (a reward with a baseline field), else None. No ORM instance, no other JSON column."""

    id: str
    activated_at: datetime | None
    context: dict[str, Any] | None
    #: True for a decision whose window closed, False for one read for its fresh outcomes.
    due: bool


def reward_candidates(
    session: Session,
    *,
    experiment_key: str,
    now: datetime,
    fresh_since: datetime | None,
    with_context: bool,
    limit: int = 1000,
) -> list[RewardCandidate]:
    """The decisions of :func:`decisions_due_for_reward` then, when ``fresh_since`` is given,
    those of :func:`decisions_with_outcomes_since` (each in its order, each up to ``limit``;
    a decision may be in both), as :class:`RewardCandidate` rows."""
    columns = select_columns(
        Decision.id,
        Decision.activated_at,
        Decision.context if with_context else literal(None, type_=JSON),
    )
    due = _candidates(session.exec(_due_for_reward(columns, experiment_key, now, limit)), due=True)
    if fresh_since is None:
        return due
    fresh = session.exec(_with_outcomes_since(columns, experiment_key, fresh_since, limit))
    return due + _candidates(fresh, due=False)


def _candidates(
    rows: Iterable[tuple[str, datetime | None, dict[str, Any] | None]], *, due: bool
) -> list[RewardCandidate]:
    """``(id, activated_at, context)`` rows as :class:`RewardCandidate` rows, all ``due``."""
    return [
        RewardCandidate(id_, activated_at, context, due=due) for id_, activated_at, context in rows
    ]


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


def decisions_due_for_early_reward(
    session: Session, *, experiment_key: str, activated_before: datetime, limit: int = 1000
) -> list[Decision]:
    """Open decisions activated at or before ``activated_before`` that have no reward yet,
    oldest activation first: a reward known before the window closes (a surrogate reward
    after its short window) is due for them; the decision stays open for its window."""
    rewarded = select(Reward.decision_id).where(Reward.experiment_key == experiment_key)
    stmt = (
        select(Decision)
        .where(
            Decision.experiment_key == experiment_key,
            Decision.status == DecisionStatus.OPEN.value,
            col(Decision.activated_at).is_not(None),
            Decision.activated_at <= activated_before,  # type: ignore[operator]
            col(Decision.id).not_in(rewarded),
        )
        .order_by(col(Decision.activated_at), col(Decision.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def decisions_with_status(
    session: Session, *, experiment_key: str, status: str, limit: int | None = None
) -> list[Decision]:
    """The decisions of ``experiment_key`` with ``status``, oldest first (ties by id)."""
    check_choice(status, DecisionStatus, "status")
    stmt = (
        select(Decision)
        .where(Decision.experiment_key == experiment_key, Decision.status == status)
        .order_by(col(Decision.created_at), col(Decision.id))
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))
