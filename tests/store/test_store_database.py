"""``Database``: sessions that keep rows readable after commit, the dialect, a liveness ping, and
PostgreSQL's session-level advisory lock (one holder at a time, free again once released)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from experiments.store import models
from experiments.store.database import Database, open_database
from experiments.store.experiments import create_experiment

LOCK_KEY = 0x7465_7374  # any constant of this test's own


@pytest.fixture
def databases(migrated_database_url: str):
    """Two databases on one migrated database, as two processes would each open one."""
    opened = [open_database(migrated_database_url) for _ in range(2)]
    yield opened
    for database in opened:
        database.dispose()


def test_rows_stay_readable_after_commit(databases: list[Database]) -> None:
    database, _ = databases
    now = datetime(2026, 1, 1, tzinfo=UTC)
    row = models.Experiment(key="promo", spec={}, created_at=now, updated_at=now)
    with database.session() as session:
        create_experiment(session, experiment=row)
        session.commit()
    assert row.key == "promo"  # no refresh needed: expire_on_commit is off
    database.ping()
    assert database.dialect in ("sqlite", "postgresql")


def test_session_lock_has_one_holder_at_a_time(databases: list[Database]) -> None:
    first, second = databases
    if first.dialect != "postgresql":
        pytest.skip("session-level advisory locks are PostgreSQL's")
    held = first.try_session_lock(LOCK_KEY)
    assert held is not None
    assert held.alive()
    assert second.try_session_lock(LOCK_KEY) is None
    held.release()
    again = second.try_session_lock(LOCK_KEY)
    assert again is not None
    again.release()
