"""Alembic environment for engage's store.

There is no ``alembic.ini``: :mod:`experiments.store.schema` builds the ``Config`` in code and
passes an open connection as ``config.attributes["connection"]``. Without one (for example the
``alembic`` command line with ``-x url=...`` or ``sqlalchemy.url`` set), the URL comes from there,
else from ``ENGAGE_DATABASE_URL``, else the default SQLite file.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

from experiments.store import models
from experiments.store.connection import database_url_from_env, make_engine

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render engage's column types as plain SQLAlchemy types, so revisions import nothing of
    ours (a revision must keep working when the models change later)."""
    if type_ == "type" and isinstance(obj, models.UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure_kwargs() -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "render_item": render_item,
        # SQLite cannot ALTER most things; batch mode rebuilds tables and is a no-op elsewhere.
        "render_as_batch": True,
        "compare_type": True,
    }


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or database_url_from_env()
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), literal_binds=True, **_configure_kwargs())
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    context.configure(connection=connection, **_configure_kwargs())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.begin() as conn:
            _run_with(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
