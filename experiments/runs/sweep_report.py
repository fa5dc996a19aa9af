"""What an ``engage sweep`` reports: every cell's arms, the same settings pooled over seeds, and
one MLflow parent run with a nested run per cell.

Within a cell, arms are compared with the interaction arm on the same treated customers (the
paired intervals of :mod:`experiments.runs.comparison`). Those intervals hold the policies each
run learned fixed; across seeds the learners' own randomness varies too (with ``--policy-seeds``
it varies alone, in each seeded world), so for settings run in two or more cells the sweep also
gives each difference's mean over those cells with a 95% Student-t interval
(``mean +- t_{0.975, k-1} * sd / sqrt(k)``, k cells: every seed and policy seed). Where an
interval contains 0 the reading is "no detectable difference".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats

from experiments.analysis.lift import NO_DIFFERENCE
from experiments.analysis.model import Number, ReportModel
from experiments.runs.comparison import KPIS
from experiments.runs.report import arm_summary, comparison_metrics, render_markdown, result_json
from experiments.runs.simulation import RunOptions, RunResult
from experiments.runs.sweep import SweepCell
from experiments.spec import ExperimentSpec

__all__ = [
    "PooledRow",
    "SweepPlan",
    "SweepRow",
    "pooled_rows",
    "sweep_json",
    "sweep_markdown",
    "sweep_rows",
    "track_sweep",
]


class SweepRow(ReportModel):
    """One arm of one cell: its KPIs and, but for the reference arm, its paired difference
    from the interaction arm per KPI (``None`` where the cell has no interaction arm)."""

    cell: int
    label: str
    seed: int
    settings: dict[str, Any]
    arm: str
    policy_seed: int | None = None
    revenue_per_customer: Number
    retention: Number
    revenue_difference: Number = None
    revenue_low: Number = None
    revenue_high: Number = None
    retention_difference: Number = None
    retention_low: Number = None
    retention_high: Number = None


class PooledRow(ReportModel):
    """One setting and arm pooled over seeds: the mean difference from the interaction arm per
    KPI, its 95% t-interval over the seeds, and what the interval supports."""

    settings: dict[str, Any]
    arm: str
    seeds: int
    kpi: str
    mean_difference: Number
    low: Number
    high: Number
    reading: str


def sweep_rows(cells: Sequence[SweepCell], results: Sequence[RunResult]) -> list[SweepRow]:
    """A row per cell and arm, cells in grid order."""
    rows = []
    for cell, result in zip(cells, results, strict=True):
        differences: dict[tuple[str, str], Any] = {
            (row.arm, row.kpi): row for row in result.comparisons if row.arm != row.reference
        }
        for arm in result.arms:
            summary = arm_summary(arm)
            extra: dict[str, Number] = {}
            for kpi in KPIS:
                row = differences.get((arm.arm, kpi))
                if row is not None:
                    extra[f"{kpi}_difference"] = row.difference
                    extra[f"{kpi}_low"] = row.low
                    extra[f"{kpi}_high"] = row.high
            rows.append(
                SweepRow(
                    cell=cell.index,
                    label=cell.label,
                    seed=cell.seed,
                    policy_seed=cell.policy_seed,
                    settings=dict(cell.settings),
                    arm=arm.arm,
                    revenue_per_customer=summary.revenue_per_customer,
                    retention=summary.retention,
                    **extra,
                )
            )
    return rows


def _t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval of ``values`` (two or more)."""
    count = len(values)
    mean = math.fsum(values) / count
    sd = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (count - 1))
    half = float(stats.t.ppf(0.975, count - 1)) * sd / math.sqrt(count)
    return mean, mean - half, mean + half


def pooled_rows(rows: Sequence[SweepRow]) -> list[PooledRow]:
    """Per setting, arm and KPI with a difference on two or more seeds: the mean over seeds and
    its 95% t-interval (see the module docstring)."""
    groups: dict[tuple[str, str], list[SweepRow]] = {}
    for row in rows:
        groups.setdefault((repr(sorted(row.settings.items())), row.arm), []).append(row)
    pooled = []
    for members in groups.values():
        for kpi in KPIS:
            values = [
                float(value)
                for member in members
                if (value := getattr(member, f"{kpi}_difference")) is not None
                and math.isfinite(value)
            ]
            if len(values) < 2:
                continue
            mean, low, high = _t_interval(values)
            if low <= 0.0 <= high or not math.isfinite(low):
                reading = NO_DIFFERENCE
            else:
                reading = "higher than interaction" if mean > 0 else "lower than interaction"
            pooled.append(
                PooledRow(
                    settings=members[0].settings,
                    arm=members[0].arm,
                    seeds=len(values),
                    kpi=kpi,
                    mean_difference=mean,
                    low=low,
                    high=high,
                    reading=reading,
                )
            )
    return pooled


def _fixed(value: float | None, digits: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, digits)


def _settings_text(settings: dict[str, Any]) -> str:
    return " ".join(f"{path}={value}" for path, value in settings.items()) or "(base spec)"


