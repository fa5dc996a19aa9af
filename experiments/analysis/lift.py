"""One KPI's lift of treatment over holdout as a report row, and the lift table.

:class:`LiftRow` is the one row every lift engage reports is written in: the live report (HTTP,
``engage report``, MLflow), the KPI lifts of an ``engage run`` and the lift figure
(:func:`experiments.analysis.plots.lift_intervals`). :meth:`LiftRow.from_lift` is the one
converter from :class:`bandit.lift.Lift`: the statistics are computed there, and the relative
always-valid interval by :func:`bandit.lift.relative_always_valid_interval`.

Intervals are flat ``*_low``/``*_high`` pairs at level ``confidence``:

- ``diff_low, diff_high``: Welch's interval of ``difference = mean_treatment - mean_holdout``;
- ``diff_av_low, diff_av_high``: the always-valid interval of the difference;
- ``ci_low, ci_high``: the delta-method interval of ``relative_lift`` (0.05 = +5%);
- ``av_low, av_high``: the always-valid interval on the relative scale.

A statistic that is undefined (every relative one when the holdout mean is 0) is None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from bandit.lift import Lift, relative_always_valid_interval, welch_lift
from experiments.analysis.model import Number, ReportModel

__all__ = ["LiftRow", "kpi_lift_rows", "lift_table_markdown", "percent", "significant"]


class LiftRow(ReportModel):
    """One KPI's lift of treatment over holdout for one policy (see the module docstring)."""

    kpi: str
    policy: str
    n_treatment: int
    n_holdout: int
    mean_treatment: Number
    mean_holdout: Number
    difference: Number
    diff_low: Number
    diff_high: Number
    relative_lift: Number
    ci_low: Number
    ci_high: Number
    av_low: Number
    av_high: Number
    p_value: Number
    stderr: Number
    df: Number
    diff_av_low: Number
    diff_av_high: Number
    confidence: float
    mixing_variance: Number

    @classmethod
    def from_lift(cls, kpi: str, policy: str, lift: Lift) -> LiftRow:
        """The row of a :class:`bandit.lift.Lift` (its tuples become ``*_low``/``*_high``)."""
        av_low, av_high = relative_always_valid_interval(lift)
        return cls(
            kpi=kpi,
            policy=policy,
            n_treatment=lift.n_treatment,
            n_holdout=lift.n_holdout,
            mean_treatment=lift.mean_treatment,
            mean_holdout=lift.mean_holdout,
            difference=lift.difference,
            diff_low=lift.diff_ci[0],
            diff_high=lift.diff_ci[1],
            relative_lift=lift.relative_lift,
            ci_low=lift.relative_ci[0],
            ci_high=lift.relative_ci[1],
            av_low=av_low,
            av_high=av_high,
            p_value=lift.p_value,
            stderr=lift.stderr,
            df=lift.df,
            diff_av_low=lift.always_valid_ci[0],
            diff_av_high=lift.always_valid_ci[1],
            confidence=lift.confidence,
            mixing_variance=lift.mixing_variance,
        )


def kpi_lift_rows(
    policy: str, measures: Mapping[str, np.ndarray], holdout: np.ndarray
) -> list[LiftRow]:
    """Lift of every KPI of treatment over holdout customers.

    ``measures`` maps a KPI to its per-customer values, shape ``(n,)``; ``holdout`` (n,) marks
    the holdout customers. KPIs with fewer than 2 customers in a group are left out.
    """
    rows = []
    for kpi, values in measures.items():
        treatment, control = values[~holdout], values[holdout]
        if treatment.size < 2 or control.size < 2:
            continue
        rows.append(LiftRow.from_lift(kpi, policy, welch_lift(treatment, control)))
    return rows


def percent(value: float | None) -> str:
    """A signed percentage ("+3.2%"), or "n/a" when undefined."""
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def significant(value: float | None) -> str:
    """``value`` to 4 significant digits, or "n/a" when undefined."""
    return "n/a" if value is None else f"{value:.4g}"


def lift_table_markdown(rows: Iterable[LiftRow]) -> str:
    """The lift table as markdown: one row per policy and KPI."""
    lines = [
        "| policy | KPI | treatment | holdout | lift | 95% CI | always-valid CI | n (T/H) |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.policy} | {row.kpi} | {significant(row.mean_treatment)} "
            f"| {significant(row.mean_holdout)} | {percent(row.relative_lift)} "
            f"| [{percent(row.ci_low)}, {percent(row.ci_high)}] "
            f"| [{percent(row.av_low)}, {percent(row.av_high)}] "
            f"| {row.n_treatment}/{row.n_holdout} |"
        )
    return "\n".join(lines)
