"""The terminal tables of ``engage run`` and ``engage report`` at 80 columns: no line wider,
no name cut (rich marks a cut with an ellipsis), and ``--json`` still complete."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from report_support import KEY, populate
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.common import console
from cli.main import app
from cli.render import comparison_table, strategy_table
from experiments.analysis.strategies import StrategyLift, StrategyReport
from experiments.runs.comparison import ArmComparison

ROOT = Path(__file__).resolve().parents[2]
FLAGSHIP = ROOT / "examples" / "engagement.toml"
ARMS = ("uniform", "business_as_usual", "interaction", "engagement", "strategy")
KPIS = ("revenue", "retention", "contacts", "accepts")
RUN = ["run", str(FLAGSHIP), "--customers", "300", "--days", "3", "--no-track", "--jobs", "1"]
runner = CliRunner()


@pytest.fixture
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 80)


def assert_fits(output: str) -> None:
    long = [line for line in output.splitlines() if len(line) > 80]
    assert long == [], "\n".join(long)
    assert "…" not in output


@pytest.mark.usefixtures("eighty_columns")
def test_run_tables_fit_80_columns_without_cutting_names() -> None:
    result = runner.invoke(app, [*RUN, "--arms", ",".join(ARMS)])
    assert result.exit_code == 0, result.output
    output = result.output
    assert_fits(output)
    for arm in ARMS:
        assert f" {arm} " in output
    for reward in ("sum:revenue", "event:click"):
        assert f" {reward} " in output
    for kpi in KPIS:
        assert f"Lift vs the holdout all arms share: {kpi} " in output
    for strategy in ("no-pressure", "inform-educate", "fewer-contacts"):
        assert f" {strategy} " in output
    assert "  CUPED " in output
    assert "CUPED: the lift adjusted on spend_30d, usage_30d" in " ".join(output.split())


def test_run_json_keeps_every_lift_field() -> None:
    result = runner.invoke(app, [*RUN, "--arms", "uniform,engagement", "--json"])
    assert result.exit_code == 0, result.output
    lift = json.loads(result.output)["lift"]
    assert [(row["policy"], row["kpi"]) for row in lift] == [
        (arm, kpi) for arm in ("uniform", "engagement") for kpi in KPIS
    ]
    for row in lift:
        assert {"diff_low", "diff_high", "av_low", "av_high", "adjusted_low", "adjusted_high"} <= {
            key for key, value in row.items() if value is not None
        }
        assert row["covariates"] == ["spend_30d", "usage_30d"]


@pytest.mark.usefixtures("eighty_columns")
def test_report_table_fits_80_columns(engine: Engine) -> None:
    populate(engine)
    url = engine.url.render_as_string(hide_password=False)
    result = runner.invoke(app, ["report", KEY, "--database-url", url, "--no-track"])
    assert result.exit_code == 0, result.output
    assert_fits(result.output)
    assert f"{KEY}: lift vs holdout" in result.output
    assert " live " in result.output
    assert "sum:revenue" in result.output


def rendered(table: Table) -> str:
    capture = Console(width=80, file=io.StringIO(), force_terminal=False)
    capture.print(table)
    return capture.file.getvalue()  # type: ignore[attr-defined]


def test_the_widest_comparison_and_strategy_rows_fit_80_columns() -> None:
    """The longest arm, a reading that names it, and intervals at full precision (as the
    flagship printed them at 5,000 customers, where "business_as_u…" was cut before)."""
    rows = [
        ArmComparison(
            arm=arm,
            reference="interaction",
            kpi=kpi,
            n=4479,
            mean_arm=34.67,
            mean_reference=34.96,
            difference=-0.0290,
            low=-0.0391,
            high=-0.0188,
            confidence=0.95,
            reading=f"{arm} lower",
            share=-0.061,
            share_low=-1.0,
            share_high=-1.0,
        )
        for arm in ("business_as_usual", "engagement")
        for kpi in ("revenue", "retention")
    ]
    output = rendered(comparison_table("Arms minus the interaction arm", rows, caption="a caption"))
    assert_fits(output)
    assert output.count("business_as_usual") == 4  # whole, as the arm and in the reading
    # Rich alone crops the last column at 80 (no ellipsis): every number must be whole.
    assert output.count("-6.1%") == 4
    assert output.count("-100.0%]") == 4
    lifts = tuple(
        StrategyLift(
            strategy=name,
            assignments=44980,
            measured=37630,
            mean_propensity=0.25,
            mean_kpi=7.372,
            holdout_kpi=6.997,
            difference=0.375,
            diff_low=-0.00480123,
            diff_high=0.756,
            adjusted_difference=-0.00857,
            adjusted_low=-0.281,
            adjusted_high=0.0827,
        )
        for name in ("inform-educate", "fewer-contacts")
    )
    report = StrategyReport(
        kpi="sum:revenue",
        epoch_days=7.0,
        baseline=("spend_30d",),
        policy="linear_ts",
        policy_version=3,
        measured=75260,
        learned=75260,
        holdout="holdout",
        lifts=lifts,
        epochs=(),
    )
    output = rendered(strategy_table("strategy arm: epoch KPI by strategy", report))
    assert_fits(output)
    assert "inform-educate" in output
    assert "-0.0048" in output
