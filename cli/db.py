"""``engage db``: the store's schema."""

from __future__ import annotations

import typer

from cli.common import DatabaseUrl, console, database_url, readable_errors

app = typer.Typer(
    help="Database schema commands.\n\nExample: engage db upgrade --database-url sqlite:///engage.db",
    no_args_is_help=True,
)


@app.command()
def upgrade(url: DatabaseUrl = None) -> None:
    """Apply the migrations up to the newest schema.

    Example: engage db upgrade --database-url sqlite:///engage.db
    """
    from experiments.store.schema import upgrade as apply

    with readable_errors():
        revision = apply(database_url(url))
    console.print(f"database at revision [bold]{revision}[/]")
