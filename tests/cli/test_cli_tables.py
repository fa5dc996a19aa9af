"""The terminal tables of ``engage run`` and ``engage report`` at 80 columns: no line wider,
no name cut (rich marks a cut with an ellipsis), and ``--json`` still complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_support import KEY, populate
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.common import console
from cli.main import app

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
