"""``engage run``: an experiment spec against the simulator, policies side by side."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import JsonFlag, console, fail, print_json, readable_errors
from cli.render import fixed, lift_table, strategy_table

if TYPE_CHECKING:
    from experiments.runs.simulation import RunResult


def run(
    spec_path: Annotated[Path, typer.Argument(help="Experiment spec (TOML).", metavar="SPEC")],
    customers: Annotated[int, typer.Option(min=10, help="Simulated customers.")] = 20_000,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Simulated days.")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the simulated population.")] = 0,
    arms: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated arms: uniform,business_as_usual,interaction,engagement, and "
            "strategy for a spec with [strategies] (default: all of them)."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Keep the run's decisions in this database (default: temporary)."),
    ] = None,
    fatigue: Annotated[bool, typer.Option("--fatigue/--no-fatigue")] = True,
    nurturing: Annotated[bool, typer.Option("--nurturing/--no-nurturing")] = True,
    drift: Annotated[bool, typer.Option("--drift/--no-drift")] = True,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log to MLflow.")] = True,
    jobs: Annotated[
        int, typer.Option(min=1, max=64, help="Arms simulated at once (worker processes).")
    ] = min(2, os.cpu_count() or 1),
    as_json: JsonFlag = False,
) -> None:
    """Run SPEC against the customer simulator and compare policies on revenue and retention.

    Example: engage run examples/engagement.toml --customers 20000 --days 60
    """
    from experiments.runs.arms import arm_names, default_arms
    from experiments.runs.report import result_json, track_run, verdict
    from experiments.runs.simulation import RunOptions, run_simulation
    from experiments.spec import load_spec

    with readable_errors():
        spec = load_spec(spec_path)
        options = RunOptions(
            customers=customers,
            days=days,
            seed=seed,
            arms=(
                default_arms(spec)
                if arms is None
                else arm_names([arm.strip() for arm in arms.split(",") if arm.strip()])
            ),
            database_url=database_url,
            fatigue=fatigue,
            nurturing=nurturing,
            drift=drift,
        )
    if not options.arms:
        raise fail("--arms names no arm")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("simulating", total=len(options.arms) * days)

        def on_day(arm: str, day: int) -> None:
            progress.update(task, advance=1, description=f"{arm}: day {day + 1}/{days}")

        with readable_errors():
            result = run_simulation(spec, options, on_day=on_day, jobs=jobs)
    run_id = None
    if track:
        with readable_errors():
            run_id = track_run(result, spec_path.read_text())
    if as_json:
        print_json({**result_json(result), "mlflow_run_id": run_id})
        return
    _print_tables(result)
    console.print(verdict(result))
    if run_id is not None:
        console.print(
            f"Tracked in MLflow (parent run {run_id}). Compare the runs: [bold]engage ui[/] "
            "then open http://127.0.0.1:5000"
        )


def _print_tables(result: RunResult) -> None:
    from experiments.runs.report import arm_summary

    options = result.options
    table = Table(
        title=f"{result.spec.key}: {options.customers:,} customers x {options.days} days "
        "(treatment groups)"
    )
    for column in ("arm", "reward", "revenue/cust", "retention", "contacts/cust", "CTR", "regret"):
        table.add_column(column, justify="left" if column in ("arm", "reward") else "right")
    for arm in result.arms:
        row = arm_summary(arm)
        table.add_row(
            row.arm,
            row.reward,
            fixed(row.revenue_per_customer, ".2f"),
            fixed(row.retention, ".4f"),
            fixed(row.contacts_per_customer, ".2f"),
            fixed(row.click_through, ".3f"),
            fixed(row.regret, ",.0f"),
        )
    console.print(table)
    lift = lift_table(
        "Lift vs randomized holdout (relative, 95% CI; always-valid CI)",
        [(arm.arm, row) for arm in result.arms for row in arm.lifts],
    )
    console.print(lift)
    for arm in result.arms:
        if arm.strategies is not None:
            console.print(strategy_table(f"{arm.arm} arm: epoch KPI by strategy", arm.strategies))
