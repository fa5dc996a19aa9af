"""``engage experiments``: create, list, show, set, pause, resume and stop stored experiments.

``create`` and ``set`` go through the engine as ``POST /v1/experiments`` and ``PATCH
/v1/experiments/{key}`` do, so the CLI validates and refuses exactly what the HTTP API does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli.common import (
    DatabaseUrl,
    JsonFlag,
    checked_database,
    console,
    fail,
    print_json,
    readable_errors,
    shown,
)
from experiments.vocabulary import ExperimentStatus

if TYPE_CHECKING:
    from experiments.engine import DecisionEngine
    from experiments.store.models import Experiment

app = typer.Typer(
    help="Experiment commands.\n\nExample: engage experiments create spec.toml --paused",
    no_args_is_help=True,
)
Key = Annotated[str, typer.Argument(help="Experiment key.")]


def _engine(url: str | None) -> DecisionEngine:
    from experiments.engine import DecisionEngine

    return DecisionEngine(checked_database(url))


def _row(row: Experiment) -> dict[str, Any]:
    return {
        "key": row.key,
        "status": row.status,
        "description": row.description,
        "exploration_floor": row.exploration_floor,
        "apprentice": row.apprentice,
        "created_at": row.created_at.isoformat(),
        "stop_reason": row.stop_reason,
        "stopped_at": None if row.stopped_at is None else row.stopped_at.isoformat(),
        "resumed_at": None if row.resumed_at is None else row.resumed_at.isoformat(),
    }


@app.command("list")
def list_experiments(url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """List experiments. Example: engage experiments list --json"""
    with readable_errors():
        rows = [_row(row) for row in _engine(url).list_experiments()]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Experiments")
    for column in ("key", "status", "floor", "apprentice", "created", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            shown(row["key"]),
            shown(row["status"]),
            f"{row['exploration_floor']:.3f}",
            "yes" if row["apprentice"] else "no",
            row["created_at"][:19],
            shown(row["description"]),
        )
    console.print(table)


@app.command()
def create(
    spec_file: Annotated[Path, typer.Argument(help="The experiment's spec (TOML).")],
    paused: Annotated[
        bool, typer.Option("--paused", help="Create it paused: serve control until resumed.")
    ] = False,
    url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an experiment in the store, validated as POST /v1/experiments validates it.

    Example: engage experiments create examples/quickstart.toml --paused
    """
    from experiments.spec import load_spec

    status = ExperimentStatus.PAUSED if paused else ExperimentStatus.RUNNING
    with readable_errors():
        spec = load_spec(spec_file)
        row = _engine(url).create_experiment(spec, status=status)
    if as_json:
        print_json(_row(row))
    else:
        console.print(shown(f"{row.key}: created, {row.status}"))


def _guardrail_actions(given: list[str]) -> dict[str, str]:
    """``--guardrail LABEL=ACTION`` options as the engine's ``guardrail_actions``; the label
    may hold ``=`` (a guardrail's ``name``), the action never does."""
    actions: dict[str, str] = {}
    for option in given:
        label, equals, action = option.rpartition("=")
        if not equals or not label:
            raise fail(
                f"--guardrail: expected LABEL=ACTION such as retention:churn=alert; got {option!r}"
            )
        actions[label] = action
    return actions


def _guardrails_line(spec: dict[str, Any]) -> str:
    """What each guardrail and a mismatched split do, as ``set`` and ``show`` print it."""
    from experiments.spec import parse_spec

    guardrails = parse_spec(spec).guardrails
    kpis = ", ".join(f"{guardrail.label} {guardrail.action}" for guardrail in guardrails.kpi)
    return f"guardrails: {kpis or 'none'}; sample ratio {guardrails.sample_ratio}"


