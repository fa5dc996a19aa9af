"""``engage keys``: API keys for the HTTP service."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from cli.common import DatabaseUrl, JsonFlag, console, database_url, print_json, readable_errors

app = typer.Typer(help="API key commands.", no_args_is_help=True)


class Scope(StrEnum):
    admin = "admin"
    decide = "decide"
    read = "read"


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
    from sqlmodel import Session

    from experiments.store import check_schema, make_engine, queries

    with readable_errors():
        engine = make_engine(database_url(url))
        check_schema(engine)
        with Session(engine, expire_on_commit=False) as session:
            row, plaintext = queries.create_api_key(
                session, scopes=[item.value for item in scope], name=name
            )
            session.commit()
    if as_json:
        print_json({"key": plaintext, "id": row.id, "scopes": row.scopes})
        return
    console.print(f"[bold]{plaintext}[/]")
    console.print(f"scopes: {row.scopes}; store it now: it is not shown again.", style="dim")
