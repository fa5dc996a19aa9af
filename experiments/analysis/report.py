"""The report of a live experiment: one builder, one typed value, for HTTP, CLI and MLflow.

:func:`build_live_report` reads an experiment's database once and returns a
:class:`LiveReport`; ``GET /v1/experiments/{key}/report`` answers with it, ``engage report``
prints it (``--json``: :meth:`~experiments.analysis.model.ReportModel.to_json`) and
:func:`experiments.analysis.tracking.log_reporting_run` logs it, so the three agree by
construction. It holds:

- the counts of decisions, outcomes and rewards;
- at its top, the split's sample-ratio check and the guardrails, and whether the experiment
  stopped itself, why and when (:mod:`experiments.analysis.guardrails`);
- per group (treatment, holdout) the count, mean and variance of the reward;
- the lift of the reward, treatment over holdout (:class:`~experiments.analysis.lift.LiftRow`),
  and beside it the lift adjusted on the spec's pre-period covariates
  (:mod:`experiments.analysis.covariates`);
- per reporting period (by decision date) the period's mean rewards and the lift so far;
- off-policy estimates of the current policy on the logged, rewarded decisions;
- for an experiment with strategies, each strategy's epoch KPI against the holdout's
  (:mod:`experiments.analysis.strategies`).
- for a surrogate reward, the reward beside the matured KPI of the same decisions
  (:mod:`experiments.analysis.surrogate`);
- under safe promotion, the verdict on each learned snapshot
  (:mod:`experiments.analysis.promotions`).

Every statistic comes from the reward values themselves (two-pass moments, merged across periods
with Chan et al.'s update in :class:`bandit.lift.RunningMoments`), not from stored sums of
squares: ``Σx² - n·mean²`` cancels catastrophically when the mean is large against the spread,
and the periods and off-policy estimates need the rows anyway. The cost is one read of every
reward per report, O(rewards) time and memory; the off-policy part is capped at ``max_rows``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from bandit.lift import RunningMoments, welch_lift, welch_lift_from_moments
from bandit.ope import estimate_all
from experiments.analysis.covariates import adjusted_reward_lift
from experiments.analysis.guardrails import GuardrailChecks, checks_markdown, guardrail_checks
from experiments.analysis.lift import LiftRow, lift_table_markdown, significant
from experiments.analysis.model import Number, ReportModel
from experiments.analysis.promotions import PromotionRecord, promotion_lines, read_promotions
from experiments.analysis.strategies import (
    StrategyReport,
    strategy_report,
    strategy_table_markdown,
)
from experiments.analysis.surrogate import SurrogateCheck, surrogate_check, surrogate_markdown
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store.aggregates import experiment_counts
from experiments.store.database import Database
from experiments.store.experiments import require_experiment
from experiments.store.promotions import serving_snapshot
from experiments.store.rewards import LearningRow, reward_rows
from experiments.store.snapshots import unpack_state
from experiments.vocabulary import ExperimentStatus, Group

__all__ = [
    "DecisionCounts",
    "GroupSummary",
    "LiveReport",
    "OffPolicyEstimate",
    "OffPolicySummary",
    "OutcomeCounts",
    "PeriodMetrics",
    "RewardCounts",
    "build_live_report",
    "live_report_markdown",
    "off_policy_sample",
    "off_policy_summary",
]

#: The policy label of a live experiment's lift row (an ``engage run`` labels rows by arm).
LIVE = "live"


class DecisionCounts(ReportModel):
    """Decisions in all, by status and by group (every status and group present, 0 if none)."""

    total: int
    by_status: dict[str, int]
    by_group: dict[str, int]


class OutcomeCounts(ReportModel):
    """Outcome events in all and by attribution (attributed, before_decision, late, ...)."""

    total: int
    by_attribution: dict[str, int]


class RewardCounts(ReportModel):
    """Rewards in all, already learned into a snapshot, and not yet."""

    total: int
    learned: int
    unlearned: int


class GroupSummary(ReportModel):
    """Count, mean and sample variance of the reward in one group (None below 1 and 2 rewards)."""

    group: Group
    n: int
    mean: Number
    variance: Number

    @classmethod
    def of(cls, group: Group, moments: RunningMoments) -> GroupSummary:
        count = int(moments.count)
        return cls(
            group=group,
            n=count,
            mean=float(moments.mean) if count else None,
            variance=float(moments.variance),
        )


class PeriodMetrics(ReportModel):
    """Rewards of the decisions made in one period, and the lift of all periods up to it.

    ``lift`` is the difference of mean rewards so far with Welch's interval ``lift_low,
    lift_high``, and ``relative_lift`` its relative form; all None until both groups hold two
    rewards.
    """

    period: int
    rewards: int
    mean_reward_treatment: Number
    mean_reward_holdout: Number
    lift: Number = None
    lift_low: Number = None
    lift_high: Number = None
    relative_lift: Number = None


class OffPolicyEstimate(ReportModel):
    """One estimator's value of the current policy (as :class:`bandit.ope.Estimate`)."""

    estimator: str
    value: Number
    stderr: Number
    ci_low: Number
    ci_high: Number
    n: int
    confidence: float
    ess: Number = None
    max_weight: Number = None


