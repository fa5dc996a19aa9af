"""Rich rendering shared by commands: the lift table and undefined-aware number formats."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from cli.common import shown

if TYPE_CHECKING:
    from experiments.analysis.lift import LiftRow
    from experiments.analysis.strategies import StrategyReport

LIFT_COLUMNS = (
    "KPI",
    "treatment",
    "holdout",
    "lift",
    "95% CI",
    "always-valid",
    "n T/H",
    "reading",
)


def fixed(value: float | None, spec: str) -> str:
    """``value`` in the format ``spec`` (".3f", ",.0f"), or n/a when undefined."""
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def percent(value: float | None) -> str:
    """A signed percentage, or n/a when undefined."""
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:+.1f}%"


def lift_table(title: str, rows: Iterable[tuple[str | None, LiftRow]]) -> Table:
    """One row per (label, lift): relative lift with its 95% and always-valid intervals.

    A label (the arm) adds a first column; pass ``None`` labels for a single experiment.
    """
    rows = list(rows)
    labelled = any(label is not None for label, _ in rows)
    table = Table(title=title)
    columns = (("arm",) if labelled else ()) + LIFT_COLUMNS
    for column in columns:
        table.add_column(column, justify="left" if column in ("arm", "KPI", "reading") else "right")
    for label, row in rows:
        cells: list[str | Text] = [
            shown(row.kpi),
            fixed(row.mean_treatment, ".4g"),
            fixed(row.mean_holdout, ".4g"),
            percent(row.relative_lift),
            f"[{percent(row.ci_low)}, {percent(row.ci_high)}]",
            f"[{percent(row.av_low)}, {percent(row.av_high)}]",
            f"{row.n_treatment}/{row.n_holdout}",
            shown(row.reading),
        ]
        table.add_row(*(([shown(label or "")] if labelled else []) + cells))
    return table


def strategy_table(title: str, report: StrategyReport) -> Table:
    """One row per strategy: its epoch KPI against the holdout's over the same epochs, the
    raw and the regression-adjusted difference with their 95% intervals."""
    table = Table(title=title)
    for column in ("strategy", "assigned", "measured", "KPI", "holdout", "difference", "adjusted"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for lift in report.lifts:
        table.add_row(
            lift.strategy,
            str(lift.assignments),
            str(lift.measured),
            fixed(lift.mean_kpi, ".4g"),
            fixed(lift.holdout_kpi, ".4g"),
            _interval(lift.difference, lift.diff_low, lift.diff_high),
            _interval(lift.adjusted_difference, lift.adjusted_low, lift.adjusted_high),
        )
    return table


def _interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or low is None or high is None:
        return "n/a"
    return f"{value:+.3g} [{low:+.3g}, {high:+.3g}]"
