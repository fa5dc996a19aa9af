"""What every command shares: the console, settings from options, and one-line errors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console()
error_console = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="ENGAGE_DATABASE_URL",
        help="SQLAlchemy URL of the store (default: sqlite:///engage.db).",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def fail(message: str) -> typer.Exit:
    """Print one readable error line and return the exit to raise (code 2)."""
    error_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


@contextlib.contextmanager
def readable_errors() -> Iterator[None]:
    """Turn the engine's and the spec's ValueErrors into one line and exit code 2."""
    try:
        yield
    except ValueError as error:
        raise fail(str(error)) from None


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def database_url(value: str | None) -> str:
    from experiments.settings import Settings

    return value or Settings().database_url