class OffPolicySummary(ReportModel):
    """IPS, SNIPS, DM, DR of the current policy beside the measured means of what was served.

    ``rows`` logged rewards were used; ``sampled`` says they are a seeded uniform sample.
    """

    estimates: dict[str, OffPolicyEstimate]
    measured_treatment: Number
    measured_holdout: Number
    rows: int
    sampled: bool


class LiveReport(ReportModel):
    """The report of a live experiment, from its database (see the module docstring).

    ``kpi`` is the reward definition (``kind:event``); ``policy_version`` the snapshot that
    serves (the newest published, unless safe promotion held it back; 0 before the first);
    ``periods`` are ``period_days`` long, counted from the first rewarded decision.
    """

    experiment: str
    status: ExperimentStatus
    policy_version: int
    kpi: str
    decisions: DecisionCounts
    outcomes: OutcomeCounts
    rewards: RewardCounts
    groups: tuple[GroupSummary, ...]
    lift: LiftRow | None
    period_days: int
    periods: tuple[PeriodMetrics, ...]
    off_policy: OffPolicySummary | None
    #: Lift per strategy (experiments with ``[strategies]``; None otherwise).
    strategies: StrategyReport | None = None
    surrogate: SurrogateCheck | None = None
    #: Safe promotion's newest verdicts, newest first (empty without ``[promotion]``).
    promotions: tuple[PromotionRecord, ...] = ()
    #: The split's sample-ratio check and the guardrails (:mod:`experiments.analysis.guardrails`).
    checks: GuardrailChecks | None = None
    #: Why and when the experiment stopped itself (None unless it did and is not resumed).
    stop_reason: str | None = None
    stopped_at: datetime | None = None
    resumed_at: datetime | None = None


def build_live_report(database: Database, key: str, *, period_days: int = 1) -> LiveReport:
    """The report of experiment ``key``; the store's ``NotFoundError`` when there is none."""
    if period_days < 1:
        raise ValueError(f"period_days must be at least 1; got {period_days}")
    with database.session() as session:
        experiment = require_experiment(session, key=key)
        spec = parse_spec(experiment.spec)
        counts = experiment_counts(session, experiment_key=key)
        rows = reward_rows(session, experiment_key=key)
        snapshot = serving_snapshot(session, experiment_key=key)
        status = experiment.status
        version = snapshot.version if snapshot is not None else 0
        state = unpack_state(snapshot.state) if snapshot is not None else None
        strategy_set = spec.strategy_set()
        strategies = (
            None
            if strategy_set is None
            else strategy_report(session, experiment_key=key, strategies=strategy_set)
        )
        surrogate = surrogate_check(session, spec, rows, policy=LIVE)
        checks = guardrail_checks(session, spec, key=key, since=experiment.resumed_at)
        stop = {
            "stop_reason": experiment.stop_reason,
            "stopped_at": experiment.stopped_at,
            "resumed_at": experiment.resumed_at,
        }
    values = np.array([row.value for row in rows], dtype=np.float64)
    holdout = np.array([row.group == Group.HOLDOUT for row in rows], dtype=bool)
    treatment_values, holdout_values = values[~holdout], values[holdout]
    kpi = spec.reward.label
    lift = None
    if treatment_values.size >= 2 and holdout_values.size >= 2:
        lift = LiftRow.from_lift(kpi, LIVE, welch_lift(treatment_values, holdout_values))
        lift = adjusted_reward_lift(spec, lift, rows, values, holdout)
    return LiveReport.model_validate(
        {
            "experiment": key,
            "status": status,
            "policy_version": version,
            "kpi": kpi,
            **counts,
            "groups": (
                GroupSummary.of(Group.TREATMENT, RunningMoments.from_values(treatment_values)),
                GroupSummary.of(Group.HOLDOUT, RunningMoments.from_values(holdout_values)),
            ),
            "lift": lift,
            "period_days": period_days,
            "periods": _periods(rows, values, holdout, period_days),
            "off_policy": off_policy_summary(spec, rows, state),
            "strategies": strategies,
            "surrogate": surrogate,
            "promotions": read_promotions(database, key),
            "checks": checks,
            **stop,
        }
    )


