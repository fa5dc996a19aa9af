"""Honest measurement in ``engage run``: one holdout for every arm, common random numbers,
outcomes routed to the decision they belong to, oracles under the contact rules, paired
comparisons and their reading."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from experiments.analysis.lift import NO_DIFFERENCE, LiftRow, kpi_lift_rows, paired_difference
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.runs.arms import ARMS, arm_spec
from experiments.runs.comparison import compare_arms, comparison_of
from experiments.runs.oracles import OracleResult, revenue_objective, run_oracles
from experiments.runs.report import approach_arm, render_markdown, result_json, verdict
from experiments.runs.routing import OutcomeRouter
from experiments.runs.simulation import (
    ArmResult,
    RunOptions,
    RunResult,
    holdout_mask,
    run_simulation,
)
from experiments.runs.world import contact_rules, world_config
from experiments.simulate import ContactRules, greedy_rollout
from experiments.spec import ExperimentSpec, load_spec, parse_spec
from experiments.store.database import open_database
from experiments.store.rewards import reward_rows
from experiments.store.schema import upgrade

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DAY = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def mechanism() -> ExperimentSpec:
    return load_spec(EXAMPLES / "mechanism.toml")


# ------------------------------------------------------------------ one holdout for all arms
def test_every_arm_holds_out_the_customers_of_the_base_spec(mechanism: ExperimentSpec) -> None:
    base = holdout_mask(mechanism, 5_000)
    assert 0.08 < base.mean() < 0.12
    for arm in ARMS:
        spec = arm_spec(mechanism, arm)
        assert spec.key != mechanism.key
        assert spec.holdout.salt == mechanism.key
        assert np.array_equal(holdout_mask(spec, 5_000), base)
    salted = parse_spec({**mechanism.to_json_dict(), "key": "other"})
    assert not np.array_equal(holdout_mask(salted, 5_000), base)  # no salt: the key's hash


def test_the_engine_assigns_groups_on_the_salt_when_there_is_one(
    mechanism: ExperimentSpec, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'salt.db'}"
    upgrade(url)
    engine = DecisionEngine(open_database(url), clock=ManualClock(DAY), seed=0)
    groups = {}
    for key in ("salted-a", "salted-b"):
        data = mechanism.to_json_dict()
        data["key"], data["contact"] = key, {}
        data["holdout"] = {**data["holdout"], "share": 0.5, "salt": "shared"}
        spec = parse_spec(data)
        engine.create_experiment(spec)
        answers = engine.decide_many(
            key,
            [DecisionRequest(customer_id=f"c{index}", context=_context()) for index in range(200)],
        )
        groups[key] = [answer.group for answer in answers]
    assert groups["salted-a"] == groups["salted-b"]
    expected = holdout_mask(spec, 200)
    assert [group == "holdout" for group in groups["salted-a"]] == expected.tolist()
    engine.database.dispose()


def test_arms_with_the_same_policy_land_on_the_same_outcomes(mechanism: ExperimentSpec) -> None:
    """Common random numbers: the world's draws are the same whoever is contacted and the
    arms share their holdout, so two experiments running the same policy under different
    keys make the same decisions and see the same outcomes, customer by customer."""
    options = RunOptions(customers=400, days=6, seed=2, arms=("interaction",), oracles=False)
    runs = []
    for key in ("twin-a", "twin-b"):
        data = mechanism.to_json_dict()
        data["key"] = key
        data["holdout"] = {**data["holdout"], "salt": "twins"}
        data["simulation"] = {"burn_in_days": 3}
        runs.append(run_simulation(parse_spec(data), options))
    first, second = (run.arms[0] for run in runs)
    assert first.decisions > 0
    assert np.array_equal(runs[0].treated, runs[1].treated)
    for kpi in ("revenue", "retention"):
        assert np.array_equal(first.per_customer[kpi], second.per_customer[kpi])
    assert first.daily == second.daily


def test_a_run_does_not_depend_on_how_often_the_engine_checks_for_snapshots(
    mechanism: ExperimentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy a seeded run serves is a function of its calls, not of wall-clock time:
    checking the store for a newer snapshot at every decision or never gives the same run
    (before the first snapshot, and after the publishing process's own learn)."""
    from experiments.engine import snapshots

    data = mechanism.to_json_dict()
    data["simulation"] = {"burn_in_days": 2}
    spec = parse_spec(data)
    options = RunOptions(customers=300, days=5, seed=1, arms=("interaction",), oracles=False)
    monkeypatch.setattr(snapshots, "SNAPSHOT_CHECK_SECONDS", 0.0)
    eager = run_simulation(spec, options).arms[0]
    monkeypatch.setattr(snapshots, "SNAPSHOT_CHECK_SECONDS", 1e9)
    lazy = run_simulation(spec, options).arms[0]
    assert eager.policy_version >= 3
    assert eager.daily == lazy.daily


