"""The top of ``engage report``: whether the experiment stopped itself, the split's
sample-ratio check, and a guardrail table narrow enough for 80 columns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from cli.common import console, shown
from cli.render import fixed

if TYPE_CHECKING:
    from experiments.analysis.report import LiveReport


def print_checks(live: LiveReport) -> None:
    """Print the stop, the split and the guardrails of ``live`` (in that order)."""
    if live.stop_reason is not None and live.stopped_at is not None:
        console.print(
            shown(
                f"STOPPED ITSELF at {live.stopped_at.isoformat()}, serving control only: "
                f"{live.stop_reason}. Resume: engage experiments resume {live.experiment}"
            ),
            style="bold red",
        )
    elif live.resumed_at is not None:
        console.print(shown(f"Resumed by an admin at {live.resumed_at.isoformat()}."))
    checks = live.checks
    if checks is None:
        return
    ratio = checks.sample_ratio
    if ratio is None:
        console.print("split: no holdout, nothing to check")
    elif ratio.mismatch:
        console.print(shown(f"SPLIT: {ratio.reason}"), style="bold red")
    else:
        console.print(
            f"split: {ratio.holdout}/{ratio.treatment + ratio.holdout} customers in the holdout,"
            f" expected {100 * ratio.expected_holdout_share:.1f}% (p = {ratio.p_value:.2g}):"
            " no sample-ratio mismatch"
        )
    if not checks.guardrails:
        return
    confidence = f"{100 * checks.guardrails[0].confidence:g}%"
    table = Table(title=f"guardrails (difference T - H, {confidence} always-valid)")
    for column in ("guardrail", "T", "H", "difference", "margin", "status"):
        table.add_column(column, justify="left" if column in ("guardrail", "status") else "right")
    for row in checks.guardrails:
        status = f"{row.status.value} ({row.action})"
        table.add_row(
            shown(row.kpi),
            fixed(row.mean_treatment, ".3g"),
            fixed(row.mean_holdout, ".3g"),
            f"{fixed(row.difference, '+.3g')} [{fixed(row.av_low, '+.3g')}, "
            f"{fixed(row.av_high, '+.3g')}]",
            ("-" if row.direction == "higher" else "+") + fixed(row.margin, ".3g"),
            shown(status),
        )
    console.print(table)
