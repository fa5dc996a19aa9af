"""Rich rendering shared by commands: tables laid out for 80 columns that never cut a name,
the lift tables (one per KPI) and undefined-aware number formats."""

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

#: The width every table is laid out to fit (an 80-column terminal), names never cut.
WIDTH = 80


def fixed(value: float | None, spec: str) -> str:
    """``value`` in the format ``spec`` (".3f", ",.0f"), or n/a when undefined."""
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def percent(value: float | None) -> str:
    """A signed percentage, or n/a when undefined."""
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:+.1f}%"


def table(title: str, *, caption: str | None = None) -> Table:
    """A table laid out for :data:`WIDTH` columns: no outer edge (two columns more for the
    cells). Give name columns to :func:`name_column`, so they shrink last and never cut."""
    return Table(title=title, caption=caption, show_edge=False)


def name_column(table: Table, header: str, names: Iterable[str]) -> None:
    """A left-aligned column of names (arms, KPIs, strategies) that keeps every name whole:
    at least as wide as the longest, never wrapped; the other columns wrap instead."""
    width = max((len(name) for name in names), default=0)
    table.add_column(header, justify="left", no_wrap=True, min_width=max(width, len(header)))


def lift_tables(title: str, rows: Iterable[tuple[str | None, LiftRow]]) -> list[Table]:
    """One table per KPI (the KPI in its title), one row per label (the arm; None for a
    live experiment's single row): the treatment mean, the relative lift with its 95%
    interval and what that supports. Under each, stacked rows: the CUPED-adjusted lift with
    how much narrower its interval is (when the row has covariates), and the always-valid
    interval. The holdout's mean and the group sizes go in the title when every row shares
    them (the arms of ``engage run`` share one holdout), else in the label's cell.
    """
    by_kpi: dict[str, list[tuple[str | None, LiftRow]]] = {}
    for label, row in rows:
        by_kpi.setdefault(row.kpi, []).append((label, row))
    return [_kpi_table(title, kpi, group) for kpi, group in by_kpi.items()]


def _kpi_table(title: str, kpi: str, rows: list[tuple[str | None, LiftRow]]) -> Table:
    from experiments.analysis.lift import narrower  # lazy: `engage --help` loads no numpy

    sizes = {(row.n_treatment, row.n_holdout) for _, row in rows}
    heading = f"{title}: {kpi}"
    if len(sizes) == 1:
        treated, held = next(iter(sizes))
        heading += f" ({treated:,} treated / {held:,} held out)"
    labels = [label or "live" for label, _ in rows]
    covariates = next((row.covariates for _, row in rows if row.covariates), ())
    result = table(
        heading,
        caption=(
            f"CUPED: the lift adjusted on {', '.join(covariates)} (pre-period), and how much "
            "narrower its 95% CI is"
            if covariates
            else None
        ),
    )
    name_column(result, "arm", [*labels, "  always-valid"])
    result.add_column("mean T / H", justify="right", min_width=8)
    result.add_column("lift", justify="right", no_wrap=True)
    result.add_column("95% CI", justify="left", min_width=9)
    result.add_column("reading", justify="left", min_width=13)
    for (_, row), label in zip(rows, labels, strict=True):
        name = shown(label)
        if len(sizes) > 1:
            name.append(f"\n  n {row.n_treatment:,}/{row.n_holdout:,}")
        if row.note is not None:
            result.add_row(name, "", "", "", shown(row.note))
            continue
        result.add_row(
            name,
            f"{fixed(row.mean_treatment, '.4g')} / {fixed(row.mean_holdout, '.4g')}",
            percent(row.relative_lift),
            _percent_interval(row.ci_low, row.ci_high),
            shown(row.reading),
        )
        if row.covariates:
            result.add_row(
                "  CUPED",
                "",
                percent(row.adjusted_relative_lift),
                _percent_interval(row.adjusted_ci_low, row.adjusted_ci_high),
                shown(f"{row.adjusted_reading}; {narrower(row.width_reduction)} narrower"),
            )
        result.add_row("  always-valid", "", "", _percent_interval(row.av_low, row.av_high), "")
    return result


def _percent_interval(low: float | None, high: float | None) -> Text:
    """``[low, high]`` in percent, as text: brackets must not be read as rich markup."""
    return Text(f"[{percent(low)}, {percent(high)}]")


def strategy_table(title: str, report: StrategyReport) -> Table:
    """One row per strategy: its epoch KPI against the holdout's over the same epochs, the
    raw and the regression-adjusted difference with their 95% intervals."""
    result = table(title)
    name_column(result, "strategy", [lift.strategy for lift in report.lifts])
    for column in ("assigned", "measured", "KPI", "holdout", "difference", "adjusted"):
        result.add_column(column, justify="right")
    for lift in report.lifts:
        result.add_row(
            shown(lift.strategy),
            str(lift.assignments),
            str(lift.measured),
            fixed(lift.mean_kpi, ".4g"),
            fixed(lift.holdout_kpi, ".4g"),
            _interval(lift.difference, lift.diff_low, lift.diff_high),
            _interval(lift.adjusted_difference, lift.adjusted_low, lift.adjusted_high),
        )
    return result


def _interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or low is None or high is None:
        return "n/a"
    return f"{value:+.3g} [{low:+.3g}, {high:+.3g}]"