def test_the_policy_seed_moves_the_learners_and_not_the_world(mechanism: ExperimentSpec) -> None:
    """``policy_seed`` seeds only the learners: the same world (oracles, holdout, pre-period
    customers) under another learning path; by default it is the world's seed."""
    data = mechanism.to_json_dict()
    data["simulation"] = {"burn_in_days": 2}
    spec = parse_spec(data)
    options = RunOptions(customers=300, days=3, seed=1, arms=("interaction",))
    default = run_simulation(spec, options)
    same = run_simulation(spec, replace(options, policy_seed=1))
    other = run_simulation(spec, replace(options, policy_seed=7))
    other_world = run_simulation(spec, replace(options, seed=7, policy_seed=1))
    assert same.arms[0].daily == default.arms[0].daily
    assert default.oracles is not None
    assert other.oracles is not None
    assert other.oracles.revenue == default.oracles.revenue
    assert np.array_equal(other.treated, default.treated)
    assert other.arms[0].daily != default.arms[0].daily
    assert other_world.oracles is not None
    assert other_world.oracles.revenue != default.oracles.revenue
    assert result_json(other)["options"]["policy_seed"] == 7
    assert "seed 1, policy seed 7;" in render_markdown(other)
    assert "policy seed" not in render_markdown(same)


# ------------------------------------------------------------------ the reward join's boundary
def test_an_event_goes_to_the_newest_decision_shown_at_or_before_it() -> None:
    router = OutcomeRouter()
    window = timedelta(days=1)
    at = DAY.replace(hour=8)
    router.add(7, at, "eight", at + window)
    router.add(7, at.replace(hour=12), "noon", at.replace(hour=12) + window)
    assert router.route(7, at.replace(hour=9)) == "eight"
    assert router.route(7, at.replace(hour=12)) == "noon"
    assert router.route(7, at.replace(hour=7)) is None  # before any decision
    assert router.route(8, at.replace(hour=9)) is None  # another customer
    assert router.route(7, at + timedelta(days=1, hours=5)) is None  # noon's window closed
    router.forget_closed(at + timedelta(days=1, hours=1))  # eight's window has closed
    assert router.route(7, at + timedelta(hours=13)) == "noon"
    assert router.route(7, at.replace(hour=9)) is None
    with pytest.raises(ValueError, match="order"):
        router.add(7, at, "late", at + window)


