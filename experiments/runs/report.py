"""What an ``engage run`` reports: the comparison tables, the lift report, figures, MLflow.

The report answers, with the simulation's own numbers and their intervals: how do the
engagement policy (rewarded on revenue or retention over a window) and the interaction policy
(rewarded on immediate clicks) differ on revenue and retention over the same treated customers
(:mod:`experiments.runs.comparison`), what share of the oracle edge does each arm capture
(``share = (arm - interaction arm) / (revenue oracle - click oracle)``, same seed), and how
does each arm do against the randomized holdout the arms share? A difference whose 95%
interval contains 0 is reported as "no detectable difference", never as one arm beating
another; an arm without decisions, or a KPI whose groups are too small, is shown with the
reason.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.analysis.lift import NO_DIFFERENCE, LiftRow, lift_table_markdown, significant
from experiments.analysis.mlflow_view import lift_metrics
from experiments.analysis.model import Number, ReportModel
from experiments.analysis.report import OffPolicySummary
from experiments.analysis.strategies import strategy_table_markdown
from experiments.runs.arms import STRATEGY_ARM
from experiments.runs.comparison import KPIS, REFERENCE, ArmComparison, comparison_of
from experiments.runs.notes import gate_note, history_note
from experiments.runs.simulation import ArmResult, RunOptions, RunResult
from experiments.runs.strategies import log_strategy_arm, strategy_params

if TYPE_CHECKING:
    from experiments.analysis.tracking import Tracker

__all__ = [
    "INTERVAL_NOTE",
    "SHARE_DEFINITION",
    "ArmSummary",
    "all_lift_rows",
    "approach_arm",
    "arm_summary",
    "comparison_markdown",
    "comparison_metrics",
    "render_markdown",
    "result_json",
    "track_run",
    "verdict",
]

#: How the share of the oracle edge is defined, as every output states it.
SHARE_DEFINITION = (
    "share of the oracle edge = (arm - interaction arm) / (revenue oracle - click oracle), "
    "same seed, same treated customers"
)

#: What the paired intervals cover, as every output states it.
INTERVAL_NOTE = (
    "paired intervals take the treated customers as the units, given the policies this run "
    "learned; a learner's own randomness (its path through exploration) is not in them, so "
    "compare runs with other seeds before generalising"
)


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
    #: Decisions replayed from the burn-in's log before day 0 (``learn_from_burn_in``).
    history_decisions: int = 0
    #: A gated arm's first day of choosing by the lifetime value (None: never, or no gate).
    gate_opened_day: int | None = None
    note: str | None = None


def arm_summary(arm: ArmResult) -> ArmSummary:
    """The comparison row of one arm (``click_through`` is None without contacts; ``note``
    says why an arm made no decisions)."""
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
        history_decisions=arm.history_decisions,
        gate_opened_day=arm.gate_opened_day,
        note=(
            gate_note(arm)
            if arm.decisions
            else "no decisions: every visit was suppressed by the contact rules, or none came"
        ),
    )


def all_lift_rows(result: RunResult) -> list[LiftRow]:
    """Every arm's KPI lift rows, arm by arm."""
    return [row for arm in result.arms for row in arm.lifts]


def approach_arm(result: RunResult) -> str | None:
    """The arm the closing sentence speaks for: the strategy arm when it ran (the default
    engagement approach of a spec with strategies), else the engagement arm, else None."""
    names = {arm.arm for arm in result.arms}
    for arm in (STRATEGY_ARM, "engagement"):
        if arm in names:
            return arm
    return None


def verdict(result: RunResult) -> str:
    """A sentence on the engagement approach (:func:`approach_arm`) versus interaction: what
    each KPI's paired 95% interval supports, and the share of the oracle edge, from the
    numbers (whatever they say)."""
    names = {arm.arm for arm in result.arms}
    arm = approach_arm(result)
    if arm is None or REFERENCE not in names:
        return "Run both the interaction and the engagement arms to compare them."
    parts = []
    for kpi, label in KPIS.items():
        row = comparison_of(result.comparisons, arm, kpi)
        if row is None:
            continue
        parts.append(f"on {label} {_sentence(row)}")
    return (
        "In this simulation, "
        + "; ".join(parts)
        + ". The intervals hold each learner's own path fixed: runs with other seeds can "
        "land further apart."
    )


