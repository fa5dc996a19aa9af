"""bench.oracle_edge compares the two oracles of ``engage run``'s world: its revenue and
retention are run_oracles' (the figures engage run reports), its differences are the
per-customer paired differences, and its level shares count the treated customers' contacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from bench.oracle_edge import oracle_edge, render
from experiments.runs.oracles import run_oracles
from experiments.runs.simulation import RunOptions
from experiments.runs.world import holdout_mask
from experiments.spec import load_spec

MECHANISM = Path(__file__).resolve().parents[2] / "examples" / "mechanism.toml"


def test_the_edge_is_the_one_engage_run_reports_and_the_shares_are_whole() -> None:
    spec = load_spec(MECHANISM)
    options = RunOptions(customers=300, days=6, seed=4)
    edge = oracle_edge(spec, options)
    reported = run_oracles(spec, options, ~holdout_mask(spec, options.customers))
    by_label = {kpi.label: kpi for kpi in edge.kpis}
    assert by_label["revenue"].click == pytest.approx(reported.click["revenue"])
    assert by_label["revenue"].revenue == pytest.approx(reported.revenue["revenue"])
    assert by_label["retained"].click == pytest.approx(reported.click["retention"])
    assert by_label["revenue"].low == pytest.approx(reported.edge_low["revenue"])
    assert by_label["revenue"].high == pytest.approx(reported.edge_high["revenue"])
    for kpi in edge.kpis:
        assert kpi.low <= kpi.difference <= kpi.high
    assert set(edge.levels) == {"offer", "message", "channel", "timing"}
    for names, by_click, by_revenue in edge.levels.values():
        assert len(names) == by_click.size == by_revenue.size
        assert by_click.sum() == pytest.approx(1.0)
        assert by_revenue.sum() == pytest.approx(1.0)
    console = Console(record=True, width=80)
    render(edge, console)
    text = console.export_text()
    assert "Share of contacts by message" in text
    # Each KPI's interval fits on its own row at 80 columns.
    revenue_row = next(line for line in text.splitlines() if line.startswith("│ revenue "))
    assert revenue_row.count("[") == revenue_row.count("]") == 1
    assert "Share of contacts by offer" not in text  # one level: nothing to compare
    assert np.isfinite([kpi.low for kpi in edge.kpis]).all()
