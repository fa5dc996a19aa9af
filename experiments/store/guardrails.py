"""What guardrails measure, per customer, computed in SQL: each customer's group, first
decision and decisions served, and the count and sum of named events since that decision.

Plain functions taking a ``Session`` and keyword-only arguments; they only read. One row per
customer (or per customer and event) travels to Python, never one per decision or outcome.
The customer is the unit because the holdout is assigned by a hash of the customer
(:func:`experiments.engine.planning.assign_group`): the split and every guardrail KPI are
compared customer by customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from experiments.store.models import Decision, Outcome

__all__ = ["CustomerEvents", "CustomerRow", "customer_events", "customer_rows"]


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One customer of an experiment: group, first decision time and decisions served."""

    customer_id: str
    group: str
    first_at: datetime
    served: int


@dataclass(frozen=True, slots=True)
class CustomerEvents:
    """How many of one event a customer had since its first decision, and their values' sum."""

    customer_id: str
    event: str
    count: int
    total: float


def _customers(experiment_key: str, since: datetime | None) -> Select[str, str, datetime, int]:
    stmt = select(
        Decision.customer_id,
        Decision.group,
        func.min(Decision.created_at).label("first_at"),
        func.count(col(Decision.action_index)).label("served"),
    ).where(Decision.experiment_key == experiment_key)
    if since is not None:
        stmt = stmt.where(col(Decision.created_at) >= since)
    return stmt.group_by(col(Decision.customer_id), col(Decision.group))


def customer_rows(
    session: Session, *, experiment_key: str, since: datetime | None = None
) -> list[CustomerRow]:
    """Every customer with a decision (made at or after ``since``), by customer id.

    ``served`` counts decisions with an action (not those the contact rules suppressed).
    """
    stmt = _customers(experiment_key, since).order_by(col(Decision.customer_id))
    return [
        CustomerRow(customer_id=customer, group=group, first_at=first, served=int(served))
        for customer, group, first, served in session.exec(stmt)
    ]


def customer_events(
    session: Session,
    *,
    experiment_key: str,
    events: Sequence[str],
    since: datetime | None = None,
) -> list[CustomerEvents]:
    """Per customer and event of ``events``: outcomes of the experiment's customers that
    occurred at or after the customer's first decision (made at or after ``since``).

    Any attribution counts (a churn a week after the reward window closed is still a churn);
    events before the customer's first decision cannot be the treatment's doing.
    """
    if not events:
        return []
    first = _customers(experiment_key, since).subquery()
    stmt = (
        select(
            Outcome.customer_id,
            Outcome.event,
            func.count(col(Outcome.id)),
            func.coalesce(func.sum(Outcome.value), 0.0),
        )
        .join(
            first,
            and_(
                col(Outcome.customer_id) == first.c.customer_id,
                col(Outcome.occurred_at) >= first.c.first_at,
            ),
        )
        .where(Outcome.experiment_key == experiment_key, col(Outcome.event).in_(list(events)))
        .group_by(col(Outcome.customer_id), col(Outcome.event))
    )
    return [
        CustomerEvents(customer_id=str(customer), event=event, count=int(count), total=float(total))
        for customer, event, count, total in session.exec(stmt)
    ]
