"""Lift of treatment over holdout, off-policy estimates, and the live experiment report."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session

from bandit.lift import Lift, RunningMoments, welch_lift, welch_lift_from_moments
from bandit.ope import estimate_all
from experiments.engine.snapshots import unpack_state
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store import queries
from experiments.vocabulary import Group


@dataclass(frozen=True)
class GroupKpi:
    """Count, mean and variance of a KPI in one group."""

    group: str
    n: int
    mean: float | None
    variance: float | None


def _moments(count: int, total: float, total_squares: float) -> RunningMoments:
    mean = total / count if count else 0.0
    m2 = max(total_squares - count * mean * mean, 0.0) if count else 0.0
    return RunningMoments(count=np.array(count), mean=np.array(mean), m2=np.array(m2))


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def lift_dict(lift: Lift | None) -> dict[str, Any] | None:
    """A JSON-safe view of a Lift (NaN and infinity become null)."""
    if lift is None:
        return None
    out: dict[str, Any] = {}
    for name, value in asdict(lift).items():
        if isinstance(value, tuple):
            out[name] = [_finite(item) for item in value]
        elif isinstance(value, float):
            out[name] = _finite(value)
        else:
            out[name] = value
    return out


def reward_lift(session: Session, *, experiment_key: str) -> tuple[list[GroupKpi], Lift | None]:
    """Per-group reward summaries and the Welch lift of treatment over holdout."""
    aggregates = queries.reward_aggregates(session, experiment_key=experiment_key)
    groups, moments = [], {}
    for group in (Group.TREATMENT, Group.HOLDOUT):
        count, total, squares = aggregates.get(group, (0, 0.0, 0.0))
        summary = _moments(count, total, squares)
        moments[group] = summary
        variance = float(summary.variance) if count > 1 else None
        groups.append(GroupKpi(group, count, total / count if count else None, variance))
    lift = None
    if moments[Group.TREATMENT].count >= 2 and moments[Group.HOLDOUT].count >= 2:
        lift = welch_lift_from_moments(moments[Group.TREATMENT], moments[Group.HOLDOUT])
    return groups, lift


@dataclass(frozen=True)
class LiftRow:
    """One KPI's lift of treatment over holdout for one policy (relative terms for plots)."""

    kpi: str
    policy: str
    n_treatment: int
    n_holdout: int
    mean_treatment: float
    mean_holdout: float
    difference: float
    diff_low: float
    diff_high: float
    relative_lift: float
    ci_low: float
    ci_high: float
    av_low: float | None
    av_high: float | None
    p_value: float


def lift_row(kpi: str, policy: str, lift: Lift) -> LiftRow:
    """Flatten a :class:`bandit.lift.Lift`; the always-valid interval is also made relative."""
    base = lift.mean_holdout
    av_low, av_high = lift.always_valid_ci
    relative_ok = base != 0 and math.isfinite(base)
    return LiftRow(
        kpi=kpi,
        policy=policy,
        n_treatment=int(lift.n_treatment),
        n_holdout=int(lift.n_holdout),
        mean_treatment=float(lift.mean_treatment),
        mean_holdout=float(base),
        difference=float(lift.difference),
        diff_low=float(lift.diff_ci[0]),
        diff_high=float(lift.diff_ci[1]),
        relative_lift=float(lift.relative_lift),
        ci_low=float(lift.relative_ci[0]),
        ci_high=float(lift.relative_ci[1]),
        av_low=float(av_low / abs(base)) if relative_ok else None,
        av_high=float(av_high / abs(base)) if relative_ok else None,
        p_value=float(lift.p_value),
    )


def kpi_lift_rows(
    policy: str, measures: dict[str, np.ndarray], holdout: np.ndarray
) -> list[LiftRow]:
    """Lift of every KPI (per-customer values) of treatment over holdout customers."""
    rows = []
    for kpi, values in measures.items():
        treatment, control = values[~holdout], values[holdout]
        if treatment.size < 2 or control.size < 2:
            continue
        rows.append(lift_row(kpi, policy, welch_lift(treatment, control)))
    return rows


def _percent(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:+.1f}%"


def lift_table_markdown(rows: list[LiftRow]) -> str:
    """The lift table as markdown: one row per policy and KPI."""
    lines = [
        "| policy | KPI | treatment | holdout | lift | 95% CI | always-valid CI | n (T/H) |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.policy} | {row.kpi} | {row.mean_treatment:.4g} | {row.mean_holdout:.4g} "
            f"| {_percent(row.relative_lift)} | [{_percent(row.ci_low)}, {_percent(row.ci_high)}] "
            f"| [{_percent(row.av_low)}, {_percent(row.av_high)}] "
            f"| {row.n_treatment}/{row.n_holdout} |"
        )
    return "\n".join(lines)