def sweep_markdown(spec: ExperimentSpec, options: RunOptions, rows: Sequence[SweepRow]) -> str:
    """The sweep as markdown: every cell and arm, then the settings pooled over seeds."""
    lines = [
        f"# engage sweep: {spec.key}",
        "",
        f"{options.customers:,} simulated customers x {options.days} days per cell; arms "
        f"{', '.join(options.arms)}. Differences are from the interaction arm on the same "
        "treated customers (95% paired interval).",
        "",
        "| cell | arm | revenue/customer | retention | revenue difference [95% CI] "
        "| retention difference [95% CI] |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        revenue = (
            f"{_fixed(row.revenue_difference, '+.3f')} "
            f"[{_fixed(row.revenue_low, '+.3f')}, {_fixed(row.revenue_high, '+.3f')}]"
            if row.revenue_difference is not None
            else ""
        )
        retention = (
            f"{_fixed(row.retention_difference, '+.4f')} "
            f"[{_fixed(row.retention_low, '+.4f')}, {_fixed(row.retention_high, '+.4f')}]"
            if row.retention_difference is not None
            else ""
        )
        lines.append(
            f"| {row.label} | {row.arm} | {_fixed(row.revenue_per_customer, '.3f')} "
            f"| {_fixed(row.retention, '.4f')} | {revenue} | {retention} |"
        )
    pooled = pooled_rows(rows)
    if pooled:
        lines += [
            "",
            "## Pooled over seeds (95% t-interval over the seeds: the learners' randomness "
            "included)",
            "",
            "| settings | arm | KPI | seeds | mean difference [95% CI] | reading |",
            "|---|---|---|---:|---:|---|",
        ]
        for one in pooled:
            digits = "+.4f" if one.kpi == "retention" else "+.3f"
            lines.append(
                f"| {_settings_text(one.settings)} | {one.arm} | {one.kpi} | {one.seeds} "
                f"| {_fixed(one.mean_difference, digits)} "
                f"[{_fixed(one.low, digits)}, {_fixed(one.high, digits)}] | {one.reading} |"
            )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SweepPlan:
    """What the parent run records about the grid."""

    seeds: tuple[int, ...]
    overrides: dict[str, list[Any]]
    executor: str
    policy_seeds: tuple[int, ...] | None = None


def sweep_json(
    spec: ExperimentSpec,
    options: RunOptions,
    plan: SweepPlan,
    cells: Sequence[SweepCell],
    results: Sequence[RunResult],
) -> dict[str, Any]:
    """Machine-readable sweep (``engage sweep --json`` and ``sweep.json`` in MLflow): each
    cell's full ``engage run`` report, the rows and the pooled rows."""
    rows = sweep_rows(cells, results)
    return {
        "experiment": spec.key,
        "customers": options.customers,
        "days": options.days,
        "arms": list(options.arms),
        "seeds": list(plan.seeds),
        "policy_seeds": None if plan.policy_seeds is None else list(plan.policy_seeds),
        "overrides": plan.overrides,
        "executor": plan.executor,
        "cells": [
            {
                "cell": cell.index,
                "label": cell.label,
                "seed": cell.seed,
                "settings": dict(cell.settings),
                "report": result_json(result),
            }
            for cell, result in zip(cells, results, strict=True)
        ],
        "rows": [row.to_json() for row in rows],
        "pooled": [row.to_json() for row in pooled_rows(rows)],
    }


def _cell_metrics(result: RunResult) -> dict[str, float | None]:
    """A cell's metrics: every arm's KPIs and the comparison with the interaction arm."""
    metrics: dict[str, float | None] = {}
    for arm in result.arms:
        summary = arm_summary(arm)
        metrics[f"{arm.arm}_revenue_per_customer"] = summary.revenue_per_customer
        metrics[f"{arm.arm}_retention"] = summary.retention
        metrics[f"{arm.arm}_contacts_per_customer"] = summary.contacts_per_customer
    return {**metrics, **comparison_metrics(result)}


def track_sweep(
    spec: ExperimentSpec,
    spec_text: str,
    options: RunOptions,
    plan: SweepPlan,
    cells: Sequence[SweepCell],
    results: Sequence[RunResult],
) -> str:
    """Log the sweep to MLflow: a parent run (the grid, the sweep table as its description,
    ``sweep.json``), one nested run per cell (its settings as params, every arm's KPIs and
    differences as metrics, its ``engage run`` report); returns the parent id."""
    from experiments.analysis.tracking import Tracker
    from experiments.analysis.tracking_params import flatten_params
    from experiments.analysis.tracking_store import git_commit

    rows = sweep_rows(cells, results)
    markdown = sweep_markdown(spec, options, rows)
    params = {
        "spec": spec.to_json_dict(),
        "customers": options.customers,
        "days": options.days,
        "arms": ",".join(options.arms),
        "seeds": ",".join(map(str, plan.seeds)),
        "policy_seeds": "" if plan.policy_seeds is None else ",".join(map(str, plan.policy_seeds)),
        "sweep": {path: ",".join(map(str, values)) for path, values in plan.overrides.items()},
        "cells": len(cells),
        "executor": plan.executor,
        "fatigue": options.fatigue,
        "nurturing": options.nurturing,
        "drift": options.drift,
        "git_commit": git_commit() or "unknown",
    }
    with Tracker(
        spec.key,
        run_name=f"sweep {len(cells)} cells n={options.customers} days={options.days}",
        params=flatten_params(params),
        tags={"engage.kind": "sweep", "mlflow.note.content": markdown},
    ) as tracker:
        for cell, result in zip(cells, results, strict=True):
            with tracker.child(
                cell.label,
                params={"seed": cell.seed, **dict(cell.settings)},
                tags={"engage.kind": "sweep-cell"},
            ) as child:
                child.log_metrics(_cell_metrics(result), step=0)
                child.log_text(render_markdown(result), "report.md")
                child.log_dict(result_json(result), "report.json")
        tracker.log_text(spec_text, "spec.toml")
        tracker.log_text(markdown, "sweep.md")
        tracker.log_dict(sweep_json(spec, options, plan, cells, results), "sweep.json")
        return tracker.parent_run_id
