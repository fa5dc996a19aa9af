"""What an ``engage run`` reports: the comparison table, the lift report, figures, MLflow.

The report answers, with the simulation's own numbers: does the engagement policy (rewarded on
revenue or retention over a window) beat the interaction policy (rewarded on immediate clicks)
on revenue and retention, and how does each arm do against its own randomized holdout?
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np

from experiments.analysis.lift import LiftRow, lift_table_markdown, significant
from experiments.analysis.model import Number, ReportModel
from experiments.analysis.report import OffPolicySummary
from experiments.analysis.strategies import strategy_table_markdown
from experiments.runs.simulation import ArmResult, RunResult
from experiments.runs.strategies import log_strategy_arm, strategy_params

__all__ = [
    "ArmSummary",
    "all_lift_rows",
    "arm_summary",
    "render_markdown",
    "result_json",
    "track_run",
    "verdict",
]


class ArmSummary(ReportModel):
    """One row of the comparison: per-customer KPIs of the treatment group, clicks, regret."""

    arm: str
    policy: str
    reward: str
    revenue_per_customer: Number
    retention: Number
    contacts_per_customer: Number
    click_through: Number
    regret: Number
    decisions: int
    policy_version: int


def arm_summary(arm: ArmResult) -> ArmSummary:
    """The comparison row of one arm (``click_through`` is None without contacts)."""
    contacts = sum(arm.daily.get("contacts", []))
    clicks = sum(arm.daily.get("clicks", []))
    return ArmSummary(
        arm=arm.arm,
        policy=arm.policy,
        reward=arm.reward,
        revenue_per_customer=arm.kpis["revenue"]["treatment"],
        retention=arm.kpis["retention"]["treatment"],
        contacts_per_customer=arm.kpis["contacts"]["treatment"],
        click_through=clicks / contacts if contacts else None,
        regret=sum(arm.daily.get("regret", [])),
        decisions=arm.decisions,
        policy_version=arm.policy_version,
    )


def all_lift_rows(result: RunResult) -> list[LiftRow]:
    """Every arm's KPI lift rows, arm by arm."""
    return [row for arm in result.arms for row in arm.lifts]


def verdict(result: RunResult) -> str:
    """A sentence on engagement versus interaction, from the numbers (whatever they say)."""
    by_arm = {arm.arm: arm for arm in result.arms}
    if "engagement" not in by_arm or "interaction" not in by_arm:
        return "Run both the interaction and the engagement arms to compare them."
    engagement, interaction = by_arm["engagement"], by_arm["interaction"]
    parts = []
    for kpi, label in (("revenue", "revenue per customer"), ("retention", "retention")):
        ours = engagement.kpis[kpi]["treatment"]
        theirs = interaction.kpis[kpi]["treatment"]
        change = (ours - theirs) / abs(theirs) if theirs else math.nan
        word = "beats" if ours > theirs else "does not beat"
        parts.append(
            f"on {label} the engagement policy {word} the interaction policy "
            f"({ours:.4g} vs {theirs:.4g}, {100 * change:+.1f}%)"
        )
    return "In this simulation, " + "; ".join(parts) + "."


