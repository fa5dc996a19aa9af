"""The decisions an outcome is attributed to: the few columns attribution reads, for decisions
named by id, and a customer's latest open decision before an outcome naming only the customer.

Plain functions taking a ``Session`` and keyword-only arguments, reading the ``decision``
table in bulk (one query per chunk, not one per outcome); none writes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam
from sqlmodel import Session, col

from experiments.store._sql import chunks, dialect, rows_of, select_columns
from experiments.store.models import Decision
from experiments.vocabulary import DecisionStatus

__all__ = [
    "DecisionHead",
    "decision_heads",
    "latest_open_decision",
    "latest_open_decisions",
    "locks_rows",
]


class DecisionHead(NamedTuple):
    """The columns outcome attribution needs, without the decision's JSON payloads."""

    id: str
    experiment_key: str
    customer_id: str
    status: str
    window_closes_at: datetime | None
    #: When the reward window opens: the creation, or a deferred decision's activation
    #: (``None`` until then).
    activated_at: datetime | None


#: The columns of a :class:`DecisionHead`, in its field order.
_HEAD_COLUMNS = (
    Decision.id,
    Decision.experiment_key,
    Decision.customer_id,
    Decision.status,
    Decision.window_closes_at,
    Decision.activated_at,
)


def locks_rows(session: Session) -> bool:
    """Whether ``SELECT .. FOR SHARE/UPDATE`` locks rows in ``session``'s database until the
    transaction ends: PostgreSQL does; SQLite has no row locks (the clause is dropped), and its
    driver starts the transaction only at the first write, so a read before it holds nothing."""
    return dialect(session) == "postgresql"


@functools.cache
def _heads_statement(share_lock: bool) -> Any:
    """The heads ``SELECT`` for an expanding list of ids, built once per lock mode."""
    stmt = select_columns(*_HEAD_COLUMNS).where(
        col(Decision.id).in_(bindparam("ids", expanding=True))
    )
    if share_lock:
        stmt = stmt.order_by(col(Decision.id)).with_for_update(read=True)
    return stmt


def decision_heads(
    session: Session, *, decision_ids: Sequence[str], share_lock: bool = False
) -> dict[str, DecisionHead]:
    """The decisions among ``decision_ids`` that exist, by id, with only the columns outcome
    attribution needs (no context, action or exclusions): cheap in bulk.

    With ``share_lock``, on PostgreSQL the rows are locked ``FOR SHARE`` (in id order, so
    concurrent lockers cannot deadlock) until the transaction ends: the statuses read stay
    current, as a reward join must wait for them (``FOR UPDATE``). SQLite has no row locks
    (:func:`locks_rows`).
    """
    found: dict[str, DecisionHead] = {}
    ids = sorted(set(decision_ids)) if share_lock else list(dict.fromkeys(decision_ids))
    stmt = _heads_statement(share_lock)
    for chunk in chunks(ids):
        for row in rows_of(session, stmt, {"ids": list(chunk)}):
            found[row[0]] = DecisionHead(*row)
    return found


def latest_open_decision(
    session: Session,
    *,
    experiment_key: str,
    customer_id: str,
    before: datetime,
    include_unactivated: bool = False,
) -> DecisionHead | None:
    """The customer's newest open decision in ``experiment_key`` made at or before ``before``
    (an outcome's ``occurred_at``): where an outcome naming only the customer is attributed.

    Deferred decisions count only once activated at or before ``before`` (the customer cannot
    react to an offer never shown), unless ``include_unactivated``. One look-up of
    :func:`latest_open_decisions`.
    """
    found = latest_open_decisions(
        session,
        experiment_key=experiment_key,
        lookups=[(customer_id, before)],
        include_unactivated=include_unactivated,
    )
    return found.get((customer_id, before))


def latest_open_decisions(
    session: Session,
    *,
    experiment_key: str,
    lookups: Sequence[tuple[str, datetime]],
    include_unactivated: bool = False,
) -> dict[tuple[str, datetime], DecisionHead]:
    """:func:`latest_open_decision` for many ``(customer_id, before)`` look-ups at once, keyed
    by the look-up (absent where there is none): one query per chunk of customers, not one per
    outcome. "Newest" is the latest ``created_at``, ties to the larger id, as one query with
    ``ORDER BY created_at DESC, id DESC LIMIT 1`` would pick."""
    if not lookups:
        return {}
    latest_before = max(before for _, before in lookups)
    candidates: dict[str, list[tuple[datetime, str, bool, DecisionHead]]] = {}
    customers = list(dict.fromkeys(customer for customer, _ in lookups))
    for chunk in chunks(customers):
        stmt = select_columns(*_HEAD_COLUMNS, Decision.created_at, Decision.deferred).where(
            col(Decision.experiment_key) == experiment_key,
            col(Decision.customer_id).in_(chunk),
            col(Decision.status) == DecisionStatus.OPEN.value,
            col(Decision.created_at) <= latest_before,
        )
        for row in session.exec(stmt):
            *columns, created_at, deferred = row
            head = DecisionHead(*columns)
            candidates.setdefault(head.customer_id, []).append(
                (created_at, head.id, deferred, head)
            )
    for rows in candidates.values():
        rows.sort(key=lambda row: (row[0], row[1]), reverse=True)
    found: dict[tuple[str, datetime], DecisionHead] = {}
    for customer, before in lookups:
        for created_at, _, deferred, head in candidates.get(customer, ()):
            if created_at > before:
                continue
            shown = not deferred or (head.activated_at is not None and head.activated_at <= before)
            if shown or include_unactivated:
                found[(customer, before)] = head
                break
    return found