def test_an_outcome_before_a_new_decision_is_credited_to_the_earlier_one(
    mechanism: ExperimentSpec, tmp_path: Path
) -> None:
    """A decision at 08:00, a new one at 12:00 and a revenue outcome at 09:00: routed by the
    runner's rule, the 08:00 decision's reward holds it and the 12:00 one's does not."""
    url = f"sqlite:///{tmp_path / 'boundary.db'}"
    upgrade(url)
    data = mechanism.to_json_dict()
    data["key"], data["contact"] = "boundary", {}
    data["holdout"] = {"share": 0.0}
    data["reward"] = {"kind": "sum", "event": "revenue", "window": "1d"}
    spec = parse_spec(data)
    clock = ManualClock(DAY.replace(hour=8))
    engine = DecisionEngine(open_database(url), clock=clock, seed=0)
    engine.create_experiment(spec)
    router = OutcomeRouter()
    ids = {}
    for hour in (8, 12):
        clock.set(DAY.replace(hour=hour))
        (answer,) = engine.decide_many(
            "boundary", [DecisionRequest(customer_id="c1", context=_context())]
        )
        router.add(1, clock.now(), answer.decision_id, clock.now() + spec.reward.window)
        ids[hour] = answer.decision_id
    occurred = DAY.replace(hour=9)
    decision = router.route(1, occurred)
    assert decision == ids[8]
    engine.record(
        [
            OutcomeInput(
                outcome_id="o1",
                event="revenue",
                value=5.0,
                occurred_at=occurred,
                decision_id=decision,
            )
        ]
    )
    clock.set(DAY + timedelta(days=2))
    assert engine.join_rewards("boundary") == 2
    with engine.database.session() as session:
        rewards = {
            row.decision_id: row.value for row in reward_rows(session, experiment_key="boundary")
        }
    assert rewards == {ids[8]: 5.0, ids[12]: 0.0}
    engine.database.dispose()


def _context() -> dict[str, object]:
    return {
        "device": "android",
        "plan": "prepaid",
        "region": "north",
        "tenure_months": 12,
        "usage_7d": 1.0,
        "usage_30d": 4.0,
        "spend_7d": 5.0,
        "spend_30d": 20.0,
        "local_hour": 12,
    }


# ------------------------------------------------------------------ oracles under contact rules
def test_the_world_and_the_oracles_follow_the_spec(mechanism: ExperimentSpec) -> None:
    rules = contact_rules(mechanism)
    assert rules == ContactRules(max_decisions=3, per_days=7, quiet_hours=(22, 8))
    options = RunOptions(customers=300, days=5, seed=4)
    config = world_config(mechanism, options)
    assert (config.n_customers, config.n_days, config.seed) == (300, 5, 4)
    assert config.burn_in_days == 28
    assert config.burn_in_rules == rules
    assert revenue_objective(mechanism) == "revenue_28d"
    assert revenue_objective(arm_spec(mechanism, "interaction")) == "revenue_28d"
    treated = ~holdout_mask(mechanism, 300)
    oracles = run_oracles(mechanism, options, treated)
    space = mechanism.decision_space()
    click = greedy_rollout(config, space, mechanism.context, "click", rules=rules)
    best = greedy_rollout(config, space, mechanism.context, "revenue_28d", rules=rules)
    assert oracles.click["revenue"] == pytest.approx(click.kpis["revenue"][treated].mean())
    assert oracles.revenue["retention"] == pytest.approx(best.kpis["retained"][treated].mean())
    gaps = best.kpis["revenue"][treated] - click.kpis["revenue"][treated]
    assert oracles.edge("revenue") == pytest.approx(gaps.mean())
    half = oracles.edge_high["revenue"] - oracles.edge("revenue")
    assert half == pytest.approx(oracles.edge("revenue") - oracles.edge_low["revenue"])
    assert half > 0
    # Under the rules no customer gets more than 3 contacts in any 7 days.
    for customer in np.unique(click.customers):
        days = np.sort(click.days[click.customers == customer])
        assert all(np.sum((days >= day) & (days < day + 7)) <= 3 for day in days)