def render_markdown(result: RunResult) -> str:
    """The lift report as markdown (logged to MLflow as ``report.md``)."""
    options = result.options
    lines = [
        f"# engage run: {result.spec.key}",
        "",
        f"{options.customers:,} simulated customers over {options.days} days, seed "
        f"{options.seed}; fatigue {'on' if options.fatigue else 'off'}, nurturing "
        f"{'on' if options.nurturing else 'off'}, drift {'on' if options.drift else 'off'}.",
        "",
        verdict(result),
        "",
        "## Policies side by side (treatment groups)",
        "",
        "| arm | policy | reward | revenue/customer | retention | contacts/customer | CTR "
        "| regret | snapshots |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for arm in result.arms:
        row = arm_summary(arm)
        lines.append(
            f"| {row.arm} | {row.policy} | {row.reward} "
            f"| {_fixed(row.revenue_per_customer, 3)} | {_fixed(row.retention, 4)} "
            f"| {_fixed(row.contacts_per_customer, 2)} | {_fixed(row.click_through, 3)} "
            f"| {_fixed(row.regret, 1)} | {row.policy_version} |"
        )
    lines += ["", "## Lift against each arm's randomized holdout", ""]
    lines.append(lift_table_markdown(all_lift_rows(result)))
    for arm in result.arms:
        if arm.strategies is not None:
            lines += ["", f"## Strategies of the {arm.arm} arm (epoch KPI vs holdout)", ""]
            lines.append(strategy_table_markdown(arm.strategies))
    lines += ["", "## Off-policy estimates of each final policy (from its logged decisions)", ""]
    lines.append("| arm | IPS | SNIPS | DR | measured treatment | measured holdout |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for arm in result.arms:
        summary = arm.off_policy
        lines.append(
            f"| {arm.arm} | {_estimate(summary, 'ips')} | {_estimate(summary, 'snips')} "
            f"| {_estimate(summary, 'dr')} "
            f"| {significant(summary.measured_treatment if summary else None)} "
            f"| {significant(summary.measured_holdout if summary else None)} |"
        )
    return "\n".join(lines) + "\n"


def result_json(result: RunResult) -> dict[str, Any]:
    """Machine-readable report (``report.json`` and ``engage run --json``)."""
    return {
        "experiment": result.spec.key,
        "options": asdict(result.options),
        "verdict": verdict(result),
        "arms": [arm_summary(arm).to_json() for arm in result.arms],
        "lift": [row.to_json() for row in all_lift_rows(result)],
        "off_policy": {
            arm.arm: arm.off_policy.to_json() if arm.off_policy else None for arm in result.arms
        },
        "strategies": {
            arm.arm: arm.strategies.to_json() for arm in result.arms if arm.strategies is not None
        },
    }


def _fixed(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _estimate(summary: OffPolicySummary | None, name: str) -> str:
    """An estimate and its interval, "n/a" when it was not computed."""
    estimate = summary.estimates.get(name) if summary is not None else None
    if estimate is None or estimate.ci_low is None or estimate.ci_high is None:
        return significant(estimate.value if estimate is not None else None)
    return f"{significant(estimate.value)} [{estimate.ci_low:.3g}, {estimate.ci_high:.3g}]"


def track_run(result: RunResult, spec_text: str) -> str:
    """Log the run to MLflow: a parent run, one nested run per arm; returns the parent id."""
    from experiments.analysis import plots
    from experiments.analysis.tracking import Tracker
    from experiments.analysis.tracking_params import flatten_params
    from experiments.analysis.tracking_store import git_commit

    options = result.options
    params = {
        "spec": result.spec.to_json_dict(),
        "customers": options.customers,
        "days": options.days,
        "seed": options.seed,
        "arms": ",".join(options.arms),
        "fatigue": options.fatigue,
        "nurturing": options.nurturing,
        "drift": options.drift,
        "git_commit": git_commit() or "unknown",
    }
    with Tracker(
        result.spec.key,
        run_name=f"run seed={options.seed} n={options.customers} days={options.days}",
        params=flatten_params(params),
    ) as tracker:
        for arm in result.arms:
            with tracker.child(
                arm.arm,
                params={
                    "policy": arm.policy,
                    "reward": arm.reward,
                    "key": arm.key,
                    **strategy_params(arm.strategies),
                },
            ) as child:
                _log_daily(child, arm)
                if arm.strategies is not None and arm.strategy_allocation is not None:
                    log_strategy_arm(
                        child, arm.strategies, arm.strategy_allocation, arm.strategy_labels
                    )
                child.log_dict(arm_summary(arm).to_json(), "summary.json")
                child.log_dict([row.to_json() for row in arm.lifts], "lift.json")
                if arm.allocation is not None and arm.allocation.size:
                    child.log_figure(
                        plots.allocation_over_time(
                            np.arange(arm.allocation.shape[0]),
                            arm.allocation,
                            list(arm.allocation_labels),
                            title=f"{arm.arm}: share of contacts by {arm.allocation_factor}",
                        ),
                        "allocation.png",
                    )
        tracker.log_text(spec_text, "spec.toml")
        tracker.log_text(render_markdown(result), "report.md")
        tracker.log_dict(result_json(result), "report.json")
        for metric, label in (
            ("expected_reward", "cumulative expected reward"),
            ("regret", "cumulative regret"),
            ("revenue", "cumulative revenue booked"),
        ):
            tracker.log_figure(
                plots.cumulative_curves(
                    {arm.arm: np.array(arm.daily[metric]) for arm in result.arms},
                    title=label,
                    ylabel=label,
                ),
                f"{metric}.png",
            )
        tracker.log_figure(
            plots.lift_intervals(all_lift_rows(result), title="Lift vs holdout (95% CI)"),
            "lift.png",
        )
        return tracker.parent_run_id


def _log_daily(child: Any, arm: ArmResult) -> None:
    """Stepwise metrics (step = simulated day), cumulative ones included."""
    cumulative: dict[str, float] = {}
    days = len(arm.daily.get("contacts", []))
    for day in range(days):
        metrics = {name: values[day] for name, values in arm.daily.items() if day < len(values)}
        for name in ("expected_reward", "regret", "revenue", "clicks"):
            cumulative[name] = cumulative.get(name, 0.0) + metrics.get(name, 0.0)
            metrics[f"cumulative_{name}"] = cumulative[name]
        child.log_metrics(metrics, step=day)
