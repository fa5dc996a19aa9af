"""Figures of a run: cumulative reward and regret, allocation over time, lift with intervals.

Each function returns a :class:`matplotlib.figure.Figure` drawn by the Agg canvas and touches no
pyplot state: nothing is registered with ``pyplot``'s figure manager, so nothing has to be
closed, the process-wide backend is left alone, and figures can be made from any thread. Save
one with ``figure.savefig(path)`` or :meth:`experiments.analysis.tracking.ChildRun.log_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

if TYPE_CHECKING:
    from matplotlib.typing import ColorType

__all__ = [
    "LiftPoint",
    "allocation_over_time",
    "cumulative_curves",
    "cumulative_panels",
    "lift_intervals",
]


class LiftPoint(Protocol):
    """What :func:`lift_intervals` reads from a row: a
    :class:`~experiments.analysis.lift.LiftRow` or any look-alike.

    Fractions (0.05 = +5%): ``relative_lift`` with its 95% interval ``ci_low, ci_high`` and the
    always-valid interval ``av_low, av_high`` on the same scale; None where undefined.
    """

    @property
    def kpi(self) -> str: ...
    @property
    def policy(self) -> str: ...
    @property
    def relative_lift(self) -> float | None: ...
    @property
    def ci_low(self) -> float | None: ...
    @property
    def ci_high(self) -> float | None: ...
    @property
    def av_low(self) -> float | None: ...
    @property
    def av_high(self) -> float | None: ...


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)  # draw with Agg whatever pyplot's backend is
    return figure


def cumulative_curves(
    series: Mapping[str, np.ndarray],
    *,
    title: str,
    ylabel: str,
    days: np.ndarray | None = None,
) -> Figure:
    """One line per policy: the running total of its per-day values against the day.

    ``series`` maps a policy to its per-day values, shape ``(n_days,)`` (reward per day gives
    cumulative reward; expected regret per day gives cumulative regret). ``days`` (default
    ``0 .. n_days - 1``) labels the x axis; every series must have its length.
    """
    if not series:
        raise ValueError("'series' must hold at least one policy; got none.")
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in series.items()}
    for name, values in arrays.items():
        if values.ndim != 1:
            raise ValueError(f"series '{name}' must be 1-D (n_days,); got shape {values.shape}.")
    if days is None:
        days = np.arange(max(len(values) for values in arrays.values()))
    days = np.asarray(days)
    for name, values in arrays.items():
        if len(values) != len(days):
            raise ValueError(f"series '{name}' has {len(values)} days but 'days' has {len(days)}.")

    figure = _figure(8.0, 4.5)
    axes = figure.add_subplot()
    for name, values in arrays.items():
        axes.plot(days, np.cumsum(values), label=name, linewidth=1.8)
    axes.set_title(title)
    axes.set_xlabel("day")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", frameon=False)
    return figure


def cumulative_panels(
    series: Mapping[str, np.ndarray], *, title: str, ylabels: Mapping[str, str]
) -> Figure:
    """One panel per policy, each with its own y axis: the running total of its per-day
    values (``(n_days,)`` each) labelled ``ylabels[policy]``. For curves in different units
    (each arm's regret in its own reward), which a shared axis would compare as if they were
    one: a click and a unit of revenue are not the same size."""
    if not series:
        raise ValueError("'series' must hold at least one policy; got none.")
    missing = [name for name in series if name not in ylabels]
    if missing:
        raise ValueError(f"'ylabels' must label every policy; missing {missing}.")
    figure = _figure(4.0 * len(series), 3.6)
    for index, (name, values) in enumerate(series.items()):
        data = np.asarray(values, dtype=np.float64)
        if data.ndim != 1:
            raise ValueError(f"series '{name}' must be 1-D (n_days,); got shape {data.shape}.")
        axes = figure.add_subplot(1, len(series), index + 1)
        axes.plot(np.arange(data.size), np.cumsum(data), color=f"C{index % 10}", linewidth=1.8)
        axes.set_title(name, fontsize="medium")
        axes.set_xlabel("day")
        axes.set_ylabel(ylabels[name])
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    return figure


def allocation_over_time(
    days: np.ndarray,
    shares: np.ndarray,
    labels: Sequence[str],
    *,
    title: str,
    max_areas: int = 12,
) -> Figure:
    """Stacked areas: the share of decisions that went to each action (or factor level) by day.

    ``shares`` has shape ``(n_days, n_labels)``, non-negative, rows usually summing to 1;
    ``labels`` names its columns and ``days`` (n_days,) its rows. With more than ``max_areas``
    labels, the ``max_areas - 1`` with the largest mean share are drawn and the rest are summed
    into one grey "other" area, so a space of hundreds of actions stays legible (colours come
    from tab20, so up to 20 areas stay distinct).
    """
    days = np.asarray(days)
    matrix = np.asarray(shares, dtype=np.float64)
    names = [str(label) for label in labels]
    if matrix.ndim != 2 or matrix.shape != (len(days), len(names)):
        raise ValueError(
            f"'shares' must have shape (n_days, n_labels) = ({len(days)}, {len(names)}); "
            f"got {matrix.shape}."
        )
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise ValueError("'shares' must be finite and non-negative.")
    if max_areas < 2:
        raise ValueError(f"'max_areas' must be at least 2; got {max_areas}.")
    palette = colormaps["tab20"]
    colours: list[ColorType] = [palette(i % palette.N) for i in range(len(names))]
    if len(names) > max_areas:
        order = np.argsort(-matrix.mean(axis=0), kind="stable")
        keep, rest = np.sort(order[: max_areas - 1]), order[max_areas - 1 :]
        matrix = np.column_stack([matrix[:, keep], matrix[:, rest].sum(axis=1)])
        names = [names[i] for i in keep] + [f"other ({len(rest)})"]
        colours = [palette(i % palette.N) for i in range(len(keep))]
        colours.append("0.8")

    figure = _figure(9.0, 4.5)
    axes = figure.add_subplot()
    axes.stackplot(days, matrix.T, labels=names, colors=colours, alpha=0.95)
    axes.set_title(title)
    axes.set_xlabel("day")
    axes.set_ylabel("share of decisions")
    top = float(matrix.sum(axis=1).max()) if matrix.size else 1.0
    axes.set_ylim(0.0, max(1.0, top))
    if len(days):
        axes.set_xlim(days[0], days[-1])
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    return figure


def lift_intervals(rows: Sequence[LiftPoint], *, title: str) -> Figure:
    """Relative lift over the holdout, one panel per KPI and one row per policy.

    ``rows`` are :class:`~experiments.analysis.lift.LiftRow` or anything with the same
    attributes (:class:`LiftPoint`).

    Each row shows the point estimate with its 95% interval as error bars, the always-valid
    interval as a lighter band behind it (when given) and the lift as text ("+3.2%"; "n/a" when
    it is undefined, e.g. a holdout mean of 0). A dashed vertical line marks zero lift.
    """
    if not rows:
        raise ValueError("'rows' must hold at least one LiftRow; got none.")
    panels: dict[str, list[LiftPoint]] = {}
    for row in rows:
        panels.setdefault(row.kpi, []).append(row)
    policies = list(dict.fromkeys(row.policy for row in rows))
    colours = {policy: f"C{i % 10}" for i, policy in enumerate(policies)}

    heights = [len(panel) for panel in panels.values()]
    figure = _figure(8.0, 1.2 + sum(0.55 * h + 0.6 for h in heights))
    grid = figure.add_gridspec(len(panels), 1, height_ratios=[h + 1 for h in heights])
    for index, (kpi, panel) in enumerate(panels.items()):
        axes = figure.add_subplot(grid[index])
        axes.axvline(0.0, color="0.35", linewidth=1.0, linestyle="--", zorder=1)
        for y, row in enumerate(panel):
            _draw_lift_row(axes, y, row, colours[row.policy])
        axes.set_yticks(range(len(panel)), [row.policy for row in panel])
        axes.set_ylim(len(panel) - 0.5, -0.5)  # first policy on top
        axes.set_title(kpi, loc="left", fontsize="medium")
        axes.xaxis.set_major_formatter(PercentFormatter(1.0))
        axes.grid(axis="x", alpha=0.3)
        axes.margins(x=0.15)
    figure.axes[-1].set_xlabel("relative lift over holdout")
    figure.suptitle(title)
    figure.legend(
        handles=[
            Line2D([], [], color="0.2", marker="o", linewidth=1.2, label="lift, 95% interval"),
            Patch(color="0.2", alpha=0.18, label="always-valid interval"),
        ],
        loc="outside lower center",
        ncols=2,
        frameon=False,
    )
    return figure


def _draw_lift_row(axes: Axes, y: int, row: LiftPoint, colour: str) -> None:
    if row.av_low is not None and row.av_high is not None:
        axes.barh(
            y,
            row.av_high - row.av_low,
            left=row.av_low,
            height=0.55,
            color=colour,
            alpha=0.18,
            zorder=2,
        )
    point = row.relative_lift
    if point is None or not math.isfinite(point):
        axes.text(0.0, y, "n/a", ha="center", va="center", color="0.35")
        return
    low, high = row.ci_low, row.ci_high
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        xerr = [[max(point - low, 0.0)], [max(high - point, 0.0)]]
        axes.errorbar([point], [y], xerr=xerr, fmt="o", color=colour, capsize=4, zorder=3)
    else:
        axes.plot([point], [y], "o", color=colour, zorder=3)
    axes.annotate(
        f"{point:+.1%}",
        (point, y),
        xytext=(0, 7),
        textcoords="offset points",
        ha="center",
        fontsize="small",
    )
