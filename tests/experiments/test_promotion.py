"""Safe promotion: a snapshot learned from inverted rewards is not served, a good one is, and
every verdict is stored with its estimates and reason (engine, on SQLite and PostgreSQL);
the rule itself on hand-computed logs. The world (two offers, clicks, an inverted period) is
:mod:`bench.promotion`'s, which measures the same over many seeds."""

from __future__ import annotations

import math
from collections.abc import Iterator
from statistics import NormalDist

import numpy as np
import pytest
from sqlmodel import select

from bench.promotion import FLOOR, KEY, START, gated_spec, serve_and_learn
from experiments.engine import DecisionEngine
from experiments.engine.clock import ManualClock
from experiments.engine.promotion import judge
from experiments.spec import PromotionSpec, parse_spec
from experiments.store.connection import make_engine
from experiments.store.database import Database
from experiments.store.models import Decision, PolicyPromotion, Reward
from experiments.store.promotions import list_promotions
from experiments.store.snapshots import snapshot_at, unpack_state

Z95 = NormalDist().inv_cdf(0.975)


@pytest.fixture(autouse=True)
def fresh_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decisions check the serving snapshot on every call, not once a second."""
    monkeypatch.setattr("experiments.engine.snapshots.SNAPSHOT_CHECK_SECONDS", 0.0)


@pytest.fixture
def core(migrated_database_url: str) -> Iterator[DecisionEngine]:
    engine = make_engine(migrated_database_url)
    try:
        made = DecisionEngine(Database(engine), clock=ManualClock(START), seed=3)
        made.create_experiment(gated_spec())
        yield made
    finally:
        engine.dispose()


def records(core: DecisionEngine) -> dict[int, PolicyPromotion]:
    with core.database.session() as session:
        return {row.version: row for row in list_promotions(session, experiment_key=KEY)}


def test_poisoned_snapshot_is_not_promoted_and_serving_stays(core: DecisionEngine) -> None:
    rng = np.random.default_rng(7)
    served, learned = serve_and_learn(core, rng, 400)
    assert (served, learned) == ({0}, 1)
    assert (records(core)[1].status, records(core)[1].serving_version) == ("pending", 0)
    assert core.loaded_policy(KEY).version == 0  # the candidate does not serve yet

    served, learned = serve_and_learn(core, rng, 400)  # v1 judged on these 400, then v2
    assert (served, learned) == ({0}, 2)
    first = records(core)[1]
    assert first.status == "promoted", first.reason
    assert first.reason.startswith("promoted: ")
    assert (first.serving_version, first.rows, first.estimator) == (0, 400, "snips")
    assert first.difference is not None
    assert first.difference_low is not None
    assert first.difference_low > 0  # learned the better offer: better than the prior
    assert core.loaded_policy(KEY).version == 1

    # The poisoned period: clicks reported inverted while v1 serves; v2 is judged on it
    # (it plays as v1 does, so it passes), and v3 learns the inverted rewards.
    served, learned = serve_and_learn(core, rng, 3000, inverted=True)
    assert (served, learned) == ({1}, 3)
    assert records(core)[2].status == "promoted", records(core)[2].reason
    assert records(core)[2].difference == 0.0  # same greedy choice, same floor

    # Clean rewards again: the poisoned v3 is judged on them and rejected.
    served, learned = serve_and_learn(core, rng, 400)
    assert (served, learned) == ({2}, 4)
    poisoned = records(core)[3]
    assert poisoned.status == "rejected", poisoned.reason
    assert poisoned.reason.startswith("rejected: ")
    assert "v2 keeps serving" in poisoned.reason
    assert poisoned.serving_version == 2
    assert poisoned.difference_high is not None
    assert poisoned.difference_high < 0
    assert poisoned.difference_low is not None
    assert poisoned.margin is not None
    assert poisoned.difference_low < -poisoned.margin
    assert core.loaded_policy(KEY).version == 2  # serving stays on the previous version
    assert (records(core)[4].status, records(core)[4].serving_version) == ("pending", 2)
    served, _ = serve_and_learn(core, rng, 10)
    assert served == {2}
    check_record_by_hand(core, poisoned)


def check_record_by_hand(core: DecisionEngine, record: PolicyPromotion) -> None:
    """Recompute the stored verdict from the rows it was judged on (those learned by the next
    version) with the plain SNIPS formula V = Σ w r / Σ w, w = π(a)/μ(a)."""
    with core.database.session() as session:
        experiment_spec = parse_spec(core.get_experiment(KEY).spec)
        policies = []
        for version in (record.version, record.serving_version):
            policy = experiment_spec.build_policy(seed=0, exploration_floor=FLOOR)
            snapshot = snapshot_at(session, experiment_key=KEY, version=version)
            assert snapshot is not None
            policy.set_state(unpack_state(snapshot.state))
            policies.append(policy.action_probabilities(np.zeros((1, 0)))[0])
        fresh = session.exec(
            select(Reward).where(Reward.learned_version == record.version + 1)
        ).all()
        decisions = {row.id: row for row in session.exec(select(Decision)).all()}
    actions = np.array([decisions[row.decision_id].action_index for row in fresh])
    mu = np.array([decisions[row.decision_id].propensity for row in fresh])
    reward = np.array([row.value for row in fresh])
    values = []
    for probs in policies:
        w = probs[actions] / mu
        values.append(float((w * reward).sum() / w.sum()))
    assert record.rows == len(fresh) == 400
    assert record.candidate_value == pytest.approx(values[0], rel=1e-12)
    assert record.serving_value == pytest.approx(values[1], rel=1e-12)
    assert record.difference == pytest.approx(values[0] - values[1], rel=1e-12)
    assert record.margin == pytest.approx(0.05 * abs(values[1]), rel=1e-12)


def test_the_learner_waits_for_min_rows_fresh_rewards(core: DecisionEngine) -> None:
    rng = np.random.default_rng(1)
    assert serve_and_learn(core, rng, 50)[1] == 1  # nothing pending: learns at once
    assert serve_and_learn(core, rng, 150)[1] is None  # v1 pending, 150 < 200 fresh
    assert records(core)[1].status == "pending"
    assert serve_and_learn(core, rng, 50)[1] == 2  # 200 fresh: judged, then learned
    assert records(core)[1].rows == 200


LOG = {
    "reward": np.array([1.0, 0.0, 1.0, 1.0]),
    "action": np.array([0, 1, 0, 1]),
    "propensity": np.array([0.5, 0.5, 0.25, 0.5]),
}
TARGET = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.0, 1.0]])
UNIFORM = np.full((4, 2), 0.5)
#: tests/bandit/test_ope.py works these out: Δ = 6/7 - 4/5 = 2/35, stderr √5896 / 1225.
DELTA, STDERR = 2 / 35, math.sqrt(5896) / 1225


@pytest.mark.parametrize(
    ("margin", "promoted"),
    [(Z95 * STDERR - DELTA + 1e-9, True), (Z95 * STDERR - DELTA - 1e-9, False)],
)
def test_judge_promotes_when_the_lower_bound_clears_minus_the_margin(
    margin: float, promoted: bool
) -> None:
    """Δ_low = 2/35 - 1.96 · √5896/1225 ≈ -0.066; a margin just above |Δ_low| promotes, one
    just below rejects."""
    verdict = judge(
        PromotionSpec(enabled=True, margin=margin),
        **LOG,
        candidate_probs=TARGET,
        serving_probs=UNIFORM,
        candidate_version=5,
        serving_version=4,
    )
    assert verdict.promoted is promoted
    assert verdict.difference is not None
    assert verdict.candidate is not None
    assert verdict.difference.value == pytest.approx(DELTA, rel=1e-14)
    assert verdict.difference.ci_low == pytest.approx(DELTA - Z95 * STDERR, rel=1e-14)
    assert verdict.candidate.value == pytest.approx(6 / 7, rel=1e-14)
    assert verdict.serving_value == pytest.approx(4 / 5, rel=1e-14)
    assert verdict.margin == margin
    assert verdict.rows == 4
    word = "promoted" if promoted else "rejected"
    assert verdict.reason.startswith(f"{word}: SNIPS candidate v5 0.8571 vs serving v4 0.8")


def test_judge_rejects_a_candidate_that_plays_no_logged_action() -> None:
    never = np.tile([0.0, 1.0], (4, 1))
    verdict = judge(
        PromotionSpec(enabled=True),
        reward=LOG["reward"],
        action=np.zeros(4, dtype=np.int64),
        propensity=LOG["propensity"],
        candidate_probs=never,
        serving_probs=UNIFORM,
        candidate_version=2,
        serving_version=1,
    )
    assert not verdict.promoted
    assert verdict.reason == (
        "rejected: candidate v2 plays none of the 4 fresh rewards' logged actions, so SNIPS "
        "cannot judge it; serving v1 keeps serving"
    )
