"""A customer's served decisions over time: the contacts the customer state counts, the next
decision a value-function learner bootstraps from, and the decisions churn labels are read
for. Decisions that reached their customer only (an action served: open, rewarded or paused).

Plain functions taking a ``Session`` and keyword-only arguments; none commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, or_
from sqlmodel import Session, col, select

from experiments.store._sql import chunks
from experiments.store.models import Decision
from experiments.vocabulary import DecisionStatus

__all__ = [
    "ContactRow",
    "NextDecision",
    "ServedDecision",
    "customer_contacts",
    "next_decisions",
    "served_decisions_between",
]


#: Statuses of decisions that reached their customer (an action was served).
_SERVED = (
    DecisionStatus.OPEN.value,
    DecisionStatus.REWARDED.value,
    DecisionStatus.PAUSED.value,
)


def _served(experiment_key: str) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a decision of ``experiment_key`` with an action served."""
    return (
        col(Decision.experiment_key) == experiment_key,
        col(Decision.action_index).is_not(None),
        col(Decision.status).in_(_SERVED),
    )


def _select(row: type[NamedTuple]) -> Any:
    """``SELECT`` the decision columns named by ``row``'s fields, in their order."""
    return select(*(getattr(Decision, name) for name in row._fields))


class ContactRow(NamedTuple):
    """A decision that reached its customer: who, when (activation time) and which action;
    ``levels``, when asked for, the raw JSON value its context logged under the key asked for
    (the level marginals, :data:`experiments.spec.state.LEVELS_KEY`; None when absent)."""

    customer_id: str
    at: datetime
    action_index: int
    levels: Any = None


def customer_contacts(
    session: Session,
    *,
    experiment_key: str,
    customer_ids: Sequence[str],
    since: datetime,
    levels_key: str | None = None,
) -> list[ContactRow]:
    """The contacts of ``customer_ids`` in ``experiment_key`` made at or after ``since``, in
    one query per chunk: decisions with an action served (open, rewarded or paused; not
    suppressed or never activated; deferred ones once activated), timed at activation. With
    ``levels_key`` each row also reads the value its context logged under that key (one JSON
    element of the context, not the whole context): the caller's key, as the store does not
    know the spec's."""
    found: list[ContactRow] = []
    logged = col(Decision.context)[levels_key] if levels_key is not None else None
    for chunk in chunks(list(dict.fromkeys(customer_ids))):
        columns: list[Any] = [
            Decision.customer_id,
            Decision.activated_at,
            Decision.created_at,
            Decision.action_index,
        ]
        if logged is not None:
            columns.append(logged)
        stmt = select(*columns).where(
            *_served(experiment_key),
            col(Decision.customer_id).in_(chunk),
            Decision.created_at >= since,
            or_(col(Decision.deferred).is_(False), col(Decision.activated_at).is_not(None)),
        )
        for customer, activated, created, action, *marginals in session.exec(stmt):
            found.append(
                ContactRow(customer, activated or created, int(action or 0), *marginals[:1])
            )
    return found


class NextDecision(NamedTuple):
    """A later decision of a customer: the next state a value-function learner bootstraps from."""

    id: str
    customer_id: str
    created_at: datetime
    context: dict[str, Any]
    excluded: list[Any]


def next_decisions(
    session: Session,
    *,
    experiment_key: str,
    customer_ids: Sequence[str],
    after: datetime,
    until: datetime,
) -> list[NextDecision]:
    """Decisions with an action served (as :func:`customer_contacts`) of ``customer_ids`` made
    in ``(after, until]``, oldest first (ties by id), in one query per chunk."""
    found: list[NextDecision] = []
    for chunk in chunks(list(dict.fromkeys(customer_ids))):
        stmt = _select(NextDecision).where(
            *_served(experiment_key),
            col(Decision.customer_id).in_(chunk),
            Decision.created_at > after,
            Decision.created_at <= until,
        )
        found.extend(NextDecision(*row) for row in session.exec(stmt))
    found.sort(key=lambda row: (row.created_at, row.id))
    return found


class ServedDecision(NamedTuple):
    """A decision with an action served: what a label over the weeks after it is read for."""

    id: str
    customer_id: str
    created_at: datetime
    context: dict[str, Any]
    action_index: int


def served_decisions_between(
    session: Session, *, experiment_key: str, start: datetime | None, end: datetime
) -> list[ServedDecision]:
    """Decisions with an action served (as :func:`customer_contacts`) made in ``[start, end)``
    (``start`` None: from the first), oldest first (ties by id)."""
    stmt = _select(ServedDecision).where(*_served(experiment_key), Decision.created_at < end)
    if start is not None:
        stmt = stmt.where(Decision.created_at >= start)
    stmt = stmt.order_by(col(Decision.created_at), col(Decision.id))
    return [ServedDecision(*row) for row in session.exec(stmt)]