def _sentence(row: ArmComparison) -> str:
    """One KPI of the closing sentence: the difference, its interval and what it supports."""
    arm = row.arm
    if row.difference is None or row.low is None or row.high is None:
        return f"{arm} and interaction cannot be compared ({row.note})"
    digits = "+.4f" if row.kpi == "retention" else "+.3f"
    supports = {
        NO_DIFFERENCE: f"no detectable difference between the {arm} and the interaction policy",
        f"{arm} higher": f"the {arm} policy is higher than the interaction policy",
        f"{arm} lower": f"the {arm} policy is lower than the interaction policy",
    }.get(row.reading, row.reading)
    text = (
        f"{arm} minus interaction is {row.difference:{digits}} "
        f"[{row.low:{digits}}, {row.high:{digits}}] (95%, paired over {row.n:,} treated "
        f"customers): {supports}"
    )
    if row.share is not None and row.share_low is not None and row.share_high is not None:
        text += (
            f", {_percent(row.share)} [{_percent(row.share_low)}, {_percent(row.share_high)}] "
            f"of the oracle edge ({row.oracle_edge:{digits}})"
        )
    return text


def _percent(value: float) -> str:
    return f"{100 * value:+.0f}%"


def comparison_markdown(result: RunResult) -> list[str]:
    """The oracles and the arms against the interaction arm, as markdown lines."""
    lines: list[str] = []
    oracles = result.oracles
    treated = int(result.treated.sum())
    if oracles is not None:
        lines += [
            f"## Oracles (the simulator's truth, the spec's contact rules; {treated:,} treated "
            "customers)",
            "",
            "| oracle | maximises | revenue/customer | retention |",
            "|---|---|---:|---:|",
            f"| click | click | {oracles.click['revenue']:.3f} "
            f"| {oracles.click['retention']:.4f} |",
            f"| revenue | {oracles.revenue_objective} | {oracles.revenue['revenue']:.3f} "
            f"| {oracles.revenue['retention']:.4f} |",
            f"| edge (95% CI) | | {oracles.edge('revenue'):+.3f} "
            f"[{oracles.edge_low['revenue']:+.3f}, {oracles.edge_high['revenue']:+.3f}] "
            f"| {oracles.edge('retention'):+.4f} "
            f"[{oracles.edge_low['retention']:+.4f}, {oracles.edge_high['retention']:+.4f}] |",
            "",
        ]
    if result.comparisons:
        lines += [
            f"## Arms against the interaction arm (paired over the same {treated:,} treated "
            "customers)",
            "",
            f"{SHARE_DEFINITION[:1].upper()}{SHARE_DEFINITION[1:]}. "
            f"{INTERVAL_NOTE[:1].upper()}{INTERVAL_NOTE[1:]}.",
            "",
            "| arm | KPI | arm | interaction | difference | 95% CI | reading "
            "| share of edge | 95% CI | note |",
            "|---|---|---:|---:|---:|---|---|---:|---|---|",
        ]
        for row in result.comparisons:
            lines.append(
                f"| {row.arm} | {row.kpi} | {significant(row.mean_arm)} "
                f"| {significant(row.mean_reference)} | {_signed(row.difference)} "
                f"| [{_signed(row.low)}, {_signed(row.high)}] | {row.reading} "
                f"| {_share(row.share)} | [{_share(row.share_low)}, {_share(row.share_high)}] "
                f"| {row.note or ''} |"
            )
        lines.append("")
    return lines


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4g}"


