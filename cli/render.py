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
    from experiments.runs.comparison import ArmComparison


def fixed(value: float | None, spec: str) -> str:
    """``value`` in the format ``spec`` (".3f", ",.0f"), or n/a when undefined."""
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def percent(value: float | None) -> str:
    """A signed percentage, or n/a when undefined."""
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:+.1f}%"


#: The terminal width every table is laid out for.
WIDTH = 80


def table(title: str, *, caption: str | None = None) -> Table:
    """A table laid out to fit an 80-column terminal: no outer edge (two columns more for the
    cells). Give name columns to :func:`name_column`, so they never shrink or cut."""
    return Table(title=title, caption=caption, show_edge=False)


def fit(table: Table, width: int = WIDTH) -> Table:
    """``table`` laid out in ``width`` columns without cutting a word: each column gets at
    least its longest word (header or cell; a ``no_wrap`` column its longest line), and
    while the table is wider than ``width`` the widest column that can wrap gives up a
    character. Returns the table, its column widths fixed.

    Rich's own layout cannot do this: it shrinks wrapping columns only down to the widest
    column that cannot wrap (a name column), then cuts words with an ellipsis.
    """
    columns = table.columns
    lines = [[_plain(cell) for cell in (column.header, *column.cells)] for column in columns]
    widest = [
        max((len(line) for cell in cells for line in cell.splitlines()), default=0)
        for cells in lines
    ]
    least = [
        widest[index]
        if column.no_wrap
        else max([column.min_width or 0, *(len(word) for cell in cells for word in cell.split())])
        for index, (column, cells) in enumerate(zip(columns, lines, strict=True))
    ]
    widths = [max(pair) for pair in zip(widest, least, strict=True)]
    edges = 2 if table.show_edge else 0
    room = width - edges - (len(columns) - 1) - 2 * len(columns)  # separators and padding
    while sum(widths) > room:
        shrinkable = [index for index, size in enumerate(widths) if size > least[index]]
        if not shrinkable:
            break
        widths[max(shrinkable, key=lambda index: widths[index])] -= 1
    for column, size in zip(columns, widths, strict=True):
        column.width = size
    return table


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def name_column(table: Table, header: str, names: Iterable[str]) -> None:
    """A left-aligned column of names (arms, KPIs, strategies) that keeps every name whole:
    at least as wide as the longest, never wrapped; the other columns wrap instead."""
    width = max((len(name) for name in names), default=0)
    table.add_column(header, justify="left", no_wrap=True, min_width=max(width, len(header)))


def lift_tables(title: str, rows: Iterable[tuple[str | None, LiftRow]]) -> list[Table]:
    """One table per KPI (the KPI in its title), one row per label (the arm; None for a
    live experiment's single row): the treatment and holdout means, the relative lift with
    its 95% interval and what that supports. Under each, stacked rows: the CUPED-adjusted
    lift with how much narrower its interval is (when the row has covariates), and the
    always-valid interval. The group sizes go in the title when every row shares them (the
    arms of ``engage run`` share one holdout), else under the label.
    """
    by_kpi: dict[str, list[tuple[str | None, LiftRow]]] = {}
    for label, row in rows:
        by_kpi.setdefault(row.kpi, []).append((label, row))
    return [fit(_kpi_table(title, kpi, group)) for kpi, group in by_kpi.items()]


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
    """One row per strategy: customers assigned and measured, its epoch KPI against the
    holdout's over the same epochs, the raw and the regression-adjusted difference with their
    95% intervals."""
    result = table(title)
    name_column(result, "strategy", [lift.strategy for lift in report.lifts])
    for column in ("assigned / measured", "KPI / holdout", "difference", "adjusted"):
        result.add_column(column, justify="right")
    for lift in report.lifts:
        result.add_row(
            shown(lift.strategy),
            f"{lift.assignments} / {lift.measured}",
            f"{fixed(lift.mean_kpi, '.4g')} / {fixed(lift.holdout_kpi, '.4g')}",
            shown(_interval(lift.difference, lift.diff_low, lift.diff_high)),
            shown(_interval(lift.adjusted_difference, lift.adjusted_low, lift.adjusted_high)),
        )
    return fit(result)


def comparison_table(title: str, rows: Iterable[ArmComparison], *, caption: str) -> Table:
    """One row per arm and KPI against the reference arm: the paired difference with its
    95% interval, what it supports, and its share of the oracle edge."""
    rows = list(rows)
    result = table(title, caption=caption)
    name_column(result, "arm", [row.arm for row in rows])
    name_column(result, "KPI", [row.kpi for row in rows])
    result.add_column("difference [95% CI]", justify="right")
    result.add_column("reading", justify="left")
    result.add_column("share of edge [95% CI]", justify="right")
    for row in rows:
        digits = "+.4f" if row.kpi == "retention" else "+.2f"
        result.add_row(
            shown(row.arm),
            shown(row.kpi),
            shown(
                f"{fixed(row.difference, digits)} [{fixed(row.low, digits)}, "
                f"{fixed(row.high, digits)}]"
            ),
            shown(row.reading),
            shown(f"{percent(row.share)} [{percent(row.share_low)}, {percent(row.share_high)}]"),
        )
    return fit(result)


def _interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or low is None or high is None:
        return "n/a"
    return f"{value:+.3g} [{low:+.3g}, {high:+.3g}]"
