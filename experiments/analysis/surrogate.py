"""The surrogate reward beside the KPI it stands in for, on the same matured decisions.

A surrogate reward (``[reward] kind = "surrogate"``) is what the learner is given after the
short window; the KPI it predicts is known only once the long window closes. For every
decision that has matured, :func:`surrogate_check` sets the reward it was given next to its
matured KPI (recomputed from its outcomes by the same rule the engine's fit uses), so the
surrogate's bias is visible in the live report:

- ``bias``: the mean of ``reward - KPI`` over matured decisions, with a 95% normal interval of
  the paired differences (rewards given before the first fit are the stated fallback, and
  show here as the bias they are);
- ``correlation`` of reward and KPI across decisions;
- the lift of treatment over holdout measured on the reward and on the KPI of the same
  decisions: the estimate the surrogate gives, beside the one it stands in for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from statistics import NormalDist

import numpy as np
from sqlmodel import Session

from bandit.lift import welch_lift
from experiments.analysis.lift import LiftRow, significant
from experiments.analysis.model import Number, ReportModel
from experiments.spec import ExperimentSpec
from experiments.spec.surrogate import EventLike, window_total
from experiments.store.decisions import decisions_with_status
from experiments.store.outcomes import outcomes_for_decisions
from experiments.store.rewards import LearningRow
from experiments.vocabulary import Attribution, DecisionStatus, Group

__all__ = ["SurrogateCheck", "SurrogatePeriod", "surrogate_check", "surrogate_markdown"]


class SurrogatePeriod(ReportModel):
    """The matured decisions made in one period (by decision date, counted from the first):
    their mean reward, mean KPI and the bias between them. Rewards given before the first
    fit are the fallback, so early periods show the fallback's bias, later ones the index's."""

    period: int
    n: int
    mean_reward: Number
    mean_kpi: Number
    bias: Number


class SurrogateCheck(ReportModel):
    """A surrogate reward against the matured KPI of the same decisions (module docstring).

    ``matured`` decisions have both; ``kpi`` names the KPI (``sum:<event>:<days>d``). Means,
    bias and correlation are None below 2 decisions; a lift is None until both groups hold 2.
    """

    kpi: str
    matured: int
    mean_reward: Number
    mean_kpi: Number
    bias: Number
    bias_low: Number
    bias_high: Number
    correlation: Number
    lift_reward: LiftRow | None
    lift_kpi: LiftRow | None
    period_days: int = 7
    periods: tuple[SurrogatePeriod, ...] = ()


def surrogate_check(
    session: Session,
    spec: ExperimentSpec,
    rows: Sequence[LearningRow],
    *,
    policy: str = "live",
    confidence: float = 0.95,
    period_days: int = 7,
) -> SurrogateCheck | None:
    """The check of ``spec``'s surrogate reward on its matured decisions, given the experiment's
    reward ``rows``; None when the reward is not a surrogate."""
    reward = spec.reward
    if reward.surrogate is None:
        return None
    days = reward.window.total_seconds() / 86_400
    kpi_name = f"sum:{reward.event}:{days:g}d"
    given = {row.decision_id: row for row in rows}
    matured = [
        decision
        for decision in decisions_with_status(
            session, experiment_key=spec.key, status=DecisionStatus.REWARDED.value
        )
        if decision.id in given
    ]
    events: dict[str, list[EventLike]] = {}
    for outcome in outcomes_for_decisions(
        session,
        decision_ids=[decision.id for decision in matured],
        attributions=[Attribution.ATTRIBUTED],
        events=[reward.event],
    ):
        events.setdefault(str(outcome.decision_id), []).append(outcome)
    values = np.array([given[decision.id].value for decision in matured], dtype=np.float64)
    kpi = np.array(
        [
            _or_default(
                window_total(
                    events.get(decision.id, []),
                    reward.event,
                    decision.activated_at or decision.created_at,
                    reward.window,
                ),
                reward.default,
            )
            for decision in matured
        ],
        dtype=np.float64,
    )
    holdout = np.array([given[d.id].group == Group.HOLDOUT for d in matured], dtype=bool)
    summary: dict[str, float | None] = dict.fromkeys(
        ("mean_reward", "mean_kpi", "bias", "bias_low", "bias_high", "correlation")
    )
    if values.size >= 2:
        difference = values - kpi
        half = NormalDist().inv_cdf(0.5 + confidence / 2) * difference.std(ddof=1)
        half /= np.sqrt(values.size)
        spread = values.std() * kpi.std()
        summary.update(
            mean_reward=values.mean(),
            mean_kpi=kpi.mean(),
            bias=difference.mean(),
            bias_low=difference.mean() - half,
            bias_high=difference.mean() + half,
            correlation=float(np.mean((values - values.mean()) * (kpi - kpi.mean())) / spread)
            if spread > 0
            else None,
        )
    return SurrogateCheck(
        kpi=kpi_name,
        matured=int(values.size),
        **summary,
        lift_reward=_lift(f"surrogate:{reward.event}", policy, values, holdout),
        lift_kpi=_lift(kpi_name, policy, kpi, holdout),
        period_days=period_days,
        periods=_periods([d.created_at for d in matured], values, kpi, period_days),
    )


def _periods(
    created: Sequence[datetime], values: np.ndarray, kpi: np.ndarray, period_days: int
) -> tuple[SurrogatePeriod, ...]:
    if not created:
        return ()
    start = min(created)
    period = np.array([(moment - start).days // period_days for moment in created])
    rows = []
    for index in np.unique(period):
        now = period == index
        rows.append(
            SurrogatePeriod(
                period=int(index),
                n=int(now.sum()),
                mean_reward=values[now].mean(),
                mean_kpi=kpi[now].mean(),
                bias=(values[now] - kpi[now]).mean(),
            )
        )
    return tuple(rows)


def _or_default(value: float | None, default: float) -> float:
    return default if value is None else value


def _lift(kpi: str, policy: str, values: np.ndarray, holdout: np.ndarray) -> LiftRow | None:
    treatment, control = values[~holdout], values[holdout]
    if treatment.size < 2 or control.size < 2:
        return None
    return LiftRow.from_lift(kpi, policy, welch_lift(treatment, control))


def surrogate_markdown(check: SurrogateCheck) -> str:
    """The check as a markdown paragraph and table (``report.md``)."""
    lines = [
        f"Surrogate reward against the matured KPI ({check.kpi}) of the same "
        f"{check.matured} matured decisions: bias {significant(check.bias)} "
        f"[{significant(check.bias_low)}, {significant(check.bias_high)}], correlation "
        f"{significant(check.correlation)}.",
        "",
        "| measured on | mean | lift (treatment - holdout) | 95% CI |",
        "|---|---:|---:|---|",
    ]
    for label, mean, lift in (
        ("surrogate reward", check.mean_reward, check.lift_reward),
        ("matured KPI", check.mean_kpi, check.lift_kpi),
    ):
        if lift is None:
            lines.append(f"| {label} | {significant(mean)} | n/a | n/a |")
        else:
            lines.append(
                f"| {label} | {significant(mean)} | {significant(lift.difference)} "
                f"| [{significant(lift.diff_low)}, {significant(lift.diff_high)}] |"
            )
    if check.periods:
        lines += [
            "",
            f"| decisions of period ({check.period_days} days) | n | reward | KPI | bias |",
            "|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {row.period} | {row.n} | {significant(row.mean_reward)} "
            f"| {significant(row.mean_kpi)} | {significant(row.bias)} |"
            for row in check.periods
        ]
    return "\n".join(lines)