@app.command("set")
def set_settings(
    key: Key,
    exploration_floor: Annotated[
        float | None,
        typer.Option("--exploration-floor", help="Share of traffic explored uniformly, 0 to 1."),
    ] = None,
    apprentice: Annotated[
        bool | None,
        typer.Option(
            "--apprentice/--no-apprentice",
            help="Serve business as usual while learning from it, or stop doing so.",
        ),
    ] = None,
    guardrail: Annotated[
        list[str] | None,
        typer.Option(
            "--guardrail",
            metavar="LABEL=ACTION",
            help="LABEL=stop or LABEL=alert, LABEL a guardrail as reports name it; repeatable.",
        ),
    ] = None,
    sample_ratio: Annotated[
        str | None,
        typer.Option(
            "--sample-ratio", metavar="ACTION", help="What a mismatched split does: stop or alert."
        ),
    ] = None,
    url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Change an experiment's settings as PATCH /v1/experiments/{key} does.

    Example: engage experiments set promo --guardrail retention:churn=alert --sample-ratio stop
    """
    if (exploration_floor, apprentice, guardrail, sample_ratio) == (None, None, None, None):
        raise fail(
            "give --exploration-floor, --apprentice, --no-apprentice, --guardrail or "
            "--sample-ratio (see --help)"
        )
    actions = _guardrail_actions(guardrail or [])
    with readable_errors():
        row = _engine(url).update_settings(
            key,
            exploration_floor=exploration_floor,
            apprentice=apprentice,
            guardrail_actions=actions,
            sample_ratio_action=sample_ratio,
        )
    if as_json:
        print_json({**_row(row), "spec": row.spec})
    else:
        console.print(
            shown(
                f"{row.key}: exploration floor {row.exploration_floor:g}, "
                f"apprentice {'on' if row.apprentice else 'off'}"
            )
        )
        if guardrail or sample_ratio is not None:
            console.print(shown(f"{row.key}: {_guardrails_line(row.spec)}"), soft_wrap=True)


@app.command()
def show(key: Key, url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Show one experiment with its spec and safe promotion's verdicts.

    Example: engage experiments show promo
    """
    from experiments.analysis.promotions import promotion_lines, read_promotions

    with readable_errors():
        engine = _engine(url)
        row = engine.get_experiment(key)
        promotions = read_promotions(engine.database, key)
    if as_json:
        print_json({**_row(row), "spec": row.spec, "promotions": [p.to_json() for p in promotions]})
        return
    title = shown(row.key)
    title.stylize("bold")
    console.print(title, shown(f"({row.status}) {row.description}"), soft_wrap=True)
    if row.stop_reason is not None and row.stopped_at is not None:
        console.print(
            shown(
                f"Stopped itself at {row.stopped_at.isoformat()}, serving control only: "
                f"{row.stop_reason}. Resume: engage experiments resume {row.key}"
            ),
            soft_wrap=True,
        )
    elif row.resumed_at is not None:
        console.print(shown(f"Resumed by an admin at {row.resumed_at.isoformat()}."))
    if row.spec.get("guardrails"):  # stored only when not at its defaults
        console.print(shown(_guardrails_line(row.spec)), soft_wrap=True)
    print_json(row.spec)
    if promotions:
        console.print("safe promotion, newest first:")
        for line in promotion_lines(promotions):
            console.print(shown(line), soft_wrap=True)


def _set_status(key: str, status: ExperimentStatus, url: str | None, as_json: bool) -> None:
    with readable_errors():
        row = _engine(url).set_status(key, status)
    if as_json:
        print_json(_row(row))
    else:
        console.print(f"{row.key}: {row.status}")


@app.command()
def pause(key: Key, url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Serve the control action while still logging. Example: engage experiments pause promo"""
    _set_status(key, ExperimentStatus.PAUSED, url, as_json)


@app.command()
def resume(key: Key, url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Resume a paused experiment, or one that stopped itself on a guardrail or its split.
    Example: engage experiments resume promo"""
    _set_status(key, ExperimentStatus.RUNNING, url, as_json)


@app.command()
def stop(key: Key, url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Stop an experiment for good. Example: engage experiments stop promo"""
    _set_status(key, ExperimentStatus.STOPPED, url, as_json)