# ------------------------------------------------------------------ paired comparisons
def test_paired_difference_by_hand() -> None:
    """d = [1, 2, 3, 4] - [0, 0, 1, 1] = [1, 2, 2, 3]: mean 2, sd sqrt(2/3), stderr
    sqrt(2/3)/2 = 0.408248; t(0.975, 3) = 3.182446; half width 1.299228."""
    result = paired_difference(np.array([1.0, 2, 3, 4]), np.array([0.0, 0, 1, 1]))
    assert result.difference == pytest.approx(2.0, abs=1e-14)
    assert result.stderr == pytest.approx(np.sqrt(2 / 3) / 2, rel=1e-12)
    assert result.low == pytest.approx(2 - 3.182446305284263 * np.sqrt(2 / 3) / 2, rel=1e-12)
    assert result.high == pytest.approx(2 + 3.182446305284263 * np.sqrt(2 / 3) / 2, rel=1e-12)
    assert paired_difference(np.array([1.0]), np.array([0.0])).low is None


def test_arms_are_compared_with_the_interaction_arm_and_the_oracle_edge() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(50.0, 10.0, 1_000)
    treated = np.ones(1_000, dtype=bool)
    treated[:100] = False
    per_customer = {
        "interaction": {"revenue": base, "retention": np.ones(1_000)},
        "engagement": {
            "revenue": base + 1.0 + rng.normal(0, 0.1, 1_000),
            "retention": np.ones(1_000),
        },
        "uniform": {"revenue": base + rng.normal(0, 1.0, 1_000), "retention": np.ones(1_000)},
    }
    oracles = OracleResult(
        revenue_objective="revenue_28d",
        click={"revenue": 60.0, "retention": 0.88},
        revenue={"revenue": 62.0, "retention": 0.88},
        edge_low={"revenue": 1.5, "retention": 0.0},
        edge_high={"revenue": 2.5, "retention": 0.0},
    )
    rows = compare_arms(per_customer, treated, oracles, decisions={"uniform": 0})
    engagement = comparison_of(rows, "engagement", "revenue")
    assert engagement is not None
    assert engagement.n == 900
    expected = per_customer["engagement"]["revenue"][treated] - base[treated]
    assert engagement.difference == pytest.approx(expected.mean())
    assert engagement.reading == "engagement higher"
    assert engagement.share == pytest.approx(expected.mean() / 2.0)
    assert engagement.share_low == pytest.approx(engagement.low / 2.0)
    retention = comparison_of(rows, "engagement", "retention")
    assert retention is not None
    assert retention.share is None
    assert "not positive beyond its interval" in (retention.note or "")
    slight = OracleResult(
        "revenue_28d",
        oracles.click,
        {"revenue": 60.001, "retention": 0.88},
        {"revenue": 0.0005},
        {"revenue": 0.0015},
    )
    noisy = comparison_of(compare_arms(per_customer, treated, slight), "uniform", "revenue")
    assert noisy is not None
    assert noisy.share is None
    assert "within this difference's precision" in (noisy.note or "")
    tiny = OracleResult("revenue_28d", oracles.click, oracles.revenue, {"revenue": -0.1}, {})
    assert (
        comparison_of(compare_arms(per_customer, treated, tiny), "engagement", "revenue").share
        is None
    )
    uniform = comparison_of(rows, "uniform", "revenue")
    assert uniform is not None
    assert uniform.reading == NO_DIFFERENCE
    assert "no decisions" in (uniform.note or "")
    reference = comparison_of(rows, "interaction", "revenue")
    assert reference is not None
    assert reference.difference == 0
    assert reference.share == 0
    assert compare_arms({"engagement": per_customer["engagement"]}, treated, None) == []


def test_a_kpi_with_too_small_a_holdout_is_shown_with_its_reason() -> None:
    values = np.arange(10.0)
    holdout = np.zeros(10, dtype=bool)
    holdout[0] = True
    (row,) = kpi_lift_rows("engagement", {"revenue": values}, holdout)
    assert row.n_holdout == 1
    assert row.difference is None
    assert "at least 2" in row.reading
    wide = LiftRow.too_small("revenue", "x", 3, 0).model_copy(update={"note": None})
    assert wide.reading == "n/a"


