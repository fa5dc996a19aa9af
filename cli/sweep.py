"""``engage sweep``: a grid of ``engage run`` cells (seeds x spec overrides), on Ray or locally."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import MAX_SEED, JsonFlag, console, fail, print_json, readable_errors, shown
from cli.render import fixed
from cli.run import (
    DEFAULT_JOBS,
    ArmsOption,
    CustomersOption,
    DaysOption,
    DriftOption,
    FatigueOption,
    NurturingOption,
    OraclesOption,
    SpecArgument,
    TrackOption,
    prepared_run,
    warn,
)

if TYPE_CHECKING:
    from experiments.runs.sweep_executors import ExecutorChoice
    from experiments.runs.sweep_report import SweepRow


def sweep(
    spec_path: SpecArgument,
    seeds: Annotated[
        str, typer.Option(help="Comma-separated seeds of the simulated population.")
    ] = "0",
    policy_seeds: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated seeds of the learners' own randomness, crossed with --seeds "
            "(default: each cell's learners take its --seeds value). Several policy seeds on one "
            "seed show how much a result owes to one learning path in one world."
        ),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="PATH=VALUE[,VALUE...]: a spec field (dotted path of the spec's JSON form) and "
            "the values to sweep, e.g. --set policy.name=linear_ts,kalman_ts "
            "--set exploration_floor=0.01,0.05; repeat for more fields.",
        ),
    ] = None,
    customers: CustomersOption = 20_000,
    days: DaysOption = 60,
    arms: ArmsOption = None,
    fatigue: FatigueOption = True,
    nurturing: NurturingOption = True,
    drift: DriftOption = True,
    oracles: OraclesOption = True,
    executor: Annotated[
        str,
        typer.Option(help="auto (Ray when installed, else local worker processes), ray or local."),
    ] = "auto",
    address: Annotated[
        str | None,
        typer.Option(help="An existing Ray cluster (e.g. ray://head:10001); default: a local Ray."),
    ] = None,
    jobs: Annotated[
        int, typer.Option(min=1, max=256, help="Cells run at once (local CPUs or processes).")
    ] = DEFAULT_JOBS,
    track: TrackOption = True,
    as_json: JsonFlag = False,
) -> None:
    """Run SPEC over a grid of seeds and spec overrides, one ``engage run`` per cell.

    Each cell gives what ``engage run`` gives with the same settings; MLflow gets one parent
    run with a nested run per cell, and settings run on several seeds are pooled over them
    (mean difference from the interaction arm with a 95% interval over the seeds).

    Example: engage sweep examples/engagement.toml --seeds 0,1,2
    --set policy.name=linear_ts,kalman_ts --customers 5000 --days 30
    """
    from experiments.runs.sweep import parse_override, sweep_cells
    from experiments.runs.sweep_executors import run_cells, select_executor
    from experiments.runs.sweep_report import (
        SweepPlan,
        sweep_json,
        sweep_rows,
        track_sweep,
    )

    if executor not in ("auto", "ray", "local"):
        raise fail(f"--executor: expected auto, ray or local; got {executor!r}")
    with readable_errors():
        seed_list = _seeds(seeds, "--seeds")
        policy_seed_list = None if policy_seeds is None else _seeds(policy_seeds, "--policy-seeds")
        overrides = [parse_override(text) for text in settings or []]
        cells = sweep_cells(seed_list, overrides, policy_seed_list)
        chosen = select_executor(cast("ExecutorChoice", executor), address)
    spec, options = prepared_run(
        spec_path,
        customers=customers,
        days=days,
        seed=seed_list[0],
        arms=arms,
        database_url=None,
        fatigue=fatigue,
        nurturing=nurturing,
        drift=drift,
        oracles=oracles,
        track=track,
    )
    from experiments.runs.sweep import cell_spec

    with readable_errors():  # every cell's spec is checked before any cell runs
        for cell in cells:
            cell_spec(spec, cell)
    if chosen == "local" and executor == "auto":
        warn(
            f"Ray is not installed (pip install 'engage[ray]'): running the {len(cells)} "
            f"cells in {min(jobs, len(cells))} local worker processes"
        )
    plan = SweepPlan(
        seeds=tuple(seed_list),
        policy_seeds=None if policy_seed_list is None else tuple(policy_seed_list),
        overrides={override.path: list(override.values) for override in overrides},
        executor=chosen if address is None else f"ray at {address}",
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, TimeElapsedColumn(), console=console, transient=True, disable=as_json
    ) as progress:
        task = progress.add_task(f"sweep on {plan.executor}", total=len(cells))
        with readable_errors():
            results = run_cells(
                chosen,
                spec.to_json_dict(),
                cells,
                options,
                jobs=jobs,
                address=address,
                on_done=lambda cell, _: progress.update(
                    task, advance=1, description=f"done: {cell.label}"
                ),
            )
    run_id, untracked = None, None
    if track:
        try:
            run_id = track_sweep(spec, spec_path.read_text(), options, plan, cells, results)
        except (ValueError, OSError) as error:  # TrackingError: still show what was simulated
            untracked = f"the sweep was not tracked in MLflow: {error}"
    if as_json:
        print_json({**sweep_json(spec, options, plan, cells, results), "mlflow_run_id": run_id})
    else:
        rows = sweep_rows(cells, results)
        _print_cells(rows, spec.key)
        _print_pooled(rows)
        if run_id is not None:
            console.print(f"Tracked in MLflow (parent run {run_id}): engage ui")
    if untracked is not None:
        raise fail(untracked)


def _seeds(text: str, option: str) -> list[int]:
    """``0,1,2`` -> [0, 1, 2]; ValueError naming ``option`` otherwise. Each seed lies in
    ``engage run``'s range (0 to ``MAX_SEED``), so every cell is a run ``engage run`` takes."""
    seeds = []
    for part in text.split(","):
        part = part.strip()
        # isdigit alone takes other scripts' digits and superscripts, which int() refuses.
        if not (part.isascii() and part.isdigit()) or int(part) > MAX_SEED:
            raise ValueError(
                f"{option}: expected whole numbers from 0 to {MAX_SEED} separated by commas;"
                f" got {part!r}"
            )
        seeds.append(int(part))
    return seeds


