"""Queries on the ``policy_snapshot`` table: publish a policy's learned state under a new
version and read the newest one.

Plain functions taking a ``Session`` and keyword-only arguments; none commits (the caller owns
the transaction). The unique ``(experiment, version)`` key settles races between learners.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from experiments.store._sql import attach, insert_ignoring_conflicts, row_of
from experiments.store.errors import SnapshotVersionError
from experiments.store.models import PolicySnapshot

__all__ = [
    "insert_snapshot",
    "latest_snapshot",
    "latest_snapshot_version",
]


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


def insert_snapshot(session: Session, *, snapshot: PolicySnapshot) -> PolicySnapshot:
    """Publish a snapshot; its version must be strictly greater than the newest stored one,
    else :class:`SnapshotVersionError` (the unique key settles races between learners)."""
    newest = latest_snapshot_version(session, experiment_key=snapshot.experiment_key)
    if newest is not None and snapshot.version <= newest:
        raise SnapshotVersionError(
            f"snapshot version {snapshot.version} of {snapshot.experiment_key!r} is not above "
            f"the newest stored version {newest}"
        )
    inserted = insert_ignoring_conflicts(
        session,
        PolicySnapshot,
        [row_of(snapshot, exclude=("id",))],
        conflict=["experiment_key", "version"],
        returning="id",
    )
    if not inserted:
        raise SnapshotVersionError(
            f"snapshot version {snapshot.version} of {snapshot.experiment_key!r} already exists"
        )
    snapshot.id = inserted[0]
    return attach(session, snapshot)
