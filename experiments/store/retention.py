"""Data retention: purge old raw contexts, erase a customer's personal data.

Both keep every row the reports count (decisions, outcomes, rewards), so lift, counts and
off-policy aggregates still add up; what goes is what identifies or describes a person.

- :func:`purge_contexts` empties the stored context of decisions made before a date, once
  nothing needs it any more: the decision is closed and its reward and short-term reward (if
  any) were learned.
- :func:`erase_customer` replaces a customer's id with an opaque token in decisions, outcomes
  and strategy assignments and empties their contexts (right to erasure), whatever their age.

Bad arguments raise :class:`~experiments.store.errors.InvalidFieldError` (a ``ValueError``
naming the field).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, exists, update
from sqlmodel import Session, col

from experiments.store import models
from experiments.store.errors import InvalidFieldError
from experiments.store.strategies import erase_assignments
from experiments.vocabulary import DecisionStatus

__all__ = ["ErasureResult", "erase_customer", "purge_contexts"]


@dataclass(frozen=True)
class ErasureResult:
    """What :func:`erase_customer` changed, and the token that now stands for the customer."""

    decisions: int
    outcomes: int
    token: str
    strategy_assignments: int = 0


def purge_contexts(database: Engine, *, before: datetime) -> int:
    """Empty the contexts of closed decisions made before ``before``; returns how many."""
    if before.tzinfo is None:
        raise InvalidFieldError(
            "'before' needs a timezone (e.g. 2026-01-01T00:00Z)", field="before"
        )
    unlearned = [
        exists().where(
            col(table.decision_id) == col(models.Decision.id),
            col(table.learned_version).is_(None),
        )
        for table in (models.Reward, models.ShortTermReward)
    ]
    statement = (
        update(models.Decision)
        .where(
            col(models.Decision.created_at) < before,
            col(models.Decision.status) != DecisionStatus.OPEN.value,
            *(~waiting for waiting in unlearned),
        )
        .values(context={})
        .execution_options(synchronize_session=False)
    )
    with Session(database) as session:
        purged = session.exec(statement).rowcount
        session.commit()
    return int(purged)


def erase_customer(database: Engine, *, customer_id: str) -> ErasureResult:
    """Replace ``customer_id`` by an opaque token everywhere and empty their contexts."""
    if not customer_id:
        raise InvalidFieldError("customer_id must not be empty", field="customer_id")
    token = f"erased-{secrets.token_hex(8)}"
    with Session(database) as session:
        decisions = session.exec(
            update(models.Decision)
            .where(col(models.Decision.customer_id) == customer_id)
            .values(customer_id=token, context={})
            .execution_options(synchronize_session=False)
        ).rowcount
        outcomes = session.exec(
            update(models.Outcome)
            .where(col(models.Outcome.customer_id) == customer_id)
            .values(customer_id=token)
            .execution_options(synchronize_session=False)
        ).rowcount
        assignments = erase_assignments(session, customer_id=customer_id, token=token)
        session.commit()
    return ErasureResult(
        decisions=int(decisions),
        outcomes=int(outcomes),
        token=token,
        strategy_assignments=assignments,
    )
