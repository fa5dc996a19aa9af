"""Queries on the ``outcome`` table: store outcomes idempotently by the client's
``outcome_id``, read a decision's outcomes, and relabel those that arrived too late.

Plain functions taking a ``Session`` and keyword-only arguments; none commits (the caller owns
the transaction).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypedDict, Unpack

from sqlalchemy import ColumnElement, update
from sqlmodel import Session, col, select

from experiments.store._sql import (
    chunks,
    fill_defaults,
    insert_ignoring_conflicts,
    row_of,
    select_columns,
)
from experiments.store.models import Outcome
from experiments.vocabulary import Attribution

__all__ = [
    "DecisionOutcome",
    "EventWindow",
    "InsertResult",
    "customer_event_times",
    "decision_outcomes",
    "in_window",
    "insert_outcomes",
    "mark_outcomes_late",
    "outcomes_for_decisions",
]


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
            row_of(item, exclude=("id",))
            if isinstance(item, Outcome)
            else fill_defaults(Outcome, item, exclude=("id",))
        )
        rows.setdefault(row["outcome_id"], row)
    inserted = insert_ignoring_conflicts(
        session, Outcome, list(rows.values()), conflict=["outcome_id"], returning="outcome_id"
    )
    return InsertResult(
        accepted=len(inserted), duplicates=len(outcomes) - len(inserted), inserted=tuple(inserted)
    )


def outcomes_for_decisions(
    session: Session,
    *,
    decision_ids: Sequence[str],
    attributions: Collection[str] | None = None,
    events: Collection[str] | None = None,
) -> list[Outcome]:
    """The outcomes of these decisions, ordered by decision id, then ``occurred_at``.

    All attributions by default; pass ``attributions=("attributed",)`` to leave out the late
    ones (kept for the report, but they do not change a reward). ``events``: only these.
    """
    found: list[Outcome] = []
    for chunk in chunks(list(dict.fromkeys(decision_ids))):
        found.extend(session.exec(_of_decisions(select(Outcome), chunk, attributions, events)))
    found.sort(key=lambda o: (o.decision_id or "", o.occurred_at, o.id or 0))
    return found


class DecisionOutcome(NamedTuple):
    """What a reward reads of an outcome: its decision, event, value and time."""

    decision_id: str
    event: str
    value: float
    occurred_at: datetime


def decision_outcomes(
    session: Session,
    *,
    decision_ids: Sequence[str],
    attributions: Collection[str] | None = None,
) -> list[DecisionOutcome]:
    """:func:`outcomes_for_decisions` as plain rows of the four fields a reward reads, in the
    same order: the reward join reads thousands per call, and an ORM instance per outcome
    cost more than the query."""
    found: list[tuple[DecisionOutcome, int]] = []
    columns = select_columns(
        Outcome.decision_id, Outcome.event, Outcome.value, Outcome.occurred_at, Outcome.id
    )
    for chunk in chunks(list(dict.fromkeys(decision_ids))):
        rows = session.exec(_of_decisions(columns, chunk, attributions, None))
        found.extend((DecisionOutcome(*row[:4]), row[4]) for row in rows)
    found.sort(key=lambda item: (item[0].decision_id, item[0].occurred_at, item[1]))
    return [row for row, _ in found]


def _of_decisions(
    stmt: Any,
    decision_ids: Sequence[str],
    attributions: Collection[str] | None,
    events: Collection[str] | None,
) -> Any:
    """``stmt`` (a select from ``outcome``) narrowed to the outcomes of ``decision_ids``, of
    these attributions and events when given."""
    stmt = stmt.where(col(Outcome.decision_id).in_(decision_ids))
    if attributions is not None:
        stmt = stmt.where(col(Outcome.attribution).in_([str(a) for a in attributions]))
    if events is not None:
        stmt = stmt.where(col(Outcome.event).in_(list(events)))
    return stmt


def mark_outcomes_late(session: Session, *, outcome_ids: Sequence[str]) -> int:
    """Relabel outcomes ``late``: their decision's reward was computed without them."""
    changed = 0
    for chunk in chunks(list(dict.fromkeys(outcome_ids))):
        stmt = (
            update(Outcome)
            .where(col(Outcome.outcome_id).in_(chunk))
            .values(attribution=Attribution.LATE.value)
            .execution_options(synchronize_session=False)
        )
        changed += session.exec(stmt).rowcount
    return changed


class EventWindow(TypedDict):
    """Which outcomes: one event of these customers in an experiment, occurred in ``[start,
    end)``, whatever their attribution (a churn weeks after a contact, or an epoch's revenue,
    names no open decision)."""

    experiment_key: str
    customer_ids: Sequence[str]
    event: str
    start: datetime
    end: datetime


def in_window(window: EventWindow, customers: Sequence[str]) -> tuple[ColumnElement[bool], ...]:
    """The conditions selecting ``window``'s outcomes of ``customers`` (a chunk of its own)."""
    return (
        col(Outcome.experiment_key) == window["experiment_key"],
        col(Outcome.customer_id).in_(customers),
        col(Outcome.event) == window["event"],
        col(Outcome.occurred_at) >= window["start"],
        col(Outcome.occurred_at) < window["end"],
    )


def customer_event_times(
    session: Session, **window: Unpack[EventWindow]
) -> dict[str, list[datetime]]:
    """Per customer, when their outcomes in ``window`` occurred, oldest first. Customers with
    none are absent."""
    times: dict[str, list[datetime]] = {}
    for chunk in chunks(list(dict.fromkeys(window["customer_ids"]))):
        stmt = select(Outcome.customer_id, Outcome.occurred_at).where(*in_window(window, chunk))
        for customer, occurred in session.exec(stmt):
            times.setdefault(str(customer), []).append(occurred)
    for found in times.values():
        found.sort()
    return times