def _policy_seed_note(options: RunOptions, separator: str = ", policy seed ") -> str:
    """The learners' own seed where it is not the world's, else nothing."""
    if options.policy_seed is None or options.policy_seed == options.seed:
        return ""
    return f"{separator}{options.policy_seed}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def render_markdown(result: RunResult) -> str:
    """The lift report as markdown (logged to MLflow as ``report.md``)."""
    options = result.options
    lines = [
        f"# engage run: {result.spec.key}",
        "",
        f"{options.customers:,} simulated customers over {options.days} days, seed "
        f"{options.seed}{_policy_seed_note(options)}; "
        f"fatigue {'on' if options.fatigue else 'off'}, nurturing "
        f"{'on' if options.nurturing else 'off'}, drift {'on' if options.drift else 'off'}; "
        f"burn-in {result.spec.simulation.burn_in_days} days{history_note(result)}.",
        "",
        verdict(result),
        "",
        *comparison_markdown(result),
        "## Policies side by side (treatment groups)",
        "",
        "| arm | policy | reward | revenue/customer | retention | contacts/customer | CTR "
        "| regret | snapshots | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for arm in result.arms:
        row = arm_summary(arm)
        lines.append(
            f"| {row.arm} | {row.policy} | {row.reward} "
            f"| {_fixed(row.revenue_per_customer, 3)} | {_fixed(row.retention, 4)} "
            f"| {_fixed(row.contacts_per_customer, 2)} | {_fixed(row.click_through, 3)} "
            f"| {_fixed(row.regret, 1)} | {row.policy_version} | {row.note or ''} |"
        )
    lines += ["", "## Lift against the randomized holdout (shared by every arm)", ""]
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
        "treated_customers": int(result.treated.sum()),
        "burn_in_days": result.spec.simulation.burn_in_days,
        "learn_from_burn_in": result.spec.simulation.learn_from_burn_in,
        "oracles": _oracles_json(result),
        "share_definition": SHARE_DEFINITION,
        "interval_note": INTERVAL_NOTE,
        "comparisons": [row.to_json() for row in result.comparisons],
        "arms": [arm_summary(arm).to_json() for arm in result.arms],
        "lift": [row.to_json() for row in all_lift_rows(result)],
        "off_policy": {
            arm.arm: arm.off_policy.to_json() if arm.off_policy else None for arm in result.arms
        },
        "strategies": {
            arm.arm: arm.strategies.to_json() for arm in result.arms if arm.strategies is not None
        },
    }


