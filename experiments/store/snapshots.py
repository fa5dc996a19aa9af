"""Queries on the ``policy_snapshot`` table: publish a policy's learned state under a new
version and read the newest one, and the format of the stored state (a plain ``.npz``
archive of named arrays: :func:`pack_state` / :func:`unpack_state`, never pickle).

Plain functions taking a ``Session`` and keyword-only arguments; none commits (the caller owns
the transaction). The unique ``(experiment, version)`` key settles races between learners.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, select

from experiments.store._sql import attach, insert_ignoring_conflicts, row_of
from experiments.store.errors import SnapshotVersionError
from experiments.store.models import PolicySnapshot

__all__ = [
    "insert_snapshot",
    "latest_snapshot",
    "latest_snapshot_version",
    "pack_state",
    "snapshot_at",
    "unpack_state",
]


def pack_state(state: Mapping[str, np.ndarray]) -> bytes:
    """Serialise a policy state (name -> array) to ``.npz`` bytes; object arrays are refused, as
    :func:`unpack_state` would refuse them."""
    buffer = io.BytesIO()
    arrays = {name: np.asarray(value) for name, value in state.items()}
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def unpack_state(blob: bytes) -> dict[str, np.ndarray]:
    """Read ``.npz`` bytes back; object arrays are refused (``allow_pickle=False``)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def latest_snapshot(session: Session, *, experiment_key: str) -> PolicySnapshot | None:
    """The newest snapshot of ``experiment_key``, or ``None``."""
    stmt = (
        select(PolicySnapshot)
        .where(PolicySnapshot.experiment_key == experiment_key)
        .order_by(col(PolicySnapshot.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def snapshot_at(session: Session, *, experiment_key: str, version: int) -> PolicySnapshot | None:
    """Snapshot ``version`` of ``experiment_key``, or ``None``."""
    stmt = select(PolicySnapshot).where(
        PolicySnapshot.experiment_key == experiment_key, PolicySnapshot.version == version
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
