"""Queries on the ``strategy_assignment`` and ``strategy_snapshot`` tables: assign customers
their strategy for an epoch (insert-or-return), read the customers' outcomes in an epoch,
record each epoch's KPI, hand the strategy learner its rows, and publish its snapshots.

Plain functions taking a ``Session`` and keyword-only arguments; none commits (the caller owns
the transaction). The unique ``(experiment, customer, epoch)`` key makes an assignment stable
across processes: :func:`insert_assignments` skips rows another process stored first, and the
caller reads the stored ones back with :func:`assignments_for`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Unpack

from sqlalchemy import bindparam, func, update
from sqlmodel import Session, col, select

from experiments.store._sql import attach, chunks, insert_ignoring_conflicts, row_of, table_of
from experiments.store.errors import SnapshotVersionError
from experiments.store.models import Outcome, StrategyAssignment, StrategySnapshot
from experiments.store.outcomes import EventWindow, in_window
from experiments.vocabulary import Group

__all__ = [
    "assignments_due",
    "assignments_for",
    "epoch_outcome_totals",
    "erase_assignments",
    "first_assignments",
    "insert_assignments",
    "insert_strategy_snapshot",
    "latest_strategy_snapshot",
    "mark_assignments_learned",
    "measured_assignments",
    "set_assignment_kpis",
    "unlearned_assignments",
]


def assignments_for(
    session: Session, *, experiment_key: str, epoch: int, customer_ids: Sequence[str]
) -> dict[str, StrategyAssignment]:
    """The stored assignments of ``customer_ids`` for ``epoch``, by customer id."""
    found: dict[str, StrategyAssignment] = {}
    for chunk in chunks(list(dict.fromkeys(customer_ids))):
        stmt = select(StrategyAssignment).where(
            StrategyAssignment.experiment_key == experiment_key,
            StrategyAssignment.epoch == epoch,
            col(StrategyAssignment.customer_id).in_(chunk),
        )
        for row in session.exec(stmt):
            found[row.customer_id] = row
    return found


def first_assignments(
    session: Session, *, experiment_key: str, customer_ids: Sequence[str]
) -> dict[str, StrategyAssignment]:
    """Each customer's earliest assignment with a strategy (their enrolment), by customer id;
    customers without one are absent."""
    found: dict[str, StrategyAssignment] = {}
    for chunk in chunks(list(dict.fromkeys(customer_ids))):
        enrolment = (
            select(
                col(StrategyAssignment.customer_id).label("customer"),
                func.min(StrategyAssignment.epoch).label("epoch"),
            )
            .where(
                StrategyAssignment.experiment_key == experiment_key,
                col(StrategyAssignment.strategy).is_not(None),
                col(StrategyAssignment.customer_id).in_(chunk),
            )
            .group_by(col(StrategyAssignment.customer_id))
            .subquery()
        )
        stmt = (
            select(StrategyAssignment)
            .join(
                enrolment,
                (col(StrategyAssignment.customer_id) == enrolment.c.customer)
                & (col(StrategyAssignment.epoch) == enrolment.c.epoch),
            )
            .where(StrategyAssignment.experiment_key == experiment_key)
        )
        for row in session.exec(stmt):
            found[row.customer_id] = row
    return found


def insert_assignments(
    session: Session, *, assignments: Sequence[StrategyAssignment | Mapping[str, Any]]
) -> set[str]:
    """Store new assignments, skipping any whose (experiment, customer, epoch) is taken;
    returns the customer ids of the rows written here."""
    rows = [
        dict(item) if isinstance(item, Mapping) else row_of(item, exclude=("id",))
        for item in assignments
    ]
    for row in rows:
        row.pop("id", None)
    inserted = insert_ignoring_conflicts(
        session,
        StrategyAssignment,
        rows,
        conflict=["experiment_key", "customer_id", "epoch"],
        returning="customer_id",
    )
    return set(inserted)


def assignments_due(
    session: Session, *, experiment_key: str, now: datetime, limit: int = 10_000
) -> list[StrategyAssignment]:
    """Assignments whose epoch has ended (``epoch_end <= now``) and whose KPI is not measured
    yet, oldest epoch first."""
    stmt = (
        select(StrategyAssignment)
        .where(
            StrategyAssignment.experiment_key == experiment_key,
            StrategyAssignment.epoch_end <= now,
            col(StrategyAssignment.kpi).is_(None),
        )
        .order_by(col(StrategyAssignment.epoch_end), col(StrategyAssignment.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def epoch_outcome_totals(
    session: Session, **window: Unpack[EventWindow]
) -> dict[str, tuple[float, int]]:
    """Per customer, the sum and the count of their outcomes in ``window`` (an epoch's KPI
    counts everything the customer did). Customers with none are absent."""
    totals: dict[str, tuple[float, int]] = {}
    for chunk in chunks(list(dict.fromkeys(window["customer_ids"]))):
        stmt = (
            select(Outcome.customer_id, func.sum(Outcome.value), func.count())
            .where(*in_window(window, chunk))
            .group_by(Outcome.customer_id)
        )
        for customer, total, count in session.exec(stmt):
            totals[str(customer)] = (float(total), int(count))
    return totals


def set_assignment_kpis(
    session: Session, *, kpis: Mapping[int, float], measured_at: datetime
) -> None:
    """Record each assignment's epoch KPI (by assignment id), once: rows already measured keep
    their value. One statement, executed for every row (an executemany)."""
    if not kpis:
        return
    table = table_of(StrategyAssignment)
    stmt = (
        table.update()
        .where(table.c.id == bindparam("row_id"), table.c.kpi.is_(None))
        .values(kpi=bindparam("row_kpi"), measured_at=measured_at)
    )
    session.connection().execute(
        stmt,
        [{"row_id": key, "row_kpi": float(value)} for key, value in sorted(kpis.items())],
    )


def unlearned_assignments(
    session: Session, *, experiment_key: str, limit: int = 100_000
) -> list[StrategyAssignment]:
    """Measured treatment assignments no strategy snapshot has folded in, oldest first."""
    stmt = (
        select(StrategyAssignment)
        .where(
            StrategyAssignment.experiment_key == experiment_key,
            StrategyAssignment.group == Group.TREATMENT.value,
            col(StrategyAssignment.strategy).is_not(None),
            col(StrategyAssignment.kpi).is_not(None),
            col(StrategyAssignment.learned_version).is_(None),
        )
        .order_by(col(StrategyAssignment.epoch_end), col(StrategyAssignment.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def mark_assignments_learned(
    session: Session, *, assignment_ids: Sequence[int], version: int
) -> int:
    """Record that strategy snapshot ``version`` folded in these assignments (those not yet
    learned); returns how many changed."""
    changed = 0
    for chunk in chunks(list(dict.fromkeys(assignment_ids))):
        stmt = (
            update(StrategyAssignment)
            .where(
                col(StrategyAssignment.id).in_(chunk),
                col(StrategyAssignment.learned_version).is_(None),
            )
            .values(learned_version=version)
            .execution_options(synchronize_session=False)
        )
        changed += session.exec(stmt).rowcount
    return changed


def measured_assignments(session: Session, *, experiment_key: str) -> list[StrategyAssignment]:
    """Every assignment of ``experiment_key`` whose KPI is measured (treatment and holdout),
    by epoch: what the report compares."""
    stmt = (
        select(StrategyAssignment)
        .where(
            StrategyAssignment.experiment_key == experiment_key,
            col(StrategyAssignment.kpi).is_not(None),
        )
        .order_by(col(StrategyAssignment.epoch), col(StrategyAssignment.id))
    )
    return list(session.exec(stmt))


def erase_assignments(session: Session, *, customer_id: str, token: str) -> int:
    """Replace ``customer_id`` by ``token`` in every assignment and empty their contexts
    (right to erasure); returns how many rows changed."""
    stmt = (
        update(StrategyAssignment)
        .where(col(StrategyAssignment.customer_id) == customer_id)
        .values(customer_id=token, context={})
        .execution_options(synchronize_session=False)
    )
    return int(session.exec(stmt).rowcount)


def latest_strategy_snapshot(session: Session, *, experiment_key: str) -> StrategySnapshot | None:
    """The newest strategy snapshot of ``experiment_key``, or ``None``."""
    stmt = (
        select(StrategySnapshot)
        .where(StrategySnapshot.experiment_key == experiment_key)
        .order_by(col(StrategySnapshot.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def insert_strategy_snapshot(session: Session, *, snapshot: StrategySnapshot) -> StrategySnapshot:
    """Publish a strategy snapshot; its version must be new, else :class:`SnapshotVersionError`
    (the unique key settles races between learners)."""
    newest = session.exec(
        select(func.max(StrategySnapshot.version)).where(
            StrategySnapshot.experiment_key == snapshot.experiment_key
        )
    ).one()
    if newest is not None and snapshot.version <= newest:
        raise SnapshotVersionError(
            f"strategy snapshot version {snapshot.version} of {snapshot.experiment_key!r} is "
            f"not above the newest stored version {newest}"
        )
    inserted = insert_ignoring_conflicts(
        session,
        StrategySnapshot,
        [row_of(snapshot, exclude=("id",))],
        conflict=["experiment_key", "version"],
        returning="id",
    )
    if not inserted:
        raise SnapshotVersionError(
            f"strategy snapshot version {snapshot.version} of {snapshot.experiment_key!r} "
            "already exists"
        )
    snapshot.id = inserted[0]
    return attach(session, snapshot)
