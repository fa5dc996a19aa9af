"""A short-term reward (``[reward.short_term]``) through the engine, on SQLite and PostgreSQL:
joined apart from the reward and the moment it is known (a click at once, while the funnel
waits for its window), with the window's day boundary exclusive; learned by the gated
policy's short-term learner alone, in steps of their own when no reward waits; and kept in
contexts' purge until learned."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from database_support import engine_with_experiment
from sqlmodel import select

from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.engine.learner import Learner
from experiments.store.connection import make_engine
from experiments.store.database import Database
from experiments.store.models import Reward, ShortTermReward
from experiments.store.retention import purge_contexts
from experiments.store.rewards import mark_rewards_learned
from experiments.store.snapshots import latest_snapshot, unpack_state

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KEY = "short-term"
CLICK = {"kind": "event", "event": "click", "window": "1d"}
SPEC: dict[str, Any] = {
    "key": KEY,
    "factors": {"message": ["calm", "urgent"], "channel": ["sms", "email"]},
    "context": {"spend": {"type": "numeric", "min": 0}},
    "policy": {
        "name": "lookahead_ts",
        "params": {"gate_level": 0.05, "short_term_reward": "own", "n_samples": 16},
    },
    "reward": {
        "kind": "funnel",
        "events": ["click", "accept"],
        "window": "1d",
        "short_term": CLICK,
    },
    "holdout": {"share": 0.0},
    "state": {"contact_half_life": "7d", "lookback": "28d"},
    "learner": {"batch_size": 1},
}


@pytest.fixture
def core(migrated_database_url: str) -> Iterator[tuple[DecisionEngine, ManualClock]]:
    with engine_with_experiment(migrated_database_url, SPEC, START) as made:
        yield made


def stored(core: DecisionEngine, table: type[Reward] | type[ShortTermReward]) -> dict[str, float]:
    with core.database.session() as session:
        return {row.decision_id: row.value for row in session.exec(select(table)).all()}


def outcome(decision_id: str, event: str, at: datetime) -> OutcomeInput:
    return OutcomeInput(
        outcome_id=f"{decision_id}-{event}-{at.isoformat()}",
        event=event,
        value=1.0,
        occurred_at=at,
        decision_id=decision_id,
    )


def test_the_short_term_reward_is_joined_when_known_apart_from_the_reward(
    core: tuple[DecisionEngine, ManualClock],
) -> None:
    decisions, clock = core
    names = ("clicker", "buyer", "idle", "last_minute", "at_close")
    ids = {
        name: decisions.decide(KEY, DecisionRequest(name, {"spend": 1.0})).decision_id
        for name in names
    }
    hour = timedelta(hours=1)
    decisions.record(
        [
            outcome(ids["clicker"], "click", START + hour),
            outcome(ids["buyer"], "click", START + hour),
            outcome(ids["buyer"], "accept", START + 2 * hour),
        ]
    )
    clock.set(START + 3 * hour)
    decisions.join_rewards(KEY)
    # The clicks settle the short-term reward at once; the funnel waits for its accept or its
    # window, except the buyer's, every step of which has occurred.
    assert stored(decisions, ShortTermReward) == {ids["clicker"]: 1.0, ids["buyer"]: 1.0}
    assert stored(decisions, Reward) == {ids["buyer"]: 2.0}

    decisions.record(
        [
            outcome(ids["last_minute"], "click", START + DAY - timedelta(minutes=1)),
            outcome(ids["at_close"], "click", START + DAY),  # the window's end is outside it
        ]
    )
    clock.set(START + DAY - timedelta(seconds=1))
    decisions.join_rewards(KEY)
    assert stored(decisions, ShortTermReward) == {
        ids["clicker"]: 1.0,
        ids["buyer"]: 1.0,
        ids["last_minute"]: 1.0,
    }
    clock.set(START + DAY)  # every window closes now
    decisions.join_rewards(KEY)
    expected = dict.fromkeys(("clicker", "buyer", "last_minute"), 1.0)
    expected |= {"idle": 0.0, "at_close": 0.0}
    assert stored(decisions, ShortTermReward) == {
        ids[name]: value for name, value in expected.items()
    }
    assert stored(decisions, Reward) == {
        ids["clicker"]: 1.0,
        ids["buyer"]: 2.0,
        ids["idle"]: 0.0,
        ids["last_minute"]: 1.0,
        ids["at_close"]: 0.0,
    }
    # A later pass writes nothing twice, and a late click changes nothing.
    decisions.record([outcome(ids["idle"], "click", START + DAY + hour)])
    clock.set(START + DAY + 2 * hour)
    assert decisions.join_rewards(KEY) == 0
    assert stored(decisions, ShortTermReward)[ids["idle"]] == 0.0


def test_a_new_process_joins_what_an_earlier_one_left(
    core: tuple[DecisionEngine, ManualClock], migrated_database_url: str
) -> None:
    """The join remembers its last pass in the process; a fresh engine (a restart) reads the
    decisions whose short window closed before it started."""
    decisions, clock = core
    first = decisions.decide(KEY, DecisionRequest("a", {"spend": 1.0})).decision_id
    clock.set(START + 2 * DAY)
    engine = make_engine(migrated_database_url)
    try:
        restarted = DecisionEngine(Database(engine), clock=clock, seed=4)
        restarted.join_rewards(KEY)
        assert stored(restarted, ShortTermReward) == {first: 0.0}
    finally:
        engine.dispose()


def test_short_term_rewards_teach_only_the_short_term_learner_and_wait_for_no_reward(
    core: tuple[DecisionEngine, ManualClock],
) -> None:
    decisions, clock = core
    results = decisions.decide_many(
        KEY, [DecisionRequest(f"c{index}", {"spend": 1.0}) for index in range(12)]
    )
    decisions.record([outcome(result.decision_id, "click", START) for result in results[:4]])
    clock.set(START + timedelta(hours=1))
    decisions.join_rewards(KEY)
    # Only short-term rewards wait: a step of their own learns them.
    learner = Learner(decisions)
    assert learner.run_once() == [1]
    with decisions.database.session() as session:
        snapshot = latest_snapshot(session, experiment_key=KEY)
        learned = session.exec(select(ShortTermReward.learned_version)).all()
    assert snapshot is not None
    assert learned == [1] * 4
    state = unpack_state(snapshot.state)
    assert int(state["short_n_updates"]) == 4
    assert int(state["n_updates"]) == 0
    assert snapshot.rows_learned == 0  # the reward's rows: none yet
    # The windows close: 8 more short-term rewards (0) and 12 funnel rewards, one step.
    clock.set(START + DAY)
    decisions.join_rewards(KEY)
    assert decisions.learn(KEY) == 2
    with decisions.database.session() as session:
        snapshot = latest_snapshot(session, experiment_key=KEY)
    assert snapshot is not None
    state = unpack_state(snapshot.state)
    assert (int(state["short_n_updates"]), int(state["n_updates"])) == (12, 12)
    assert decisions.learn(KEY) is None


def test_contexts_are_kept_until_the_short_term_reward_is_learned(
    core: tuple[DecisionEngine, ManualClock], migrated_database_url: str
) -> None:
    decisions, clock = core
    decision = decisions.decide(KEY, DecisionRequest("a", {"spend": 1.0})).decision_id
    clock.set(START + DAY)
    decisions.join_rewards(KEY)
    with decisions.database.session() as session:  # the reward learned, the short-term not
        mark_rewards_learned(session, decision_ids=[decision], version=1)
        session.commit()
    engine = make_engine(migrated_database_url)
    try:
        assert purge_contexts(engine, before=START + 2 * DAY) == 0
        assert decisions.learn(KEY) is not None
        assert purge_contexts(engine, before=START + 2 * DAY) == 1
    finally:
        engine.dispose()