def off_policy_summary(
    spec: ExperimentSpec,
    rows: Sequence[queries.LearningRow],
    state: Mapping[str, np.ndarray] | None,
    *,
    seed: int = 0,
    max_rows: int = 20_000,
) -> dict[str, Any]:
    """IPS/SNIPS/DM/DR of the policy in ``state`` on logged, rewarded decisions.

    Sits next to the measured treatment and holdout means of the same rewards, so a reader
    can see whether the current policy is expected to do better than what was served.
    Longer logs are estimated on a seeded uniform sample of ``max_rows`` rows (the estimates
    stay unbiased; the intervals widen): the estimators hold ``rows x actions`` matrices.
    """
    if len(rows) < 2:
        return {}
    sampled = len(rows) > max_rows
    if sampled:
        keep = np.random.default_rng(seed).choice(len(rows), max_rows, replace=False)
        rows = [rows[index] for index in np.sort(keep)]
    policy = spec.build_policy(seed=seed)
    if state is not None:
        policy.set_state(state)
    X = spec.encode_contexts([row.context for row in rows])
    actions = np.array([row.action_index for row in rows], dtype=np.int64)
    rewards = np.array([row.value for row in rows], dtype=np.float64)
    propensities = np.array([row.propensity for row in rows], dtype=np.float64)
    holdout = np.array([row.group == Group.HOLDOUT for row in rows])
    model = policy.expected_rewards(X) if hasattr(policy, "expected_rewards") else None
    report = estimate_all(
        reward=rewards,
        action=actions,
        propensity=propensities,
        target_probs=policy.action_probabilities(X),
        expected_reward=model,
    )
    out: dict[str, Any] = {
        name: {"value": item.value, "ci": [item.ci_low, item.ci_high], "ess": item.ess}
        for name, item in report.estimates().items()
    }
    out["measured_treatment"] = float(rewards[~holdout].mean()) if (~holdout).any() else None
    out["measured_holdout"] = float(rewards[holdout].mean()) if holdout.any() else None
    out["rows"] = len(rows)
    out["sampled"] = sampled
    return out


@dataclass(frozen=True)
class LiveReport:
    """The report of a live experiment, from its database."""

    key: str
    status: str
    policy_version: int
    counts: dict[str, Any]
    lift: LiftRow | None
    periods: list[tuple[int, dict[str, float]]]
    off_policy: dict[str, Any]


def build_live_report(database: Engine, key: str, *, period_days: int = 1) -> LiveReport:
    """Lift of the reward so far, per-period metrics (by decision date) and OPE estimates."""
    with Session(database) as session:
        experiment = queries.require_experiment(session, key=key)
        spec = parse_spec(experiment.spec)
        counts = queries.experiment_counts(session, experiment_key=key)
        rows = queries.reward_rows(session, experiment_key=key)
        snapshot = queries.latest_snapshot(session, experiment_key=key)
    values = np.array([row.value for row in rows], dtype=np.float64)
    holdout = np.array([row.group == Group.HOLDOUT for row in rows], dtype=bool)
    lift = None
    if (~holdout).sum() >= 2 and holdout.sum() >= 2:
        lift = lift_row(spec.reward.event, "live", welch_lift(values[~holdout], values[holdout]))
    periods: list[tuple[int, dict[str, float]]] = []
    if rows:
        start = min(row.created_at for row in rows)
        period = np.array(
            [(row.created_at - start).days // period_days for row in rows], dtype=np.int64
        )
        for index in range(int(period.max()) + 1):
            upto = period <= index
            now = period == index
            metrics = {
                "rewards": float(now.sum()),
                "mean_reward_treatment": _mean(values[now & ~holdout]),
                "mean_reward_holdout": _mean(values[now & holdout]),
            }
            if (upto & ~holdout).sum() >= 2 and (upto & holdout).sum() >= 2:
                cumulative = welch_lift(values[upto & ~holdout], values[upto & holdout])
                metrics["lift"] = float(cumulative.difference)
                metrics["lift_low"] = float(cumulative.diff_ci[0])
                metrics["lift_high"] = float(cumulative.diff_ci[1])
                metrics["relative_lift"] = float(cumulative.relative_lift)
            periods.append((index, metrics))
    state = unpack_state(snapshot.state) if snapshot is not None else None
    return LiveReport(
        key=key,
        status=experiment.status,
        policy_version=snapshot.version if snapshot is not None else 0,
        counts=counts,
        lift=lift,
        periods=periods,
        off_policy=off_policy_summary(spec, rows, state),
    )


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def live_report_markdown(report: LiveReport) -> str:
    lines = [
        f"# engage report: {report.key}",
        "",
        f"Status {report.status}; policy version {report.policy_version}.",
        "",
        lift_table_markdown([report.lift]) if report.lift else "Not enough rewards for lift.",
        "",
        "| estimator | value | 95% CI |",
        "|---|---:|---|",
    ]
    for name, item in report.off_policy.items():
        if isinstance(item, dict):
            lines.append(
                f"| {name} | {item['value']:.4g} | [{item['ci'][0]:.4g}, {item['ci'][1]:.4g}] |"
            )
    return "\n".join(lines) + "\n"


def live_report_json(report: LiveReport) -> dict[str, Any]:
    return {
        "experiment": report.key,
        "status": report.status,
        "policy_version": report.policy_version,
        **report.counts,
        "lift": asdict(report.lift) if report.lift else None,
        "periods": [{"period": period, **metrics} for period, metrics in report.periods],
        "off_policy": report.off_policy,
    }
