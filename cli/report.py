"""``engage report``: the report of a live experiment, logged to MLflow as a report run."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.checks import print_checks
from cli.common import (
    DatabaseUrl,
    JsonFlag,
    checked_database,
    console,
    print_json,
    readable_errors,
    shown,
)
from cli.render import lift_tables, strategy_table


def report(
    experiment: Annotated[str, typer.Argument(help="Experiment key.")],
    period_days: Annotated[int, typer.Option(min=1, help="Days per reporting period.")] = 1,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log to MLflow.")] = True,
    url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the lift of a live experiment against its holdout and log a reporting run.

    --json prints the report as GET /v1/experiments/{key}/report answers it, plus the
    MLflow run id. Example: engage report promo --period-days 7
    """
    from experiments.analysis.report import build_live_report

    with readable_errors():
        database = checked_database(url)
        live = build_live_report(database, experiment, period_days=period_days)
    run_id = None
    if track:
        from experiments.analysis.tracking import log_reporting_run

        with readable_errors():
            run_id = log_reporting_run(
                live, params={"experiment": experiment, "period_days": period_days}
            )
    if as_json:
        print_json({**live.to_json(), "mlflow_run_id": run_id})
        return
    print_checks(live)
    if live.lift is not None:
        for table in lift_tables(
            f"{experiment}: lift vs holdout (policy v{live.policy_version})", [(None, live.lift)]
        ):
            console.print(table)
    else:
        console.print("not enough rewards yet in both groups to measure lift")
    if live.strategies is not None:
        console.print(
            strategy_table(
                f"{experiment}: epoch KPI {live.strategies.kpi} by strategy vs holdout "
                f"(strategy policy v{live.strategies.policy_version})",
                live.strategies,
            )
        )
    console.print(
        f"decisions {live.decisions.total}, outcomes {live.outcomes.total}, "
        f"rewards {live.rewards.total}"
    )
    if live.surrogate is not None:
        from experiments.analysis.surrogate import surrogate_markdown

        console.print(surrogate_markdown(live.surrogate), markup=False)
    if live.promotions:
        from experiments.analysis.promotions import promotion_lines

        console.print("safe promotion, newest first:")
        for line in promotion_lines(live.promotions):
            console.print(shown(line))
    if run_id:
        console.print(f"logged to MLflow as run {run_id}; open it with: engage ui")
