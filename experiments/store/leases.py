"""Queries on the ``learner_lease`` table: the lease that lets one learner at a time fold
rewards into an experiment's policy, on SQLite as on PostgreSQL.

A lease is a row naming its holder and when it expires; taking it is one atomic upsert, so two
learners racing for it cannot both win, and a learner that died loses it when it expires. Plain
functions taking a ``Session`` and keyword-only arguments; commit to make a change visible to
other processes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, col

from experiments.store._sql import dialect, dialect_insert, table_of
from experiments.store.errors import StoreError
from experiments.store.models import LearnerLease

__all__ = [
    "acquire_lease",
    "release_lease",
]


def acquire_lease(
    session: Session, *, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now + ttl``, atomically: succeeds
    when nobody holds it, ``holder`` already does, or the previous lease expired. Commit to make
    it visible to other processes."""
    table = table_of(LearnerLease)
    row = {"name": name, "holder": holder, "expires_at": now + ttl, "heartbeat_at": now}
    backend = dialect(session)
    if backend not in ("sqlite", "postgresql"):  # pragma: no cover - both supported dialects upsert
        raise StoreError(f"leases need SQLite or PostgreSQL, not {backend}")
    insert = dialect_insert(backend, table).values(row)
    stmt = insert.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "holder": insert.excluded.holder,
            "expires_at": insert.excluded.expires_at,
            "heartbeat_at": insert.excluded.heartbeat_at,
        },
        where=or_(table.c.holder == insert.excluded.holder, table.c.expires_at <= now),
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
