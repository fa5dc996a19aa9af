"""Database engines for engage: SQLite (the default, a file under the working directory) or
PostgreSQL by URL.

Nothing connects at import; :func:`make_engine` builds an engine when an entry point asks.

SQLite keeps Python's default ("legacy") transaction handling on purpose: the driver opens a
transaction at the first write, not at the first read, so a session that reads and then writes
takes the write lock through the busy handler (``busy_timeout``) instead of failing at once with
``SQLITE_BUSY_SNAPSHOT`` ("database is locked") when another writer committed in between. The price
is that SAVEPOINTs are unreliable on SQLite, so the queries never use them: idempotent inserts use
``INSERT .. ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

DEFAULT_DATABASE_URL = "sqlite:///engage.db"
"""``./engage.db`` relative to the working directory."""

DATABASE_URL_ENV = "ENGAGE_DATABASE_URL"

SQLITE_BUSY_TIMEOUT_MS = 5000

_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``ENGAGE_DATABASE_URL`` from ``environ`` (default ``os.environ``), else the default URL."""
    env = os.environ if environ is None else environ
    return env.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and point plain PostgreSQL URLs at the psycopg (v3) driver.

    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://``; other explicit drivers
    are left alone.
    """
    parsed = make_url(url)
    if parsed.drivername in _POSTGRES_DRIVERS:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_sqlite_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or (url.query.get("mode") == "memory")


def _set_sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def make_engine(
    url: str | URL,
    *,
    echo: bool = False,
    pool_size: int = 5,
    max_overflow: int = 10,
    connect_timeout: int = 5,
) -> Engine:
    """An engine for ``url``: ``sqlite:///path`` or ``postgresql://user@host:port/db``.

    SQLite: ``check_same_thread=False`` (sessions move between threads in the server), a busy
    timeout, and on every new connection ``journal_mode=WAL``, ``busy_timeout``,
    ``synchronous=NORMAL`` and ``foreign_keys=ON``. An in-memory database (``sqlite://``) uses
    one shared connection so that every session sees the same data.

    PostgreSQL: the psycopg 3 driver, ``pool_pre_ping`` (servers restart, connections go stale),
    a modest pool of ``pool_size`` plus ``max_overflow`` connections and ``connect_timeout``
    seconds to connect.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        kwargs: dict[str, Any] = {"echo": echo, "connect_args": connect_args}
        if _is_sqlite_memory(parsed):
            kwargs["poolclass"] = StaticPool
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    if backend == "postgresql":
        return create_engine(
            parsed,
            echo=echo,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args={"connect_timeout": connect_timeout},
        )
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


def dialect_name(engine: Engine) -> str:
    """The engine's dialect: ``"sqlite"`` or ``"postgresql"``."""
    return engine.dialect.name
