"""Purging old contexts and erasing a customer keep every count the reports need."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.store import models
from experiments.store.aggregates import experiment_counts, reward_aggregates
from experiments.store.database import Database
from experiments.store.errors import InvalidFieldError
from experiments.store.retention import erase_customer, purge_contexts
from experiments.store.snapshots import latest_snapshot

START = datetime(2026, 3, 1, tzinfo=UTC)
SPEC = {
    "key": "promo",
    "factors": {"offer": ["none", "bundle"]},
    "context": {"tenure": {"type": "numeric", "min": 0}},
    "policy": {"name": "linucb", "params": {}},
    "reward": {"kind": "event", "event": "click", "window": "1d"},
    "holdout": {"share": 0.3},
}


def snapshot_of_counts(engine: Engine) -> tuple:
    with Session(engine) as session:
        return (
            experiment_counts(session, experiment_key="promo"),
            reward_aggregates(session, experiment_key="promo"),
        )


@pytest.fixture
def history(engine: Engine) -> tuple[Engine, ManualClock]:
    """Old decisions (rewarded and learned) for c0..c9, then a fresh open one for c1."""
    clock = ManualClock(START)
    core = DecisionEngine(Database(engine), clock=clock, seed=0)
    core.create_experiment(SPEC)
    made = [
        core.decide("promo", DecisionRequest(customer_id=f"c{i}", context={"tenure": i}))
        for i in range(10)
    ]
    core.record(
        OutcomeInput(f"o{i}", "click", 1.0, START + timedelta(hours=1), made[i].decision_id)
        for i in range(0, 10, 2)
    )
    clock.advance(timedelta(days=2))
    core.join_rewards("promo")
    core.learn("promo")
    core.decide("promo", DecisionRequest(customer_id="c1", context={"tenure": 4}))
    return engine, clock


def test_purge_empties_only_closed_learned_contexts(history: tuple[Engine, ManualClock]) -> None:
    engine, clock = history
    before = snapshot_of_counts(engine)
    assert purge_contexts(engine, before=clock.now() + timedelta(days=1)) == 10
    with Session(engine) as session:
        contexts = [row.context for row in session.exec(select(models.Decision))]
    assert sorted(map(len, contexts)) == [0] * 10 + [1]  # the open decision keeps its context
    assert snapshot_of_counts(engine) == before
    with pytest.raises(InvalidFieldError, match="needs a timezone") as info:
        purge_contexts(engine, before=datetime(2026, 1, 1))
    assert isinstance(info.value, ValueError)
    assert info.value.field == "before"


def test_erasure_removes_the_customer_and_the_report_adds_up(
    history: tuple[Engine, ManualClock],
) -> None:
    engine, _ = history
    before = snapshot_of_counts(engine)
    result = erase_customer(engine, customer_id="c1")
    assert (result.decisions, result.outcomes) == (2, 0)
    with Session(engine) as session:
        remaining = session.exec(
            select(models.Decision.id).where(models.Decision.customer_id == "c1")
        ).all()
    assert len(remaining) == 0
    assert erase_customer(engine, customer_id="c2").outcomes == 1
    with Session(engine) as session:
        outcome_customers = {row.customer_id for row in session.exec(select(models.Outcome))}
    assert "c2" not in outcome_customers
    assert snapshot_of_counts(engine) == before
    with pytest.raises(InvalidFieldError, match="must not be empty") as info:
        erase_customer(engine, customer_id="")
    assert info.value.field == "customer_id"


def test_an_erased_open_decision_is_not_learned_but_still_counted(
    history: tuple[Engine, ManualClock],
) -> None:
    engine, clock = history
    erase_customer(engine, customer_id="c1")  # c1's newest decision is still open
    clock.advance(timedelta(days=2))
    core = DecisionEngine(Database(engine), clock=clock, seed=0)
    assert core.join_rewards("promo") == 1
    assert core.learn("promo") == 2
    with Session(engine) as session:
        snapshot = latest_snapshot(session, experiment_key="promo")
        counts = experiment_counts(session, experiment_key="promo")
    assert snapshot is not None
    assert snapshot.rows_learned == 10  # the erased row was skipped
    assert counts["rewards"] == {"total": 11, "learned": 11, "unlearned": 0}
