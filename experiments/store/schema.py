"""Schema migrations: apply them (`engage db upgrade`) and refuse to run on a schema we do not know.

The alembic configuration is built in code (:func:`alembic_config`); the migration scripts ship
inside the package under ``experiments/store/migrations``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from experiments.store.connection import make_engine
from experiments.store.errors import SchemaMismatchError

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "check_schema",
    "current_revision",
    "head_revision",
    "known_revisions",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic ``Config`` for engage's migrations, bound to ``connection`` if given."""
    config = Config()
    # ConfigParser interpolates '%': escape it in case the install path contains one.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration revision this engage ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a revision
        raise RuntimeError("no migrations found in " + str(MIGRATIONS_DIR))
    return head


def known_revisions() -> set[str]:
    """Every migration revision this engage ships."""
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or ``None`` when it has no engage schema yet."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> str:
    """Migrate the database to ``revision`` (default the newest) and return its revision.

    Given a URL, builds a temporary engine and disposes of it afterwards.
    """
    if isinstance(engine_or_url, Engine):
        return _upgrade(engine_or_url, revision)
    engine = make_engine(engine_or_url)
    try:
        return _upgrade(engine, revision)
    finally:
        engine.dispose()


def _upgrade(engine: Engine, revision: str) -> str:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
    current = current_revision(engine)
    if current is None:  # pragma: no cover - alembic stamps after upgrading
        raise SchemaMismatchError("the database has no revision after upgrading")
    return current


def check_schema(engine: Engine) -> None:
    """Raise :class:`~experiments.store.errors.SchemaMismatchError` unless the database is at
    :func:`head_revision`."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaMismatchError(
            f"database is at revision none (no engage schema), this engage knows {head}; "
            "run `engage db upgrade`"
        )
    if current not in known_revisions():
        raise SchemaMismatchError(
            f"database is at revision {current}, this engage knows {head}; "
            f"revision {current} is unknown here, so the database was probably migrated by a "
            "newer engage: upgrade engage, not the database"
        )
    raise SchemaMismatchError(
        f"database is at revision {current}, this engage knows {head}; run `engage db upgrade`"
    )