def _interval(low: float | None, high: float | None, digits: str) -> str:
    return f"[{fixed(low, digits)}, {fixed(high, digits)}]"


def _print_cells(rows: list[SweepRow], key: str) -> None:
    """The cells (numbered, each with its settings), then a table per KPI with a row per cell
    and arm: the KPI and the paired difference from the interaction arm."""
    labels = dict.fromkeys((row.cell, row.label) for row in rows)
    console.print(f"[bold]{key}[/]: {len(labels)} sweep cells")
    for cell, label in labels:
        console.print(shown(f"  cell {cell}: {label}"))
    for kpi, digits in (("revenue", ".2f"), ("retention", ".4f")):
        table = Table(title=f"{kpi} per customer; difference from interaction (95% CI)")
        for column in ("cell", "arm", kpi, "difference", "95% CI"):
            table.add_column(column, justify="left" if column == "arm" else "right")
        for row in rows:
            value = row.revenue_per_customer if kpi == "revenue" else row.retention
            difference = getattr(row, f"{kpi}_difference")
            table.add_row(
                str(row.cell),
                shown(row.arm),
                fixed(value, digits),
                "" if difference is None else fixed(difference, "+" + digits),
                ""
                if difference is None
                else _interval(
                    getattr(row, f"{kpi}_low"), getattr(row, f"{kpi}_high"), "+" + digits
                ),
            )
        console.print(table)


def _print_pooled(rows: list[SweepRow]) -> None:
    """The settings pooled over seeds, when some were run on two or more: numbered settings,
    then a row per setting, arm and KPI."""
    from experiments.runs.sweep_report import pooled_rows

    pooled = pooled_rows(rows)
    if not pooled:
        return
    texts = {
        repr(row.settings): " ".join(f"{path}={value}" for path, value in row.settings.items())
        for row in pooled
    }
    numbers = {key: number for number, key in enumerate(texts)}
    console.print("Settings pooled over seeds:")
    for key, text in texts.items():
        console.print(shown(f"  setting {numbers[key]}: {text or '(base spec)'}"))
    for kpi in ("revenue", "retention"):
        digits = "+.4f" if kpi == "retention" else "+.2f"
        table = Table(title=f"{kpi}: mean difference from interaction over seeds (95% t-interval)")
        for column in ("setting", "arm", "seeds", "mean", "95% CI", "reading"):
            table.add_column(
                column,
                justify="left" if column in ("arm", "reading") else "right",
                no_wrap=column == "95% CI",
            )
        for row in pooled:
            if row.kpi == kpi:
                table.add_row(
                    str(numbers[repr(row.settings)]),
                    shown(row.arm),
                    str(row.seeds),
                    fixed(row.mean_difference, digits),
                    _interval(row.low, row.high, digits),
                    row.reading,
                )
        console.print(table)
