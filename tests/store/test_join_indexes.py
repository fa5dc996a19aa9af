"""Migration 0006: the reward join's and the learner's queries read through indexes, not
through the experiment's whole history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, event, inspect
from sqlmodel import Session

from experiments.store.connection import make_engine
from experiments.store.decisions import (
    expired_deferred_decisions,
    reward_candidates,
    short_term_candidates,
)
from experiments.store.models import ShortTermReward
from experiments.store.rewards import unlearned_rewards
from experiments.store.schema import alembic_config, upgrade

#: index name -> (table, columns), as migration 0006 makes them.
JOIN_INDEXES = {
    "ix_decision_experiment_status_window": (
        "decision",
        ["experiment_key", "status", "window_closes_at"],
    ),
    "ix_outcome_experiment_received": ("outcome", ["experiment_key", "received_at"]),
    "ix_reward_experiment_learned": ("reward", ["experiment_key", "learned_version"]),
}


def indexes_of(engine: Engine) -> dict[str | None, tuple[str, list[str | None]]]:
    """Every index of the three tables: name -> (table, columns)."""
    inspector = inspect(engine)
    return {
        index["name"]: (table, list(index["column_names"]))
        for table in ("decision", "outcome", "reward")
        for index in inspector.get_indexes(table)
    }


def test_migration_0006_adds_the_join_indexes_and_the_downgrade_drops_them(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0005")
        assert JOIN_INDEXES.keys().isdisjoint(indexes_of(engine))
        assert upgrade(engine, "0006") == "0006"
        found = indexes_of(engine)
        assert {name: found[name] for name in JOIN_INDEXES} == JOIN_INDEXES
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0005")
        assert JOIN_INDEXES.keys().isdisjoint(indexes_of(engine))
        assert "ix_decision_experiment_customer_created" in indexes_of(engine)
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'engage.db'}")
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def query_plans(engine: Engine, calls: list[Callable[[Session], object]]) -> list[str]:
    """SQLite's plan of every SELECT the ``calls`` (functions of a session) send."""
    sent: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        """``before_cursor_execute``'s (conn, cursor, statement, parameters, context, many)."""
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            for call in calls:
                call(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    plans = []
    with engine.connect() as conn:
        for statement, parameters in sent:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plans.append("\n".join(str(row[-1]) for row in rows))
    return plans


def test_the_short_term_join_searches_decisions_by_activation_on_sqlite(
    sqlite_engine: Engine,
) -> None:
    """The short-term reward join (migration 0007): the decisions whose short window closed
    since the last pass by ``(experiment_key, activated_at)``, each checked for a short-term
    reward by its primary key, and the fresh outcomes as for the reward's join."""
    key, now = "exp", datetime(2026, 3, 1, tzinfo=UTC)
    due, fresh, unlearned = query_plans(
        sqlite_engine,
        [
            lambda s: short_term_candidates(
                s,
                experiment_key=key,
                closed_before=now,
                activated_since=now,
                fresh_since=now,
                with_context=False,
            ),
            lambda s: unlearned_rewards(s, experiment_key=key, table=ShortTermReward),
        ],
    )
    assert "ix_decision_experiment_activated (experiment_key=? AND activated_at>? AND" in due
    assert "ix_outcome_experiment_received (experiment_key=? AND received_at>?)" in fresh
    assert "SEARCH decision USING INDEX sqlite_autoindex_decision_1 (id=?)" in fresh
    assert "ix_short_term_reward_experiment_learned (experiment_key=? AND" in unlearned
    for plan in (due, fresh, unlearned):
        for table in ("decision", "outcome", "short_term_reward"):
            assert f"SCAN {table}" not in plan, plan


def test_the_join_and_learner_queries_search_the_new_indexes_on_sqlite(
    sqlite_engine: Engine,
) -> None:
    """No statistics (the simulator's scratch databases never ANALYZE): SQLite's planner must
    still pick the indexes, so no plan scans ``decision``, ``outcome`` or ``reward`` whole."""
    key, now = "exp", datetime(2026, 3, 1, tzinfo=UTC)
    plans = query_plans(
        sqlite_engine,
        [
            lambda s: reward_candidates(
                s, experiment_key=key, now=now, fresh_since=now, with_context=False
            ),
            lambda s: expired_deferred_decisions(s, experiment_key=key, created_before=now),
            lambda s: unlearned_rewards(s, experiment_key=key),
        ],
    )
    assert len(plans) == 4  # due windows, fresh outcomes, expired deferred, unlearned rewards
    due, fresh, expired, unlearned = plans
    assert "ix_decision_experiment_status_window (experiment_key=? AND status=? AND window" in due
    assert "ix_outcome_experiment_received (experiment_key=? AND received_at>?)" in fresh
    # Never-activated decisions are few: the activation index (migration 0007) finds them too.
    assert "ix_decision_experiment_activated (experiment_key=? AND activated_at=?)" in expired
    assert "ix_reward_experiment_learned (experiment_key=? AND learned_version=?)" in unlearned
    for plan in plans:
        for table in ("decision", "outcome", "reward"):
            assert f"SCAN {table}" not in plan, plan
