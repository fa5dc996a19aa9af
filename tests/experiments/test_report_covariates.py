"""CUPED in the lift reports: the ``[report]`` section, the live report's adjusted lift on
covariates at each customer's first decision, and the markdown that shows both intervals."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bandit.adjustment import cuped_lift
from bandit.lift import welch_lift
from experiments.analysis.lift import LiftRow, kpi_lift_rows, lift_table_markdown
from experiments.analysis.report import build_live_report, live_report_markdown
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.spec import SpecError, example_spec_text, parse_spec
from experiments.store.database import Database
from experiments.store.rewards import reward_rows
from experiments.vocabulary import Group

KEY = "adjusted"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SPEC = {
    "key": KEY,
    "factors": {"offer": ["none", "bundle"], "channel": ["sms", "push"]},
    "context": {
        "spend": {"type": "numeric", "min": 0},
        "plan": {"type": "categorical", "levels": ["a", "b"]},
    },
    "policy": {"name": "linear_ts", "params": {}},
    "reward": {"kind": "sum", "event": "revenue", "window": "1d"},
    "holdout": {"share": 0.4},
    "report": {"covariates": ["spend"]},
}


def quickstart() -> dict[str, Any]:
    return tomllib.loads(example_spec_text())


# --------------------------------------------------------------------------- the spec


def test_report_covariates_round_trip_and_stay_out_of_specs_without_them() -> None:
    data = quickstart()
    assert "report" not in parse_spec(data).to_json_dict()
    numeric = next(name for name, item in data["context"].items() if item["type"] == "numeric")
    data["report"] = {"covariates": [numeric]}
    spec = parse_spec(data)
    assert spec.report is not None
    assert spec.report.covariates == [numeric]
    assert parse_spec(spec.to_json_dict()) == spec


@pytest.mark.parametrize(
    ("covariates", "field", "fragment"),
    [
        (["nope"], "report.covariates[0]", "must name a numeric field of the context schema"),
        (["@categorical"], "report.covariates[0]", "must name a numeric context field"),
        (["@numeric", "@numeric"], "report.covariates", "must name each field once"),
        ("spend", "report.covariates", "list"),
    ],
)
def test_bad_report_covariates_name_the_field(covariates: Any, field: str, fragment: str) -> None:
    data = quickstart()
    kinds = {item["type"]: name for name, item in data["context"].items()}
    if isinstance(covariates, list):
        covariates = [kinds[name[1:]] if name.startswith("@") else name for name in covariates]
    data["report"] = {"covariates": covariates}
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert caught.value.field == field
    assert fragment in caught.value.message


# --------------------------------------------------------------------------- lift rows


def test_kpi_lift_rows_carry_the_cuped_lift_beside_the_raw_one() -> None:
    rng = np.random.default_rng(11)
    n = 600
    spend = rng.gamma(2.0, 10.0, n)
    holdout = rng.random(n) < 0.3
    revenue = 0.5 * spend + rng.normal(0.0, 3.0, n) + ~holdout
    (row,) = kpi_lift_rows("arm", {"revenue": revenue}, holdout, covariates={"spend": spend})
    raw = welch_lift(revenue[~holdout], revenue[holdout])
    adjusted = cuped_lift(revenue, holdout, spend[:, None])
    assert row == LiftRow.from_lift("revenue", "arm", raw).adjusted_by(["spend"], adjusted)
    assert row.covariates == ("spend",)
    assert (row.adjusted_low, row.adjusted_high) == adjusted.diff_ci
    width = (adjusted.diff_ci[1] - adjusted.diff_ci[0]) / (raw.diff_ci[1] - raw.diff_ci[0])
    assert row.width_reduction == pytest.approx(1.0 - width, rel=1e-12)
    assert row.width_reduction is not None
    assert row.width_reduction > 0.5
    (plain,) = kpi_lift_rows("arm", {"revenue": revenue}, holdout)
    assert plain.covariates == ()
    assert plain.adjusted_low is None
    assert plain.width_reduction is None
    table = lift_table_markdown([row])
    assert "| CUPED 95% CI | narrower |" in table
    assert f"| {100 * row.width_reduction:.0f}% |" in table
    assert "pre-period covariates spend" in table
    assert "CUPED" not in lift_table_markdown([plain])


def test_too_small_groups_carry_no_adjustment() -> None:
    (row,) = kpi_lift_rows(
        "arm",
        {"revenue": np.array([1.0, 2.0, 3.0])},
        np.array([True, False, False]),
        covariates={"spend": np.array([1.0, 2.0, 3.0])},
    )
    assert row.note is not None
    assert row.adjusted_low is None
    assert row.covariates == ()


# --------------------------------------------------------------------------- the live report


def populate(engine: Engine, customers: int = 40) -> dict[str, float]:
    """Each customer is decided twice, a day apart; the context's spend at the second decision
    is 1000 more than at the first (as if the first contact had moved it), and revenue is
    0.5 x the first spend plus a little. Returns each customer's spend at the first decision."""
    clock = ManualClock(START)
    core = DecisionEngine(Database(engine), clock=clock, seed=0)
    core.create_experiment(SPEC)
    first = {f"c{index}": float(3 * index % 29) for index in range(customers)}
    for day in range(2):
        made = [
            (
                customer,
                core.decide(
                    KEY,
                    DecisionRequest(
                        customer_id=customer,
                        context={"spend": spend + 1000.0 * day, "plan": "a"},
                    ),
                ),
            )
            for customer, spend in first.items()
        ]
        clock.advance(timedelta(hours=2))
        core.record(
            OutcomeInput(
                outcome_id=f"o{day}-{customer}",
                event="revenue",
                value=0.5 * first[customer] + (index % 3),
                occurred_at=clock.now(),
                decision_id=result.decision_id,
            )
            for index, (customer, result) in enumerate(made)
        )
        clock.advance(timedelta(hours=22))
    clock.advance(timedelta(days=1))
    core.join_rewards(KEY)
    return first


def test_live_report_adjusts_on_the_covariates_at_each_customers_first_decision(
    engine: Engine,
) -> None:
    first = populate(engine)
    report = build_live_report(Database(engine), KEY)
    with Session(engine) as session:
        rows = reward_rows(session, experiment_key=KEY)
    values = np.array([row.value for row in rows])
    holdout = np.array([row.group == Group.HOLDOUT for row in rows])
    baselines = np.array([first[row.customer_id] for row in rows])
    assert len(rows) == 80
    assert 2 <= holdout.sum() <= 78
    expected = LiftRow.from_lift(
        "sum:revenue", "live", welch_lift(values[~holdout], values[holdout])
    ).adjusted_by(["spend"], cuped_lift(values, holdout, baselines))
    assert report.lift == expected
    assert report.lift.width_reduction is not None
    assert report.lift.width_reduction > 0.5
    assert report.to_json()["lift"]["covariates"] == ["spend"]
    markdown = live_report_markdown(report)
    assert "CUPED 95% CI" in markdown
    assert "pre-period covariates spend" in markdown
