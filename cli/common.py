"""What every command shares: the console, settings from options, the store behind
``--database-url`` with its schema checked, and one-line errors."""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from experiments.store.database import Database

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
#: Seeds are numpy SeedSequence entropy: whole numbers from 0; click names ``--seed`` when
#: one is out of range.
MAX_SEED = 2**63 - 1


#: Longest word of an error line shown whole; longer ones (a 100,000-character level name
#: quoted back) are cut to their first :data:`CLIPPED_TO` characters and their length.
LONGEST_WORD = 120
CLIPPED_TO = 80


def _clipped(word: str) -> str:
    if len(word) <= LONGEST_WORD:
        return word
    return f"{word[:CLIPPED_TO]}…({len(word):,} characters)"


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM acts as Ctrl-C: it raises ``KeyboardInterrupt``, so worker
    processes are stopped, MLflow runs end as KILLED and engage exits 130, where SIGTERM's
    default would end engage at once and leave both behind."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def fail(message: str) -> typer.Exit:
    """Print one readable error line and return the exit to raise (code 2)."""
    # One line whatever the terminal width (rich would wrap at 80 columns in a pipe), and the
    # message is text, not markup, with its control characters written out (:func:`shown`):
    # it may quote user input with [brackets] or ESC sequences.
    line = shown(" ".join(_clipped(word) for word in message.split()))
    error_console.print(Text("error: ", style="bold red") + line, highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _database_message(error: Exception) -> str:
    """The first line of a database error: the driver's own message when there is one, without
    SQLAlchemy's SQL echo and background link."""
    original = getattr(error, "orig", None)
    lines = str(original if original is not None else error).strip().splitlines()
    return "cannot use the database: " + (lines[0] if lines else type(error).__name__)


@contextlib.contextmanager
def readable_errors() -> Iterator[None]:
    """Turn the engine's, the spec's and the store's errors, and a database that cannot be
    reached or a URL that cannot be parsed, into one line and exit code 2."""
    from sqlalchemy.exc import SQLAlchemyError

    from experiments.store.errors import StoreError

    try:
        yield
    except (ValueError, StoreError) as error:
        raise fail(str(error)) from None
    except SQLAlchemyError as error:
        raise fail(_database_message(error)) from None


#: Characters that would act on a terminal instead of showing: C0 and C1 controls (ESC
#: starts colour and cursor sequences) and the bidirectional overrides and isolates, which
#: reorder what follows them on the line.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(value: object) -> Text:
    """Stored or user text as the terminal should show it: never read as rich markup, and
    every control or direction character written out as an escape (``\\x1b``, ``\\u202e``)
    so it is seen rather than obeyed."""
    return Text(_UNSHOWABLE.sub(lambda match: ascii(match.group())[1:-1], str(value)))


def strict_json(data: Any) -> Any:
    """``data`` with every non-finite float replaced by ``None``: JSON has no NaN or
    Infinity, and strict parsers refuse them."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {key: strict_json(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [strict_json(value) for value in data]
    return data


def print_json(data: Any) -> None:
    """``data`` as strict JSON (no NaN or Infinity; other objects as their text), indented,
    with every character outside printable ASCII escaped: control and direction characters
    in stored text are shown as ``\\u202e``, never obeyed (rich's own ``print_json`` writes
    them raw, and json escapes all but DEL)."""
    from rich.highlighter import JSONHighlighter

    text = json.dumps(strict_json(data), default=str, allow_nan=False, indent=2)
    rendered = JSONHighlighter()(text.replace("\x7f", "\\u007f"))
    rendered.no_wrap = True
    rendered.overflow = None
    console.print(rendered, soft_wrap=True)


def database_url(value: str | None) -> str:
    """The store's URL: ``value``, else the configured one. An in-memory SQLite URL is refused
    (exit code 2): every command runs in a process of its own, so whatever it wrote there
    would be gone when it ends (``db upgrade`` would report a schema no one can use)."""
    from experiments.settings import Settings
    from experiments.store.connection import is_in_memory

    url = value or Settings().database_url
    with readable_errors():
        in_memory = is_in_memory(url)
    if in_memory:
        raise fail(
            f"database URL {url} is an in-memory SQLite database, gone when this command "
            "ends; use a file, e.g. sqlite:///engage.db"
        )
    return url


def require_existing(url: str) -> None:
    """Refuse a SQLite file that does not exist (exit code 2): opening it would create it,
    empty, and the command would then fail on the missing schema anyway."""
    from experiments.store.connection import sqlite_file

    with readable_errors():
        path = sqlite_file(url)
    if path is not None and not path.exists():
        raise fail(f"no database at {path}; run `engage db upgrade` to create it")


def checked_engine(url: str | None) -> Engine:
    """The engine of the store at ``url`` (or the configured one) once its schema is this
    engage's; otherwise ``SchemaMismatchError``, a store error that :func:`readable_errors`
    prints as one line. The store is imported only when a command runs (a fast ``--help``)."""
    from experiments.store.connection import make_engine
    from experiments.store.schema import check_schema

    resolved = database_url(url)
    require_existing(resolved)
    engine = make_engine(resolved)
    try:
        check_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def checked_database(url: str | None) -> Database:
    """As :func:`checked_engine`, the store as a :class:`~experiments.store.database.Database`
    (what the engine and the report read)."""
    from experiments.store.database import open_database

    resolved = database_url(url)
    require_existing(resolved)
    database = open_database(resolved)
    database.check_schema()
    return database


def print_links(runs: str, compare: str | None) -> None:
    """The MLflow links of a run, one per line and unwrapped, so each can be copied whole."""
    console.print(f"Runs in MLflow: {runs}", markup=False, highlight=False, soft_wrap=True)
    if compare is not None:
        console.print(
            f"Arms side by side: {compare}", markup=False, highlight=False, soft_wrap=True
        )
