"""The strategy tables on SQLite and PostgreSQL: insert-or-return on the (experiment, customer,
epoch) key, epochs due, a customer's outcomes in an epoch, KPIs written once, learning marks,
snapshots, erasure, and migration 0002 over a database that already holds decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, inspect
from sqlmodel import Session, select

from experiments.store import models
from experiments.store.connection import make_engine
from experiments.store.errors import SnapshotVersionError
from experiments.store.outcomes import insert_outcomes
from experiments.store.retention import erase_customer
from experiments.store.schema import alembic_config, current_revision, upgrade
from experiments.store.strategies import (
    assignments_due,
    assignments_for,
    epoch_outcome_totals,
    insert_assignments,
    insert_strategy_snapshot,
    latest_strategy_snapshot,
    mark_assignments_learned,
    measured_assignments,
    set_assignment_kpis,
    unlearned_assignments,
)

START = datetime(2026, 3, 2, tzinfo=UTC)
WEEK = timedelta(days=7)


def row(customer: str, epoch: int = 0, strategy: str | None = "calm", **extra: Any) -> dict:
    return {
        "experiment_key": "promo",
        "customer_id": customer,
        "epoch": epoch,
        "epoch_start": START + epoch * WEEK,
        "epoch_end": START + (epoch + 1) * WEEK,
        "group": "treatment" if strategy is not None else "holdout",
        "strategy": strategy,
        "strategy_index": None if strategy is None else 1,
        "propensity": None if strategy is None else 0.4,
        "policy_version": 0,
        "context": {"spend": 2.0},
        "assigned_at": START,
        "kpi": None,
        "measured_at": None,
        "learned_version": None,
        **extra,
    }


@pytest.fixture
def promo(session: Session) -> Session:
    session.add(models.Experiment(key="promo", spec={}, status="running"))
    session.commit()
    return session


def test_insert_or_return_on_the_epoch_key(promo: Session) -> None:
    assert insert_assignments(promo, assignments=[row("c1"), row("c2", strategy=None)]) == {
        "c1",
        "c2",
    }
    promo.commit()
    # A second process's rows for the same customers and epoch are skipped, not raised.
    written = insert_assignments(
        promo, assignments=[row("c1", strategy="all"), row("c3"), row("c1", epoch=1)]
    )
    promo.commit()
    assert written == {"c3", "c1"}  # c1 of epoch 1 only
    stored = assignments_for(promo, experiment_key="promo", epoch=0, customer_ids=["c1", "c2"])
    assert {key: value.strategy for key, value in stored.items()} == {"c1": "calm", "c2": None}
    assert len(promo.exec(select(models.StrategyAssignment)).all()) == 4


def test_due_epochs_outcomes_kpis_and_learning(promo: Session) -> None:
    insert_assignments(promo, assignments=[row("c1"), row("c2", strategy=None), row("c1", epoch=1)])
    insert_outcomes(
        promo,
        outcomes=[
            {
                "outcome_id": "a",
                "experiment_key": "promo",
                "customer_id": "c1",
                "event": "revenue",
                "value": 2.5,
                "occurred_at": START,
            },
            {
                "outcome_id": "b",
                "experiment_key": "promo",
                "customer_id": "c1",
                "event": "revenue",
                "value": 4.0,
                "occurred_at": START + WEEK - timedelta(microseconds=1),
                "attribution": "late",
            },
            {
                "outcome_id": "c",
                "experiment_key": "promo",
                "customer_id": "c1",
                "event": "revenue",
                "value": 9.0,
                "occurred_at": START + WEEK,
            },
            {
                "outcome_id": "d",
                "experiment_key": "promo",
                "customer_id": "c1",
                "event": "click",
                "value": 1.0,
                "occurred_at": START,
            },
            {
                "outcome_id": "e",
                "experiment_key": "other",
                "customer_id": "c1",
                "event": "revenue",
                "value": 50.0,
                "occurred_at": START,
            },
        ],
    )
    promo.commit()
    assert (
        assignments_due(promo, experiment_key="promo", now=START + WEEK - timedelta(seconds=1))
        == []
    )
    due = assignments_due(promo, experiment_key="promo", now=START + WEEK)
    assert [(item.customer_id, item.epoch) for item in due] == [("c1", 0), ("c2", 0)]
    totals = epoch_outcome_totals(
        promo,
        experiment_key="promo",
        customer_ids=["c1", "c2"],
        event="revenue",
        start=START,
        end=START + WEEK,
    )
    assert totals == {"c1": (6.5, 2)}
    ids = {item.customer_id: item.id for item in due}
    set_assignment_kpis(promo, kpis={ids["c1"]: 6.5, ids["c2"]: 0.0}, measured_at=START + WEEK)
    set_assignment_kpis(promo, kpis={ids["c1"]: 99.0}, measured_at=START + 2 * WEEK)  # once
    promo.commit()
    measured = measured_assignments(promo, experiment_key="promo")
    assert [(item.customer_id, item.kpi) for item in measured] == [("c1", 6.5), ("c2", 0.0)]
    assert measured[0].measured_at == START + WEEK
    assert assignments_due(promo, experiment_key="promo", now=START + WEEK) == []
    # Only measured treatment rows are learned; the holdout never is.
    unlearned = unlearned_assignments(promo, experiment_key="promo")
    assert [item.customer_id for item in unlearned] == ["c1"]
    assert mark_assignments_learned(promo, assignment_ids=[ids["c1"]], version=1) == 1
    assert mark_assignments_learned(promo, assignment_ids=[ids["c1"]], version=2) == 0  # once
    promo.commit()
    assert unlearned_assignments(promo, experiment_key="promo") == []


def test_strategy_snapshots_are_versioned(promo: Session) -> None:
    assert latest_strategy_snapshot(promo, experiment_key="promo") is None
    for version in (1, 2):
        insert_strategy_snapshot(
            promo,
            snapshot=models.StrategySnapshot(
                experiment_key="promo", version=version, state=b"x", created_at=START
            ),
        )
    promo.commit()
    latest = latest_strategy_snapshot(promo, experiment_key="promo")
    assert latest is not None
    assert latest.version == 2
    with pytest.raises(SnapshotVersionError):
        insert_strategy_snapshot(
            promo,
            snapshot=models.StrategySnapshot(
                experiment_key="promo", version=2, state=b"y", created_at=START
            ),
        )


def test_erasure_reaches_the_assignments(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(models.Experiment(key="promo", spec={}, status="running"))
        session.commit()
        insert_assignments(session, assignments=[row("c1"), row("c1", epoch=1), row("c2")])
        session.commit()
    result = erase_customer(engine, customer_id="c1")
    assert result.strategy_assignments == 2
    with Session(engine) as session:
        rows = session.exec(select(models.StrategyAssignment)).all()
    assert {item.customer_id for item in rows} == {"c2", result.token}
    assert [item.context for item in rows if item.customer_id == result.token] == [{}, {}]


def test_migration_0002_keeps_existing_decisions(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO experiment (key, description, spec, status, exploration_floor, "
                "apprentice, created_at, updated_at) VALUES ('promo', '', '{}', 'running', 0.0, "
                "false, '2026-03-02 00:00:00+00:00', '2026-03-02 00:00:00+00:00')"
            )
            connection.exec_driver_sql(
                "INSERT INTO decision (id, experiment_key, customer_id, created_at, context, "
                'eligible_count, excluded, "group", policy_version, deferred, status) VALUES '
                "('d1', 'promo', 'c1', '2026-03-02 00:00:00+00:00', '{}', 2, '[]', "
                "'treatment', 0, false, 'open')"
            )
        assert upgrade(engine, "0002") == "0002"
        with Session(engine) as session:
            decision = session.get(models.Decision, "d1")
        assert decision is not None
        assert decision.strategy is None
        columns = {column["name"] for column in inspect(engine).get_columns("decision")}
        assert "strategy" in columns
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0001")
        assert current_revision(engine) == "0001"
        tables = set(inspect(engine).get_table_names())
        assert not {"strategy_assignment", "strategy_snapshot"} & tables
        columns = {column["name"] for column in inspect(engine).get_columns("decision")}
        assert "strategy" not in columns
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT id FROM decision").scalars().all() == ["d1"]
    finally:
        engine.dispose()
