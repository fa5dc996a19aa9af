"""A funnel reward through the engine's join, on SQLite and PostgreSQL: a decision whose every
step has occurred is rewarded at once with the number of steps, one with a step missing waits
for its window to close, and outcomes after the window do not count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from database_support import engine_with_experiment
from sqlmodel import select

from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.store.models import Reward

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
KEY = "funnel"
WINDOW = timedelta(hours=1)
SPEC = {
    "key": KEY,
    "factors": {"message": ["calm", "urgent"]},
    "context": {"tenure": {"type": "numeric", "min": 0}},
    "policy": {"name": "linear_ts", "params": {}},
    "reward": {"kind": "funnel", "events": ["click", "accept"], "window": "1h"},
    "holdout": {"share": 0.0},
}


@pytest.fixture
def core(migrated_database_url: str) -> Iterator[tuple[DecisionEngine, ManualClock]]:
    with engine_with_experiment(migrated_database_url, SPEC, START) as made:
        yield made


def rewards(core: DecisionEngine) -> dict[str, float]:
    with core.database.session() as session:
        return {row.decision_id: row.value for row in session.exec(select(Reward)).all()}


def test_the_funnel_counts_steps_and_is_final_once_every_step_occurred(
    core: tuple[DecisionEngine, ManualClock],
) -> None:
    decisions, clock = core
    ids = {
        name: decisions.decide(
            KEY, DecisionRequest(customer_id=name, context={"tenure": 1})
        ).decision_id
        for name in ("buyer", "clicker", "idle", "late")
    }
    minute = timedelta(minutes=1)
    clock.advance(5 * minute)
    decisions.record(
        [
            OutcomeInput("b-click", "click", 1.0, START + minute, ids["buyer"]),
            OutcomeInput("b-accept", "accept", 1.0, START + 2 * minute, ids["buyer"]),
            OutcomeInput("c-click", "click", 1.0, START + minute, ids["clicker"]),
            OutcomeInput("c-click2", "click", 1.0, START + 3 * minute, ids["clicker"]),
        ]
    )
    assert decisions.join_rewards(KEY) == 1
    assert rewards(decisions) == {ids["buyer"]: 2.0}  # both steps: final before the close

    clock.advance(WINDOW)  # the others' windows have closed
    decisions.record([OutcomeInput("l-click", "click", 1.0, START + WINDOW + minute, ids["late"])])
    assert decisions.join_rewards(KEY) == 3
    assert rewards(decisions) == {
        ids["buyer"]: 2.0,
        ids["clicker"]: 1.0,  # one step, clicked twice
        ids["idle"]: 0.0,  # the default
        ids["late"]: 0.0,  # its click came after the window
    }
