"""The surrogate reward through the engine: the fallback before the first fit, the index fitted
on matured decisions of a synthetic log with a known answer (also after a restart, rebuilt
from the log), the refresh rule, and the live report's reward-beside-KPI check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bandit.surrogate import SurrogateStats
from experiments.analysis.report import build_live_report, live_report_markdown
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.engine.surrogate import SurrogateFit, UnitRows
from experiments.spec import SpecError, parse_spec
from experiments.spec.surrogate import SurrogateSpec
from experiments.store import models
from experiments.store.database import Database
from experiments.vocabulary import DecisionStatus, Group

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def spec_dict(**surrogate: Any) -> dict[str, Any]:
    return {
        "key": "sur",
        "factors": {"message": ["calm", "urgent"]},
        "context": {"spend": {"type": "numeric", "min": 0}},
        "policy": {"name": "linear_ts", "params": {}},
        "reward": {
            "kind": "surrogate",
            "event": "revenue",
            "window": "28d",
            "surrogate": {
                "window": "7d",
                "signals": ["click", "revenue"],
                "min_matured": 20,
                "ridge": 0.0,
                **surrogate,
            },
        },
        "holdout": {"share": 0.5},
    }


def test_bad_surrogate_rewards_are_refused_by_name() -> None:
    data = spec_dict()
    data["reward"]["surrogate"]["window"] = "28d"
    with pytest.raises(SpecError, match=r"^reward\.surrogate\.window: must be shorter"):
        parse_spec(data)
    with pytest.raises(SpecError, match=r"^reward\.surrogate\.min_matured: must exceed the"):
        parse_spec(spec_dict(min_matured=3))
    with pytest.raises(SpecError, match=r"^reward\.surrogate\.covariates: must name a numeric"):
        parse_spec(spec_dict(covariates=["tenure"]))
    data = spec_dict()
    data["reward"] = {**data["reward"], "kind": "sum"}
    with pytest.raises(SpecError, match=r"^reward\.surrogate: only applies to kind = 'surrogate'"):
        parse_spec(data)
    data["reward"] = {"kind": "surrogate", "event": "revenue", "window": "28d"}
    with pytest.raises(SpecError, match=r"^reward\.surrogate: is required when kind"):
        parse_spec(data)


def test_surrogate_reward_round_trips() -> None:
    spec = parse_spec(spec_dict(covariates=["spend"]))
    assert parse_spec(spec.to_json_dict()) == spec
    assert spec.to_json_dict()["reward"]["surrogate"]["window"] == 7 * 86_400


def test_refresh_rule() -> None:
    """min_matured 20, refresh 30: no fit at 15 units; the first at 25; none at 45 (< 25 + 30);
    the next at 55."""
    spec = SurrogateSpec(window=7 * DAY, signals=["click"], min_matured=20, refresh=30)
    rng = np.random.default_rng(0)
    fit = SurrogateFit(stats=SurrogateStats.empty(1))
    seen = []
    for count in (15, 10, 20, 10):
        S = rng.normal(size=(count, 1))
        kept = np.ones(count, dtype=bool)
        units = UnitRows(S, np.zeros((count, 0)), 2 * S[:, 0], np.zeros(count), kept)
        fit.fold(units, spec, count)
        seen.append((fit.matured, fit.fitted_on))
    assert seen == [(15, 0), (25, 25), (45, 25), (55, 55)]


def decide(core: DecisionEngine, customers: list[str]) -> list[Any]:
    return core.decide_many(
        "sur", [DecisionRequest(customer_id=c, context={"spend": 1.0}) for c in customers]
    )


@pytest.mark.parametrize("limit", [10_000, 7])
def test_index_fitted_on_matured_decisions_has_the_known_answer(
    engine: Engine, clock_start: ManualClock, limit: int
) -> None:
    """40 decisions on day 0. Decision i is clicked on day 1 when i is odd (c = i mod 2), earns
    e = 2 (i mod 5) on day 2 (no event when 0), and 3 + 10 c + 0.5 e on day 10; a click on
    day 9 (outside the 7-day window) for i divisible by 3 is no signal. Its 28-day revenue is
    KPI = e + 3 + 10 c + 0.5 e = 3 + 10 c + 1.5 e, exactly linear in the surrogates (click
    count and revenue in 7 days), so the ridge-0 index is h(c, e) = 3 + 10 c + 1.5 e.

    Day 7: the 40 rewards are the fallback, the revenue of the first 7 days (e). Day 28: they
    mature and the index is fitted. Ten decisions on day 28 then get h(c, e) as their reward
    on day 35, from a fresh engine that rebuilds the fit from the log. With ``limit`` 7 every
    join works in pages of 7 and must give the same rewards and the same fit.
    """
    clock = clock_start
    core = DecisionEngine(Database(engine), clock=clock, seed=1)
    core.create_experiment(spec_dict())
    first = decide(core, [f"a{i}" for i in range(40)])
    outcomes = []
    for i, result in enumerate(first):
        c, e = i % 2, 2.0 * (i % 5)
        name = result.decision_id
        if c:
            outcomes.append(OutcomeInput(f"c{i}", "click", 1.0, START + DAY, decision_id=name))
        if e:
            outcomes.append(OutcomeInput(f"e{i}", "revenue", e, START + 2 * DAY, decision_id=name))
        later = 3 + 10 * c + 0.5 * e
        outcomes.append(OutcomeInput(f"l{i}", "revenue", later, START + 10 * DAY, decision_id=name))
        if i % 3 == 0:
            outcomes.append(OutcomeInput(f"x{i}", "click", 1.0, START + 9 * DAY, decision_id=name))
    core.record(outcomes)

    clock.set(START + 7 * DAY + HOUR)
    assert core.join_rewards("sur", limit=limit) == 40
    rewards, statuses = read(engine)
    assert [rewards[r.decision_id] for r in first] == [2.0 * (i % 5) for i in range(40)]
    assert {statuses[r.decision_id] for r in first} == {DecisionStatus.OPEN}

    clock.set(START + 28 * DAY + HOUR)
    assert core.join_rewards("sur", limit=limit) == 0
    rewards, statuses = read(engine)
    assert {statuses[r.decision_id] for r in first} == {DecisionStatus.REWARDED}

    second = decide(core, [f"b{j}" for j in range(10)])
    core.record(
        [
            OutcomeInput(f"bc{j}", "click", 1.0, clock.now() + DAY, decision_id=r.decision_id)
            for j, r in enumerate(second)
            if j % 2
        ]
        + [
            OutcomeInput(f"be{j}", "revenue", 4.0 * j, clock.now() + DAY, decision_id=r.decision_id)
            for j, r in enumerate(second)
            if j
        ]
    )
    clock.set(START + 35 * DAY + 2 * HOUR)
    restarted = DecisionEngine(Database(engine), clock=clock, seed=1)
    assert restarted.join_rewards("sur", limit=limit) == 10
    rewards, _ = read(engine)
    expected = [3 + 10 * (j % 2) + 1.5 * 4.0 * j for j in range(10)]
    np.testing.assert_allclose([rewards[r.decision_id] for r in second], expected, rtol=1e-9)

    report = build_live_report(Database(engine), "sur")
    check = report.surrogate
    assert check is not None
    assert (check.kpi, check.matured) == ("sum:revenue:28d", 40)
    early = np.array([2.0 * (i % 5) for i in range(40)])
    clicked = np.array([i % 2 for i in range(40)])
    kpi = 3 + 10 * clicked + 1.5 * early
    assert check.mean_reward == pytest.approx(4.0)
    assert check.mean_kpi == pytest.approx(14.0)
    assert check.bias == pytest.approx(-10.0)
    assert check.bias_low is not None
    assert check.bias_high is not None
    assert check.bias_low < -10.0 < check.bias_high
    assert check.correlation == pytest.approx(np.corrcoef(early, kpi)[0, 1])
    ((period, n, mean_reward, mean_kpi, bias),) = [
        (row.period, row.n, row.mean_reward, row.mean_kpi, row.bias) for row in check.periods
    ]
    assert (period, n) == (0, 40)
    assert (mean_reward, mean_kpi, bias) == pytest.approx((4.0, 14.0, -10.0))
    holdout = np.array([r.group == Group.HOLDOUT for r in first])
    assert check.lift_kpi is not None
    assert check.lift_kpi.mean_holdout == pytest.approx(kpi[holdout].mean())
    assert check.lift_reward is not None
    assert check.lift_reward.mean_treatment == pytest.approx(early[~holdout].mean())
    assert "Surrogate reward against the matured KPI (sum:revenue:28d)" in (
        live_report_markdown(report)
    )


@pytest.fixture
def clock_start() -> ManualClock:
    return ManualClock(START)


def read(engine: Engine) -> tuple[dict[str, float], dict[str, str]]:
    with Session(engine) as session:
        rewards = dict(session.exec(select(models.Reward.decision_id, models.Reward.value)).all())
        statuses = dict(session.exec(select(models.Decision.id, models.Decision.status)).all())
    return rewards, statuses
