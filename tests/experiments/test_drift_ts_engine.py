"""drift_ts through the engine: its stacked state is published, stored and served again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bandit.policies import DriftTSPolicy
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.store.database import Database
from experiments.store.snapshots import latest_snapshot, unpack_state

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPEC = {
    "key": "drifting",
    "factors": {"offer": ["none", "bundle", "discount"], "channel": ["sms", "push"]},
    "context": {"tenure": {"type": "numeric", "min": 0}},
    "policy": {"name": "drift_ts", "params": {"drift_rates": [0.0, 1e-4], "n_samples": 50}},
    "reward": {"kind": "sum", "event": "revenue", "window": "1d"},
    "holdout": {"share": 0.0},
    "learner": {"batch_size": 5, "interval_seconds": 1},
}


def test_drift_ts_learns_publishes_and_is_served_from_its_snapshot(engine: Engine) -> None:
    """Ten decisions, four with revenue 3; after the window the learner folds the ten rewards
    into both models and publishes their means, covariances, noise posteriors and weights; a
    second engine loads that snapshot and decides with it."""
    clock = ManualClock(START)
    core = DecisionEngine(Database(engine), clock=clock, seed=3)
    core.create_experiment(SPEC)
    made = [
        core.decide("drifting", DecisionRequest(customer_id=f"c{i}", context={"tenure": i}))
        for i in range(10)
    ]
    assert all(0.0 < item.propensity <= 1.0 for item in made)
    core.record(
        [
            OutcomeInput(f"o{i}", "revenue", 3.0, START + timedelta(hours=1), item.decision_id)
            for i, item in enumerate(made[:4])
        ]
    )
    clock.advance(timedelta(days=1, seconds=1))
    assert core.join_rewards("drifting") == 10
    assert core.learn("drifting") == 1
    with Session(engine) as session:
        snapshot = latest_snapshot(session, experiment_key="drifting")
    assert snapshot is not None
    state = unpack_state(snapshot.state)
    assert state["log_weights"].shape == state["noise_shape"].shape == (2,)
    # Both models saw the ten rewards: a = 1 + 10 / 2 under the learned noise variance.
    np.testing.assert_allclose(state["noise_shape"], [6.0, 6.0])
    assert np.logaddexp.reduce(state["log_weights"]) == pytest.approx(0.0, abs=1e-12)
    again = DecisionEngine(Database(engine), clock=clock, seed=4)
    loaded = again.loaded_policy("drifting")
    assert loaded.version == 1
    assert isinstance(loaded.treatment, DriftTSPolicy)
    np.testing.assert_array_equal(loaded.treatment.get_state()["cov"], state["cov"])
    served = again.decide("drifting", DecisionRequest(customer_id="c99", context={"tenure": 2}))
    assert served.policy_version == 1
