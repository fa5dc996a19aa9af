"""Report aggregates computed in SQL match numpy on random data, on both dialects."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlmodel import Session

from experiments.store.aggregates import (
    RewardAggregate,
    decision_counts_by_group,
    decision_counts_by_status,
    experiment_counts,
    outcome_counts_by_attribution,
    reward_aggregates,
)
from experiments.store.experiments import create_experiment
from experiments.store.models import Decision, Experiment, Outcome, Reward
from experiments.store.rewards import reward_rows
from experiments.vocabulary import Attribution

T0 = datetime(2025, 1, 6, tzinfo=UTC)
STATUSES = np.array(["open", "rewarded", "never_activated", "suppressed", "paused"])
ATTRIBUTIONS = np.array([a.value for a in Attribution])


def test_reward_aggregate_by_hand() -> None:
    """rewards [1, 2, 6]: n 3, Σx 9, Σx² 41, mean 3, m2 = 41 - 81/3 = 14, s² = 7."""
    agg = RewardAggregate(count=3, total=9.0, total_sq=41.0)
    assert (agg.mean, agg.m2, agg.variance) == (3.0, 14.0, 7.0)
    count, total, total_sq = agg
    assert (count, total, total_sq) == (3, 9.0, 41.0)
    empty = RewardAggregate(count=0, total=0.0, total_sq=0.0)
    assert np.isnan(empty.mean)
    assert empty.m2 == 0.0
    assert np.isnan(RewardAggregate(count=1, total=2.0, total_sq=4.0).variance)


@pytest.mark.parametrize("seed", [0, 1])
def test_aggregates_match_numpy(session: Session, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    group = np.where(rng.random(n) < 0.3, "holdout", "treatment")
    action = rng.integers(0, 4, size=n)
    status = STATUSES[rng.integers(0, len(STATUSES), size=n)]
    has_reward = (rng.random(n) < 0.7) & (status != "suppressed")
    value = np.round(rng.gamma(2.0, 15.0, size=n) * (rng.random(n) < 0.6), 2)

    for key in ("exp", "other"):
        create_experiment(session, experiment=Experiment(key=key))
    decisions = [
        Decision(
            experiment_key="exp",
            customer_id=f"c{i % 50}",
            created_at=T0 + timedelta(minutes=i),
            eligible_count=4,
            action_index=None if status[i] == "suppressed" else int(action[i]),
            group=str(group[i]),
            status=str(status[i]),
        )
        for i in range(n)
    ]
    # Noise in another experiment must not leak into the counts.
    noise = Decision(experiment_key="other", customer_id="x", eligible_count=1, action_index=0)
    session.add_all([*decisions, noise])
    session.flush()
    session.add_all(
        Reward(decision_id=d.id, experiment_key="exp", value=float(value[i]), computed_at=T0)
        for i, d in enumerate(decisions)
        if has_reward[i]
    )
    session.add(Reward(decision_id=noise.id, experiment_key="other", value=1e6, computed_at=T0))
    attribution = ATTRIBUTIONS[rng.integers(0, len(ATTRIBUTIONS), size=150)]
    session.add_all(
        Outcome(
            outcome_id=f"o{j}",
            experiment_key=None if a == "unknown_decision" else "exp",
            event="purchase",
            occurred_at=T0,
            received_at=T0,
            attribution=str(a),
        )
        for j, a in enumerate(attribution)
    )
    session.commit()

    by_group = reward_aggregates(session, experiment_key="exp")
    assert set(by_group) == {"treatment", "holdout"}
    for name, agg in by_group.items():
        x = value[has_reward & (group == name)]
        assert agg.count == x.size
        assert agg.total == pytest.approx(x.sum(), rel=1e-12)
        assert agg.total_sq == pytest.approx((x**2).sum(), rel=1e-12)
        assert agg.mean == pytest.approx(x.mean(), rel=1e-12)
        assert agg.variance == pytest.approx(x.var(ddof=1), rel=1e-9)

    # Per (group, action) cells from the learner's rows: the same rewards, joined in SQL.
    cells: dict[tuple[str, int], list[float]] = {}
    for row in reward_rows(session, experiment_key="exp"):
        cells.setdefault((row.group, row.action_index), []).append(row.value)
    by_action = {
        cell: RewardAggregate(len(xs), sum(xs), sum(x * x for x in xs))
        for cell, xs in cells.items()
    }
    expected_cells = {
        (str(g), int(a)) for g, a in zip(group[has_reward], action[has_reward], strict=True)
    }
    assert set(by_action) == expected_cells
    for (name, index), agg in by_action.items():
        x = value[has_reward & (group == name) & (action == index)]
        assert agg.count == x.size
        assert agg.total == pytest.approx(x.sum(), rel=1e-12)
        assert agg.m2 == pytest.approx(((x - x.mean()) ** 2).sum(), rel=1e-8, abs=1e-8)

    assert decision_counts_by_group(session, experiment_key="exp") == dict(Counter(group))
    assert decision_counts_by_status(session, experiment_key="exp") == dict(Counter(status))
    known = attribution[attribution != "unknown_decision"]
    assert outcome_counts_by_attribution(session, experiment_key="exp") == dict(Counter(known))
    assert outcome_counts_by_attribution(session, experiment_key=None) == dict(Counter(attribution))
    assert reward_aggregates(session, experiment_key="missing") == {}

    counts = experiment_counts(session, experiment_key="exp")
    by_status = {s: int((status == s).sum()) for s in STATUSES}
    assert counts["decisions"] == {
        "total": n,
        "by_status": by_status,
        "by_group": {
            "treatment": int((group == "treatment").sum()),
            "holdout": int((group == "holdout").sum()),
        },
    }
    assert counts["outcomes"] == {
        "total": known.size,
        "by_attribution": {a: int((known == a).sum()) for a in ATTRIBUTIONS},
    }
    assert counts["rewards"] == {
        "total": int(has_reward.sum()),
        "learned": 0,
        "unlearned": int(has_reward.sum()),
    }
    empty = experiment_counts(session, experiment_key="missing")
    assert empty["decisions"]["by_status"] == dict.fromkeys(STATUSES.tolist(), 0)
    assert empty["rewards"]["total"] == 0
