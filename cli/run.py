"""``engage run``: an experiment spec against the simulator, policies side by side."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli import render
from cli.common import (
    MAX_SEED,
    JsonFlag,
    console,
    error_console,
    fail,
    print_json,
    print_links,
    readable_errors,
    shown,
    sigterm_as_interrupt,
)
from cli.common import (
    database_url as checked_url,
)
from cli.render import fixed, strategy_table

if TYPE_CHECKING:
    from experiments.runs.simulation import RunOptions, RunResult
    from experiments.spec import ExperimentSpec


SpecArgument = Annotated[Path, typer.Argument(help="Experiment spec (TOML).", metavar="SPEC")]
CustomersOption = Annotated[int, typer.Option(min=10, help="Simulated customers.")]
DaysOption = Annotated[int, typer.Option(min=1, max=3650, help="Simulated days.")]
ArmsOption = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated arms: uniform,business_as_usual,interaction,engagement, and "
        "strategy for a spec with a \\[strategies] section (default: all of them); the lifetime "
        "learners lookahead, sequential and surrogate run only when named."
    ),
]
FatigueOption = Annotated[bool, typer.Option("--fatigue/--no-fatigue")]
NurturingOption = Annotated[bool, typer.Option("--nurturing/--no-nurturing")]
DriftOption = Annotated[bool, typer.Option("--drift/--no-drift")]
OraclesOption = Annotated[
    bool,
    typer.Option(
        "--oracles/--no-oracles",
        help="Run the click and revenue oracles (the simulator's truth) and report each "
        "arm's share of their edge; a few seconds.",
    ),
]
TrackOption = Annotated[bool, typer.Option("--track/--no-track", help="Log to MLflow.")]
PolicySeedOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=MAX_SEED,
        help="Seed of the learners' own randomness (default: --seed). Vary it with --seed "
        "fixed to see how much a result owes to one learning path.",
    ),
]
DEFAULT_JOBS = min(2, os.cpu_count() or 1)


def run(
    spec_path: SpecArgument,
    customers: CustomersOption = 20_000,
    days: DaysOption = 60,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed of the simulated population.")
    ] = 0,
    policy_seed: PolicySeedOption = None,
    arms: ArmsOption = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Keep the run's decisions in this database (default: temporary)."),
    ] = None,
    fatigue: FatigueOption = True,
    nurturing: NurturingOption = True,
    drift: DriftOption = True,
    oracles: OraclesOption = True,
    track: TrackOption = True,
    jobs: Annotated[
        int, typer.Option(min=1, max=64, help="Arms simulated at once (worker processes).")
    ] = DEFAULT_JOBS,
    as_json: JsonFlag = False,
) -> None:
    """Run SPEC against the customer simulator and compare policies on revenue and retention.

    Every arm holds out the same customers and lives in the same seeded world; arms are
    compared with the interaction arm on the same treated customers (95% paired intervals),
    and with the oracles each arm's share of the oracle edge is reported: (arm - interaction
    arm) / (revenue oracle - click oracle), same seed.

    Example: engage run examples/engagement.toml --customers 20000 --days 60
    """
    with sigterm_as_interrupt():
        spec, options = prepared_run(
            spec_path,
            customers=customers,
            days=days,
            seed=seed,
            policy_seed=policy_seed,
            arms=arms,
            database_url=None if database_url is None else checked_url(database_url),
            fatigue=fatigue,
            nurturing=nurturing,
            drift=drift,
            oracles=oracles,
            track=track,
        )
        _run(spec_path, spec, options, track=track, jobs=jobs, as_json=as_json)


def _run(
    spec_path: Path,
    spec: ExperimentSpec,
    options: RunOptions,
    *,
    track: bool,
    jobs: int,
    as_json: bool,
) -> None:
    from experiments.runs.report import result_json, track_run, verdict
    from experiments.runs.simulation import run_simulation

    days = options.days
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
    run_id, untracked = None, None
    if track:
        try:
            run_id = track_run(result, spec_path.read_text())
        except (ValueError, OSError) as error:  # TrackingError: still show what was simulated
            untracked = f"the results were not tracked in MLflow: {error}"
    if as_json:
        print_json({**result_json(result), "mlflow_run_id": run_id})
    else:
        _print_tables(result)
        console.print(verdict(result))
        if run_id is not None:
            console.print(
                f"Tracked in MLflow (parent run {run_id}). Start [bold]engage ui[/], then open:"
            )
            _print_run_links(run_id)
    if untracked is not None:
        raise fail(untracked)


def prepared_run(
    spec_path: Path,
    *,
    customers: int,
    days: int,
    seed: int,
    arms: str | None,
    database_url: str | None,
    policy_seed: int | None = None,
    fatigue: bool,
    nurturing: bool,
    drift: bool,
    oracles: bool,
    track: bool,
) -> tuple[ExperimentSpec, RunOptions]:
    """The spec and the run options of ``engage run`` and ``engage sweep``, checked: arms named
    once and known, a tracking store reachable before simulating (when ``track``), the run's
    warnings printed. Bad input exits with code 2 and one line."""
    from experiments.runs.arms import arm_names, default_arms
    from experiments.runs.preflight import run_warnings
    from experiments.runs.simulation import RunOptions
    from experiments.spec import load_spec

    named = [arm.strip() for arm in arms.split(",") if arm.strip()] if arms is not None else []
    repeated = sorted({arm for arm in named if named.count(arm) > 1})
    if repeated:
        raise fail(
            f"--arms names {', '.join(map(repr, repeated))} more than once; name each arm once"
        )
    with readable_errors():
        spec = load_spec(spec_path)
        options = RunOptions(
            customers=customers,
            days=days,
            seed=seed,
            policy_seed=policy_seed,
            arms=(default_arms(spec) if arms is None else arm_names(named)),
            database_url=database_url,
            fatigue=fatigue,
            nurturing=nurturing,
            drift=drift,
            oracles=oracles,
        )
    if not options.arms:
        raise fail("--arms names no arm")
    if track:  # before simulating: a store that cannot be reached fails now, not at the end
        from experiments.analysis.tracking import check_store

        with readable_errors():
            check_store()
    for line in run_warnings(spec, options):
        warn(line)
    return spec, options


def _print_run_links(run_id: str) -> None:
    """Links into ``engage ui`` (default address) for the run, when MLflow can say them."""
    from experiments.analysis.tracking_links import run_links
    from experiments.analysis.tracking_store import TrackingError

    try:
        print_links(*run_links(run_id))
    except TrackingError as error:
        warn(f"no MLflow links: {error}")


def warn(line: str) -> None:
    """One warning line on stderr: text, not markup."""
    error_console.print(shown(f"warning: {' '.join(line.split())}"), soft_wrap=True)


def _print_tables(result: RunResult) -> None:
    from experiments.runs.notes import history_note
    from experiments.runs.report import arm_summary

    options = result.options
    table = render.table(
        f"{result.spec.key}: {options.customers:,} customers x {options.days} days, per "
        f"treated customer (burn-in {result.spec.simulation.burn_in_days} days"
        f"{history_note(result)})",
        caption="regret: summed expected regret, in the arm's own reward",
    )
    render.name_column(
        table, "arm (reward)", [name for arm in result.arms for name in (arm.arm, arm.reward)]
    )
    for column in ("revenue", "retention", "contacts", "CTR", "regret"):
        table.add_column(column, justify="right", min_width=len(column))
    notes = []
    for arm in result.arms:
        row = arm_summary(arm)
        table.add_row(
            shown(row.arm) + "\n" + shown(row.reward),
            fixed(row.revenue_per_customer, ".2f"),
            fixed(row.retention, ".4f"),
            fixed(row.contacts_per_customer, ".2f"),
            fixed(row.click_through, ".3f"),
            fixed(row.regret, ",.0f"),
        )
        if row.note:
            notes.append(f"{row.arm}: {row.note}")
    console.print(render.fit(table))
    for note in notes:
        console.print(shown(note))
    _print_comparisons(result)
    held = int((~result.treated).sum())
    if held < 2 or result.treated.sum() < 2:
        console.print(
            shown(
                f"No lift table: {held:,} held-out and {int(result.treated.sum()):,} treated "
                "customers; lift needs at least 2 in each group (holdout.share "
                f"{result.spec.holdout.share:g})"
            )
        )
        return
    for lift in render.lift_tables(
        "Lift vs the holdout all arms share",
        [(arm.arm, row) for arm in result.arms for row in arm.lifts],
    ):
        console.print(lift)


def _print_comparisons(result: RunResult) -> None:
    """The oracles and every arm against the interaction arm (when they were run)."""
    from experiments.runs.report import INTERVAL_NOTE, SHARE_DEFINITION

    treated = int(result.treated.sum())
    oracles = result.oracles
    if oracles is not None:
        table = render.table(
            f"Oracles: the simulator's truth under the spec's contact rules "
            f"({treated:,} treated customers)"
        )
        render.name_column(table, "oracle", ["click", "revenue", "edge (95% CI)"])
        render.name_column(table, "maximises", ["click", oracles.revenue_objective])
        for column in ("revenue/cust", "retention"):
            table.add_column(column, justify="right")
        table.add_row(
            "click",
            "click",
            fixed(oracles.click["revenue"], ".2f"),
            fixed(oracles.click["retention"], ".4f"),
        )
        table.add_row(
            "revenue",
            oracles.revenue_objective,
            fixed(oracles.revenue["revenue"], ".2f"),
            fixed(oracles.revenue["retention"], ".4f"),
        )
        table.add_row(
            "edge (95% CI)",
            "",
            shown(
                f"{fixed(oracles.edge('revenue'), '+.2f')} "
                f"[{fixed(oracles.edge_low['revenue'], '+.2f')}, "
                f"{fixed(oracles.edge_high['revenue'], '+.2f')}]"
            ),
            shown(
                f"{fixed(oracles.edge('retention'), '+.4f')} "
                f"[{fixed(oracles.edge_low['retention'], '+.4f')}, "
                f"{fixed(oracles.edge_high['retention'], '+.4f')}]"
            ),
        )
        console.print(render.fit(table))
    if not result.comparisons:
        return
    table = render.comparison_table(
        f"Arms minus the interaction arm, paired over the same {treated:,} treated "
        "customers (95% CI)",
        [row for row in result.comparisons if row.arm != row.reference],
        caption=f"{SHARE_DEFINITION}; {INTERVAL_NOTE}",
    )
    console.print(table)
    for row in result.comparisons:
        if row.arm != row.reference and row.note:
            console.print(shown(f"{row.arm}, {row.kpi}: {row.note}"))
    for arm in result.arms:
        if arm.strategies is not None:
            console.print(strategy_table(f"{arm.arm} arm: epoch KPI by strategy", arm.strategies))
