"""The strategy part of a live report: how each strategy's epochs did against the holdout's.

Read from the measured strategy assignments (one row per customer and closed epoch, with the
epoch KPI), for the live report (:class:`~experiments.analysis.report.LiveReport`), HTTP, CLI and
MLflow alike. For every strategy:

- its assignments so far and its mean propensity;
- its epoch KPI against the holdout customers' over the same epochs, compared epoch by epoch
  and weighted by the strategy's customers per epoch
  (:func:`bandit.adjustment.stratified_difference`), so a strategy the policy favours later is
  not compared with early epochs of the holdout. A contextual strategy policy gives a strategy
  more often to some customers than to others, so its customers are not a random sample: each
  is weighted by the inverse of its logged propensity (Hajek), which estimates what all of the
  epoch's treated customers would have averaged under the strategy;
- the same difference with each KPI regression-adjusted on the customer's pre-epoch value (the
  spec's ``kpi.baseline`` fields; one slope fitted within epoch x strategy cells, the holdout
  being one more arm, applied around each epoch's mean: analysis of covariance,
  :func:`bandit.adjustment.regression_adjusted`), the explicit counterpart of what a
  contextual strategy policy does through its context: a policy that assigns by context gives
  strategies customers who started at different baselines, and the adjustment compares them
  as if they had started alike. Rows whose baseline was erased are left out of it.

Intervals are normal 95% intervals; the adjustment's estimated slope is treated as known
(its error is of smaller order in large samples).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, select

from bandit.adjustment import StratifiedDifference, regression_adjusted, stratified_difference
from experiments.analysis.model import Number, ReportModel
from experiments.spec.strategies import StrategySet
from experiments.store import models
from experiments.store.strategies import latest_strategy_snapshot, measured_assignments
from experiments.vocabulary import Group

__all__ = [
    "EpochAllocation",
    "StrategyLift",
    "StrategyReport",
    "strategy_lifts",
    "strategy_metrics",
    "strategy_report",
    "strategy_table_markdown",
]


class StrategyLift(ReportModel):
    """One strategy's epoch KPI against the holdout's over the same epochs.

    ``difference`` (``diff_low, diff_high``) compares raw KPIs, ``adjusted_difference``
    (``adjusted_low, adjusted_high``) regression-adjusted ones, both with inverse-propensity
    weights; ``mean_kpi`` is the strategy's weighted mean (the epochs' treated customers had
    they all been under it), ``served_kpi`` the plain mean of the customers it was given to,
    and ``holdout_kpi`` the holdout's mean, epochs weighted as the strategy's customers. Every
    statistic is None until some epoch has two rows on each side.
    """

    strategy: str
    assignments: int
    measured: int
    mean_propensity: Number
    mean_kpi: Number = None
    served_kpi: Number = None
    holdout_kpi: Number = None
    n_holdout: int = 0
    epochs: int = 0
    difference: Number = None
    diff_low: Number = None
    diff_high: Number = None
    adjusted_difference: Number = None
    adjusted_low: Number = None
    adjusted_high: Number = None


class EpochAllocation(ReportModel):
    """One closed epoch: measured customers per strategy (the holdout under
    :attr:`StrategyReport.holdout`) and the mean KPI of each."""

    epoch: int
    customers: dict[str, int]
    mean_kpi: dict[str, Number]


class StrategyReport(ReportModel):
    """The strategies of a live experiment (see the module docstring).

    ``policy_version`` is the newest strategy snapshot (0 before the first); ``holdout`` is
    the label of the holdout in :attr:`EpochAllocation.customers`; ``panel`` and
    ``panel_warmup`` are the spec's persistent panel (0 and 0 without one), ``panel_settle``
    the epochs under a strategy before the policy learns from a panel customer.
    """

    kpi: str
    epoch_days: float
    baseline: tuple[str, ...]
    policy: str
    panel: float = 0.0
    panel_warmup: int = 0
    panel_settle: int = 0
    policy_version: int
    measured: int
    learned: int
    holdout: str
    lifts: tuple[StrategyLift, ...]
    epochs: tuple[EpochAllocation, ...]


#: How the holdout is labelled in per-epoch tables.
HOLDOUT_LABEL = "holdout"


def _baselines(rows: Sequence[models.StrategyAssignment], fields: Sequence[str]) -> np.ndarray:
    """``(n, k)`` baseline values, NaN where a context lacks one (erased or not numeric)."""
    values = np.full((len(rows), len(fields)), np.nan)
    for index, row in enumerate(rows):
        for column, name in enumerate(fields):
            value = row.context.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[index, column] = float(value)
    return values


def _lift_fields(result: StratifiedDifference | None, prefix: str) -> dict[str, Any]:
    if result is None:
        return {}
    if prefix == "adjusted":
        return {
            "adjusted_difference": result.difference,
            "adjusted_low": result.ci_low,
            "adjusted_high": result.ci_high,
        }
    return {
        "difference": result.difference,
        "diff_low": result.ci_low,
        "diff_high": result.ci_high,
        "mean_kpi": result.mean_treatment,
        "holdout_kpi": result.mean_control,
        "n_holdout": result.n_control,
        "epochs": result.strata,
    }


def strategy_lifts(
    strategies: StrategySet,
    rows: Sequence[models.StrategyAssignment],
    assigned: Mapping[str, tuple[int, float]],
) -> list[StrategyLift]:
    """Every strategy's lift against the holdout from the measured ``rows``; ``assigned``
    holds each strategy's assignments so far and the sum of their propensities."""
    kpi = np.array([row.kpi for row in rows], dtype=np.float64)
    epoch = np.array([row.epoch for row in rows], dtype=np.int64)
    holdout = np.array([row.group == Group.HOLDOUT for row in rows], dtype=bool)
    labels = np.array([row.strategy or "" for row in rows], dtype=object)
    baseline = _baselines(rows, strategies.kpi.baseline)
    known = ~np.isnan(baseline).any(axis=1)
    adjusted = np.full(kpi.shape, np.nan)
    if known.any():
        adjusted[known] = regression_adjusted(
            kpi[known], baseline[known], epoch[known], labels[known].astype(str)
        )
    lifts = []
    weights = np.array([1.0 / (row.propensity or 1.0) for row in rows], dtype=np.float64)
    for name in strategies.names:
        ours = (labels == name) & ~holdout
        count, propensity_sum = assigned.get(name, (0, 0.0))
        raw = stratified_difference(
            kpi[ours], epoch[ours], kpi[holdout], epoch[holdout], treatment_weights=weights[ours]
        )
        both = ours & known, holdout & known
        adjusted_result = stratified_difference(
            adjusted[both[0]],
            epoch[both[0]],
            adjusted[both[1]],
            epoch[both[1]],
            treatment_weights=weights[both[0]],
        )
        lifts.append(
            StrategyLift(
                strategy=name,
                assignments=count,
                measured=int(ours.sum()),
                mean_propensity=propensity_sum / count if count else None,
                served_kpi=float(kpi[ours].mean()) if ours.any() else None,
                **_lift_fields(raw, "raw"),
                **_lift_fields(adjusted_result, "adjusted"),
            )
        )
    return lifts


