"""A gated ``lookahead_ts`` through the engine (SQLite and PostgreSQL): decisions, rewards
joined and learned, the gate's state and its short-term policy in the published snapshot, and
the served policy rebuilt from it with the gate where the snapshot left it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session

from bandit.policies.linear_ts import LinearTSPolicy
from bandit.policies.lookahead_ts import LookaheadTSPolicy
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.store.database import Database
from experiments.store.snapshots import latest_snapshot, unpack_state

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
KEY = "gated"
SPEC: dict[str, Any] = {
    "key": KEY,
    "factors": {"message": ["calm", "urgent"], "channel": ["sms", "email"]},
    "context": {"spend": {"type": "numeric", "min": 0}},
    "policy": {
        "name": "lookahead_ts",
        "params": {"gate_level": 0.05, "short_term_cap": 1.0, "n_samples": 16},
    },
    "reward": {"kind": "funnel", "events": ["click", "accept"], "window": "1d"},
    "holdout": {"share": 0.2},
    "state": {"contact_half_life": "7d", "lookback": "28d"},
}


def test_a_gated_policy_learns_publishes_and_serves_its_gate(engine: Engine) -> None:
    clock = ManualClock(START)
    core = DecisionEngine(Database(engine), clock=clock, seed=3)
    core.create_experiment(SPEC)
    customers = [f"c{index}" for index in range(60)]
    results = core.decide_many(
        KEY, [DecisionRequest(customer, {"spend": 1.0}) for customer in customers]
    )
    # every third decision clicked, and every sixth bought too: funnel rewards 1 and 2
    outcomes = []
    for index, result in enumerate(results):
        events = ["click", "accept"] if index % 6 == 0 else ["click"] if index % 3 == 0 else []
        outcomes += [
            OutcomeInput(
                outcome_id=f"o{index}-{event}",
                event=event,
                value=1.0,
                occurred_at=START + timedelta(hours=1),
                decision_id=result.decision_id,
            )
            for event in events
        ]
    core.record(outcomes)
    clock.set(START + timedelta(days=1, hours=1))
    assert core.join_rewards(KEY) == 60
    assert core.learn(KEY) == 1
    with Session(engine) as session:
        snapshot = latest_snapshot(session, experiment_key=KEY)
    assert snapshot is not None
    state = unpack_state(snapshot.state)
    assert float(state["gate_open"]) == 0.0  # 60 rows show no delayed effect
    # Both models learned every decision's reward (holdout rows included, as for any policy);
    # the short-term one the click: 20 clicks of 60 rewards, 10 of them worth 2 to the funnel.
    assert int(state["short_n_updates"]) == int(state["n_updates"]) == 60
    served = core.loaded_policy(KEY).treatment
    assert isinstance(served, LookaheadTSPolicy)
    assert served.gated
    assert not served.gate_open_
    for name, value in served.get_state().items():
        np.testing.assert_array_equal(value, state[name])
    # Closed, the served policy's distribution is linear Thompson sampling's on the context
    # without the contact state (4 level counts and the days), drawn from the same generator.
    contexts = np.random.default_rng(1).random((5, served.n_context))
    short_term = LinearTSPolicy(
        served.space,
        served.n_context - 5,
        n_samples=16,
        seed=copy.deepcopy(served.rng_),
        exploration_floor=served.exploration_floor,
    )
    short_term.set_state(
        {name.removeprefix("short_"): value for name, value in state.items() if "short_" in name}
    )
    np.testing.assert_array_equal(
        served.action_probabilities(contexts),
        short_term.action_probabilities(contexts[:, :-5]),
    )