def _oracles_json(result: RunResult) -> dict[str, Any] | None:
    oracles = result.oracles
    if oracles is None:
        return None
    return {
        "click": dict(oracles.click),
        "revenue": dict(oracles.revenue),
        "revenue_objective": oracles.revenue_objective,
        "edge": {kpi: oracles.edge(kpi) for kpi in KPIS},
        "edge_low": dict(oracles.edge_low),
        "edge_high": dict(oracles.edge_high),
        "seconds": oracles.seconds,
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
        "policy_seed": options.learner_seed,
        "arms": ",".join(options.arms),
        "fatigue": options.fatigue,
        "nurturing": options.nurturing,
        "drift": options.drift,
        "git_commit": git_commit() or "unknown",
    }
    with Tracker(
        result.spec.key,
        run_name=f"run seed={options.seed}{_policy_seed_note(options, ' policy_seed=')} "
        f"n={options.customers} days={options.days}",
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
                # Before the daily metrics: MLflow's compare view opens on the metric a run
                # logged first (the order its store returns them in), so on the KPI's lift.
                child.log_metrics(lift_metrics(arm.lifts, per_arm=False), step=options.days)
                _log_daily(child, arm)
                if arm.strategies is not None and arm.strategy_allocation is not None:
                    log_strategy_arm(
                        child, arm.strategies, arm.strategy_allocation, arm.strategy_labels
                    )
                child.describe(lift_table_markdown(arm.lifts) + "\n")
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
        rows = all_lift_rows(result)
        kpis = list(dict.fromkeys(row.kpi for row in rows))  # the experiment's own KPI first
        lifts = lift_metrics(sorted(rows, key=lambda row: kpis.index(row.kpi)))
        tracker.log_metrics({**lifts, **comparison_metrics(result)}, step=0)
        tracker.share_view(name for name, value in lifts.items() if value is not None)
        tracker.describe(f"{verdict(result)}\n\n{lift_table_markdown(rows)}\n")
        tracker.log_text(spec_text, "spec.toml")
        tracker.log_text(render_markdown(result), "report.md")
        tracker.log_dict(result_json(result), "report.json")
        _log_figures(tracker, result)
        return tracker.parent_run_id


def _log_figures(tracker: Tracker, result: RunResult) -> None:
    """The parent's figures: curves on a shared axis in one unit each (the experiment's
    reward, revenue booked), each arm's regret in its own reward in a panel of its own, and
    the lift intervals."""
    from experiments.analysis import plots

    kpi = result.spec.reward.label
    for metric, label in (
        ("kpi_expected_reward", f"cumulative expected reward ({kpi}, the experiment's)"),
        ("kpi_regret", f"cumulative regret ({kpi}, the experiment's reward)"),
        ("revenue", "cumulative revenue booked"),
    ):
        tracker.log_figure(
            plots.cumulative_curves(
                {arm.arm: np.array(arm.daily[metric]) for arm in result.arms},
                title=label,
                ylabel=label.split(" (")[0],
            ),
            f"{metric.removeprefix('kpi_')}.png",
        )
    tracker.log_figure(
        plots.cumulative_panels(
            {arm.arm: np.array(arm.daily["regret"]) for arm in result.arms},
            title="cumulative regret, each arm in its own reward",
            ylabels={arm.arm: f"regret ({arm.reward})" for arm in result.arms},
        ),
        "own_regret.png",
    )
    tracker.log_figure(
        plots.lift_intervals(all_lift_rows(result), title="Lift vs holdout (95% CI)"),
        "lift.png",
    )


def comparison_metrics(result: RunResult) -> dict[str, float | None]:
    """The parent run's metrics: the oracles, and per arm and KPI the difference from the
    interaction arm with its interval and the share of the oracle edge."""
    metrics: dict[str, float | None] = {}
    if result.oracles is not None:
        for kpi in KPIS:
            metrics[f"oracle_click_{kpi}"] = result.oracles.click[kpi]
            metrics[f"oracle_revenue_{kpi}"] = result.oracles.revenue[kpi]
            metrics[f"oracle_edge_{kpi}"] = result.oracles.edge(kpi)
            metrics[f"oracle_edge_{kpi}_low"] = result.oracles.edge_low.get(kpi)
            metrics[f"oracle_edge_{kpi}_high"] = result.oracles.edge_high.get(kpi)
    for row in result.comparisons:
        if row.arm == row.reference:
            continue
        stem = f"{row.arm}_minus_{row.reference}_{row.kpi}"
        metrics[stem] = row.difference
        metrics[f"{stem}_low"] = row.low
        metrics[f"{stem}_high"] = row.high
        metrics[f"{row.arm}_share_of_edge_{row.kpi}"] = row.share
        metrics[f"{row.arm}_share_of_edge_{row.kpi}_low"] = row.share_low
        metrics[f"{row.arm}_share_of_edge_{row.kpi}_high"] = row.share_high
    return metrics


def _log_daily(child: Any, arm: ArmResult) -> None:
    """Stepwise metrics (step = simulated day), cumulative ones included."""
    cumulative: dict[str, float] = {}
    days = len(arm.daily.get("contacts", []))
    for day in range(days):
        metrics = {name: values[day] for name, values in arm.daily.items() if day < len(values)}
        for name in (
            "expected_reward",
            "regret",
            "kpi_expected_reward",
            "kpi_regret",
            "revenue",
            "clicks",
        ):
            cumulative[name] = cumulative.get(name, 0.0) + metrics.get(name, 0.0)
            metrics[f"cumulative_{name}"] = cumulative[name]
        child.log_metrics(metrics, step=day)