def _epochs(rows: Sequence[models.StrategyAssignment]) -> list[EpochAllocation]:
    by_epoch: dict[int, dict[str, list[float]]] = {}
    for row in rows:
        label = HOLDOUT_LABEL if row.group == Group.HOLDOUT else (row.strategy or "")
        by_epoch.setdefault(row.epoch, {}).setdefault(label, []).append(float(row.kpi or 0.0))
    return [
        EpochAllocation(
            epoch=epoch,
            customers={label: len(values) for label, values in groups.items()},
            mean_kpi={label: float(np.mean(values)) for label, values in groups.items()},
        )
        for epoch, groups in sorted(by_epoch.items())
    ]


def strategy_report(
    session: Session, *, experiment_key: str, strategies: StrategySet
) -> StrategyReport:
    """The strategy report of ``experiment_key``, read in ``session``."""
    rows = measured_assignments(session, experiment_key=experiment_key)
    assigned = _assigned(session, experiment_key)
    snapshot = latest_strategy_snapshot(session, experiment_key=experiment_key)
    section = strategies.section
    return StrategyReport(
        kpi=f"{section.kpi.kind}:{section.kpi.event}",
        epoch_days=section.epoch.total_seconds() / 86_400,
        baseline=tuple(section.kpi.baseline),
        policy=section.policy.name,
        panel=float(section.panel),
        panel_warmup=section.panel_warmup,
        panel_settle=section.panel_settle,
        policy_version=0 if snapshot is None else snapshot.version,
        measured=len(rows),
        learned=sum(1 for row in rows if row.learned_version is not None),
        holdout=HOLDOUT_LABEL,
        lifts=tuple(strategy_lifts(strategies, rows, assigned)),
        epochs=tuple(_epochs(rows)),
    )