def _periods(
    rows: Sequence[LearningRow],
    values: np.ndarray,
    holdout: np.ndarray,
    period_days: int,
) -> list[PeriodMetrics]:
    """Per period of ``period_days`` (by decision date): its mean rewards and the lift so far.

    Each period's moments are merged into the running ones (Chan et al.), so the lift so far
    costs one pass over the rewards whatever the number of periods.
    """
    if not rows:
        return []
    start = min(row.created_at for row in rows)
    period = np.array([(row.created_at - start).days // period_days for row in rows])
    treatment_so_far = holdout_so_far = RunningMoments.empty()
    periods = []
    for index in range(int(period.max()) + 1):
        now = period == index
        treatment = RunningMoments.from_values(values[now & ~holdout])
        control = RunningMoments.from_values(values[now & holdout])
        treatment_so_far = treatment_so_far.merge(treatment)
        holdout_so_far = holdout_so_far.merge(control)
        lift = {}
        if treatment_so_far.count >= 2 and holdout_so_far.count >= 2:
            cumulative = welch_lift_from_moments(treatment_so_far, holdout_so_far)
            lift = {
                "lift": cumulative.difference,
                "lift_low": cumulative.diff_ci[0],
                "lift_high": cumulative.diff_ci[1],
                "relative_lift": cumulative.relative_lift,
            }
        periods.append(
            PeriodMetrics(
                period=index,
                rewards=int(now.sum()),
                mean_reward_treatment=_mean(treatment),
                mean_reward_holdout=_mean(control),
                **lift,
            )
        )
    return periods


def _mean(moments: RunningMoments) -> float | None:
    return float(moments.mean) if moments.count else None


#: Rows the off-policy estimators take at most (they hold ``rows x actions`` matrices).
OFF_POLICY_MAX_ROWS = 20_000


def off_policy_sample(
    n_rows: int, *, seed: int = 0, max_rows: int = OFF_POLICY_MAX_ROWS
) -> np.ndarray | None:
    """Positions ``(max_rows,)``, ascending, of the seeded uniform sample of a log of
    ``n_rows`` rows that :func:`off_policy_summary` estimates on; None when it takes them all.

    A caller holding only the log's ids picks the sample with it and reads just those rows.
    """
    if n_rows <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_rows, max_rows, replace=False))


def off_policy_summary(
    spec: ExperimentSpec,
    rows: Sequence[LearningRow],
    state: Mapping[str, np.ndarray] | None,
    *,
    seed: int = 0,
    max_rows: int = OFF_POLICY_MAX_ROWS,
    sampled: bool = False,
) -> OffPolicySummary | None:
    """IPS/SNIPS/DM/DR of the policy in ``state`` on logged, rewarded decisions (None below 2).

    Sits next to the measured treatment and holdout means of the same rewards, so a reader
    can see whether the current policy is expected to do better than what was served.
    Longer logs are estimated on a seeded uniform sample of ``max_rows`` rows
    (:func:`off_policy_sample`; the estimates stay unbiased, the intervals widen).
    ``sampled``: ``rows`` already are that sample of a longer log.
    """
    if len(rows) < 2:
        return None
    keep = off_policy_sample(len(rows), seed=seed, max_rows=max_rows)
    if keep is not None:
        rows = [rows[index] for index in keep]
    sampled = sampled or keep is not None
    policy = spec.build_policy(seed=seed)
    if state is not None:
        policy.set_state(state)
    X = spec.encode_logged([row.context for row in rows])
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
    return OffPolicySummary(
        estimates={
            name: OffPolicyEstimate.model_validate(estimate, from_attributes=True)
            for name, estimate in report.estimates().items()
        },
        measured_treatment=rewards[~holdout].mean() if (~holdout).any() else None,
        measured_holdout=rewards[holdout].mean() if holdout.any() else None,
        rows=len(rows),
        sampled=sampled,
    )


def live_report_markdown(report: LiveReport) -> str:
    """The report as markdown (MLflow's ``report.md``)."""
    lines = [
        f"# engage report: {report.experiment}",
        "",
        f"Status {report.status}; policy version {report.policy_version}; reward {report.kpi}.",
        "",
    ]
    if report.stop_reason is not None and report.stopped_at is not None:
        lines += [
            f"**Stopped itself at {report.stopped_at.isoformat()}, serving control only: "
            f"{report.stop_reason}.**",
            "",
        ]
    elif report.resumed_at is not None:
        lines += [f"Resumed by an admin at {report.resumed_at.isoformat()}.", ""]
    if report.checks is not None:
        lines += [checks_markdown(report.checks), ""]
    lines += [
        lift_table_markdown([report.lift]) if report.lift else "Not enough rewards for lift.",
    ]
    if report.surrogate is not None:
        lines += ["", surrogate_markdown(report.surrogate)]
    if report.off_policy is not None:
        lines += ["", "| estimator | value | 95% CI |", "|---|---:|---|"]
        for name, estimate in report.off_policy.estimates.items():
            lines.append(
                f"| {name} | {significant(estimate.value)} "
                f"| [{significant(estimate.ci_low)}, {significant(estimate.ci_high)}] |"
            )
    if report.strategies is not None:
        lines += ["", strategy_table_markdown(report.strategies)]
    if report.promotions:
        lines += ["", "Safe promotion, newest first:", ""]
        lines += [f"- {line}" for line in promotion_lines(report.promotions)]
    return "\n".join(lines) + "\n"
