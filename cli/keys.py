"""``engage keys``: API keys for the HTTP service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.common import (
    DatabaseUrl,
    JsonFlag,
    checked_engine,
    console,
    fail,
    print_json,
    readable_errors,
    shown,
)

if TYPE_CHECKING:
    from sqlmodel import Session

app = typer.Typer(
    help="API key commands.\n\nExample: engage keys create --scope decide --name checkout-service",
    no_args_is_help=True,
)


class Scope(StrEnum):
    admin = "admin"
    decide = "decide"
    read = "read"


@contextmanager
def _key_store(url: str | None) -> Iterator[Session]:
    """A session on the migrated store at ``url`` (or the configured one); objects stay
    readable after commit. Imports the store only when a command runs (fast ``--help``)."""
    from sqlmodel import Session

    engine = checked_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


@app.command()
def create(
    scope: Annotated[list[Scope], typer.Option("--scope", help="Scope to grant (repeatable).")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key and print it once (only its salted hash is stored).

    Example: engage keys create --scope decide --name checkout-service
    """
    from experiments.store.api_keys import create_api_key

    with readable_errors(), _key_store(url) as session:
        row, plaintext = create_api_key(session, scopes=[item.value for item in scope], name=name)
        session.commit()
    if as_json:
        print_json({"key": plaintext, "id": row.id, "scopes": row.scopes})
        return
    console.print(f"[bold]{plaintext}[/]")
    console.print(f"scopes: {row.scopes}; store it now: it is not shown again.", style="dim")


@app.command("list")
def list_keys(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """List API keys: id, prefix, scopes, name, created, revoked (never the key itself).

    Example: engage keys list --all
    """
    from experiments.store.api_keys import list_api_keys

    with readable_errors(), _key_store(url) as session:
        rows = [
            {
                "id": row.id,
                "prefix": row.prefix,
                "scopes": row.scopes,
                "name": row.name,
                "created_at": row.created_at.isoformat(),
                "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
            }
            for row in list_api_keys(session, include_revoked=include_revoked)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="API keys")
    for column in ("id", "prefix", "scopes", "name", "created_at", "revoked_at"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(shown(row[column] or "") for column in row))
    console.print(table)


@app.command()
def revoke(
    key_id: Annotated[
        int, typer.Argument(min=1, max=2**63 - 1, help="The key's id (see engage keys list).")
    ],
    url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API key by id. Servers stop accepting it within their key cache time
    (ENGAGE_API_KEY_CACHE_SECONDS, 5 s by default).

    Example: engage keys revoke 3
    """
    from experiments.store.api_keys import revoke_api_key

    with readable_errors(), _key_store(url) as session:
        revoked = revoke_api_key(session, key_id=key_id)
        session.commit()
    if not revoked:
        raise fail(f"no active API key with id {key_id} (see engage keys list --all)")
    if as_json:
        print_json({"id": key_id, "revoked": True})
        return
    console.print(f"API key {key_id} revoked.")
