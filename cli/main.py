"""Entry point of the ``engage`` command line (typer)."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

# typer vendors click (typer._click) and re-exports only BadParameter of its exceptions.
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup
from typer.exceptions import Abort

from cli import db, experiments_cmd, keys
from cli.common import MAX_SEED, console, fail
from cli.evaluate import evaluate
from cli.export_cmd import export
from cli.init_cmd import init
from cli.report import report
from cli.retention_cmd import erase, purge
from cli.run import run
from cli.serve import serve
from cli.sweep import sweep
from cli.ui import ui


class _OneLineErrors(TyperGroup):
    """The ``engage`` group, with a usage error as one line and exit code 2, like every other
    bad input (click and typer would draw a boxed message under a usage line)."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: object,
    ) -> object:
        try:
            result = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                **extra,  # type: ignore[arg-type]
            )
        except ClickException as error:
            if not standalone_mode:
                raise
            if isinstance(error, NoArgsIsHelpError):  # `engage db`: the group's help
                error.show()
                sys.exit(error.exit_code)
            hint = ""
            context = getattr(error, "ctx", None)
            if context is not None:
                hint = f" (see '{context.command_path} --help')"
            try:
                # typer checks values with pydantic, whose messages start "Value error, ".
                raise fail(error.format_message().replace("Value error, ", "") + hint)
            except typer.Exit:
                sys.exit(error.exit_code)
        except Abort:
            if not standalone_mode:
                raise
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="engage",
    help="Adaptive experimentation for continuous customer engagement.\n\n"
    "Example: engage init my-experiment.toml && engage run my-experiment.toml",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_OneLineErrors,
)
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(experiments_cmd.app, name="experiments")
app.command()(init)
app.command()(run)
app.command()(sweep)
app.command()(report)
app.command()(export)
app.command()(purge)
app.command()(erase)
app.command()(serve)
app.command()(ui)
app.command()(evaluate)


@app.callback()
def main() -> None:
    """engage: decide, log, learn, and measure lift against a randomized holdout."""


@app.command()
def demo(
    rounds: Annotated[int, typer.Option(min=100, help="Simulated rounds per policy.")] = 5_000,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed of the simulated world.")
    ] = 0,
) -> None:
    """Run a short simulated bandit and print how each policy did.

    Example: engage demo --rounds 5000 --seed 0
    """
    from experiments.runs.quickstart import run_quickstart

    policies = ("uniform", "epsilon_greedy", "linucb", "linear_ts", "logistic_ts")
    batch_size = 50
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating", total=len(policies) * -(-rounds // batch_size))
        results = run_quickstart(
            policies,
            rounds=rounds,
            batch_size=batch_size,
            seed=seed,
            on_batch=lambda: progress.advance(task),
        )
    table = Table(title=f"Synthetic logistic bandit: 8 arms, 10 features, {rounds:,} rounds")
    for column in ("policy", "mean reward", "mean P(success)", "last quarter", "optimal"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for result in results:
        table.add_row(
            result.policy,
            f"{result.mean_reward:.3f}",
            f"{result.mean_expected:.3f}",
            f"{result.last_expected:.3f}",
            f"{result.optimal_expected:.3f}",
        )
    console.print(table)


def entry() -> None:
    """The ``engage`` program: the typer app, ending like other Unix tools when its reader goes.

    ``engage run ... | head -1`` closes the pipe while engage still writes. Python would raise
    ``BrokenPipeError`` (click turns it into a silent exit 1); engage instead takes the default
    action of ``SIGPIPE``, as ``cat`` or ``yes`` do: it ends at once, with no traceback, and the
    shell reports status 141. The long-running servers (``serve``, ``ui``) keep Python's
    handling, so a closed log pipe cannot kill a server.
    """
    if sys.argv[1:2] not in (["serve"], ["ui"]):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app()