def _assigned(session: Session, experiment_key: str) -> dict[str, tuple[int, float]]:
    """Per strategy: its assignments so far (measured or not) and their propensities' sum."""
    table = models.StrategyAssignment
    stmt = (
        select(table.strategy, func.count(), func.sum(table.propensity))
        .where(table.experiment_key == experiment_key, col(table.strategy).is_not(None))
        .group_by(table.strategy)
    )
    return {
        str(name): (int(count), float(total or 0.0)) for name, count, total in session.exec(stmt)
    }


def strategy_metrics(report: StrategyReport) -> dict[str, float | None]:
    """MLflow metrics of a strategy report: per strategy its assignments, measured epochs,
    mean KPI and its raw and adjusted difference from the holdout, with their intervals
    (``strategy.<name>.<statistic>``); undefined ones are None (MLflow skips them)."""
    metrics: dict[str, float | None] = {"strategy_policy_version": float(report.policy_version)}
    for lift in report.lifts:
        for name in (
            "assignments",
            "measured",
            "mean_propensity",
            "mean_kpi",
            "served_kpi",
            "holdout_kpi",
            "difference",
            "diff_low",
            "diff_high",
            "adjusted_difference",
            "adjusted_low",
            "adjusted_high",
        ):
            value = getattr(lift, name)
            metrics[f"strategy.{lift.strategy}.{name}"] = None if value is None else float(value)
    return metrics


def strategy_table_markdown(report: StrategyReport) -> str:
    """The strategy lifts as markdown (the live report's ``report.md``)."""
    lines = [
        f"Strategies: epoch KPI {report.kpi} over {report.epoch_days:g}-day epochs, "
        f"strategy policy {report.policy} v{report.policy_version}; adjusted on "
        f"{', '.join(report.baseline) or 'nothing'}."
        + (
            f" Persistent panel: every treated customer for the first {report.panel_warmup} "
            f"epochs, then {100 * report.panel:g}%; the policy learns from the panel only"
            + (
                f", from each customer's epoch {report.panel_settle + 1} under their strategy on."
                if report.panel_settle
                else "."
            )
            if report.panel or report.panel_warmup
            else ""
        ),
        "",
        "| strategy | assigned | measured | KPI | holdout KPI | difference [95% CI] "
        "| adjusted difference [95% CI] |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for lift in report.lifts:
        raw = _interval(lift.difference, lift.diff_low, lift.diff_high)
        adjusted = _interval(lift.adjusted_difference, lift.adjusted_low, lift.adjusted_high)
        lines.append(
            f"| {lift.strategy} | {lift.assignments} | {lift.measured} | {_num(lift.mean_kpi)} "
            f"| {_num(lift.holdout_kpi)} | {raw} | {adjusted} |"
        )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or low is None or high is None:
        return "n/a"
    return f"{value:+.4g} [{low:+.4g}, {high:+.4g}]"