def test_a_run_reports_oracles_shares_and_what_its_intervals_support(
    mechanism: ExperimentSpec,
) -> None:
    options = RunOptions(customers=400, days=4, seed=0, arms=("interaction", "engagement"))
    result = run_simulation(mechanism, options)
    assert result.oracles is not None
    assert result.oracles.seconds > 0
    rows = {(row.arm, row.kpi): row for row in result.comparisons}
    assert set(rows) == {(arm, kpi) for arm in options.arms for kpi in ("revenue", "retention")}
    data = result_json(result)
    assert data["comparisons"] == [row.to_json() for row in result.comparisons]
    assert data["oracles"]["edge"]["revenue"] == pytest.approx(result.oracles.edge("revenue"))
    assert "(revenue oracle - click oracle)" in data["share_definition"]
    text = verdict(result) + render_markdown(result)
    assert "beats" not in text
    for kpi in ("revenue", "retention"):
        row = rows[("engagement", kpi)]
        assert row.low is not None
        assert row.high is not None
        if row.low <= 0 <= row.high:
            assert row.reading == NO_DIFFERENCE
    # The share is stated where the edge supports one (comparison._share), and otherwise the
    # reason is: which of the two happens depends on this seed's draws, not on the report.
    revenue = rows[("engagement", "revenue")]
    if revenue.share is not None:
        assert "of the oracle edge" in verdict(result)
    else:
        assert (revenue.note or "").startswith("no share: ")
        assert revenue.note in render_markdown(result)


def test_the_closing_sentence_says_no_detectable_difference_when_the_interval_holds_zero(
    mechanism: ExperimentSpec,
) -> None:
    """Retention 0.9028 against 0.9024 with an interval across 0 is no detectable
    difference, not a win."""
    treated = np.ones(4, dtype=bool)
    per_customer = {
        "interaction": {"revenue": np.array([1.0, 2, 3, 4]), "retention": np.array([1.0, 0, 1, 1])},
        "engagement": {"revenue": np.array([2.0, 2, 3, 5]), "retention": np.array([1.0, 1, 0, 1])},
    }
    result = RunResult(
        spec=mechanism,
        options=RunOptions(customers=4, days=1, arms=("interaction", "engagement")),
        arms=[
            ArmResult(arm=name, key=name, policy="linear_ts", reward="r")
            for name in ("interaction", "engagement")
        ],
        database_url="",
        treated=treated,
        comparisons=compare_arms(per_customer, treated, None),
    )
    text = verdict(result)
    assert text.count(NO_DIFFERENCE) == 2
    assert "beat" not in text


def test_the_closing_sentence_speaks_for_the_strategy_arm_when_it_ran(
    mechanism: ExperimentSpec,
) -> None:
    """With strategies run, the strategy arm is the engagement approach the sentence compares
    with interaction: +1 revenue on every customer is an interval above 0 (by hand), and the
    engagement arm is not what it speaks of."""
    treated = np.ones(4, dtype=bool)
    base = {"revenue": np.array([1.0, 2, 3, 4]), "retention": np.array([1.0, 0, 1, 1])}
    per_customer = {
        "interaction": base,
        "engagement": base,
        "strategy": {"revenue": base["revenue"] + 1.0, "retention": base["retention"]},
    }
    names = ("interaction", "engagement", "strategy")
    result = RunResult(
        spec=mechanism,
        options=RunOptions(customers=4, days=1, arms=names),
        arms=[ArmResult(arm=name, key=name, policy="linear_ts", reward="r") for name in names],
        database_url="",
        treated=treated,
        comparisons=compare_arms(per_customer, treated, None),
    )
    assert approach_arm(result) == "strategy"
    text = verdict(result)
    assert "strategy minus interaction is +1.000 [+1.000, +1.000]" in text
    assert "the strategy policy is higher than the interaction policy" in text
    assert "engagement minus" not in text
