"""Connections to engage's database: database URLs and SQLAlchemy engines for SQLite (the
default, a file under the working directory) or PostgreSQL by URL.

Nothing connects at import; :func:`make_engine` builds an engine when an entry point asks.

SQLite keeps Python's default ("legacy") transaction handling on purpose: the driver opens a
transaction at the first write, not at the first read, so a session that reads and then writes
takes the write lock through the busy handler (``busy_timeout``) instead of failing at once with
``SQLITE_BUSY_SNAPSHOT`` ("database is locked") when another writer committed in between. The price
is that SAVEPOINTs are unreliable on SQLite, so the queries never use them: idempotent inserts use
``INSERT .. ON CONFLICT DO NOTHING``.

PostgreSQL engines built with a ``timeout`` (the service's) bound every wait on the database;
see :func:`make_engine` and :mod:`experiments.store.deadlines` for why that takes a
client-side deadline on top of the usual timeouts.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from experiments.store import json_codec
from experiments.store.deadlines import guarded_connect
from experiments.store.errors import InvalidFieldError

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "SQLITE_BUSY_TIMEOUT_MS",
    "database_url_from_env",
    "dialect_name",
    "is_in_memory",
    "make_engine",
    "normalize_url",
    "sqlite_file",
]

DEFAULT_DATABASE_URL = "sqlite:///engage.db"
"""``./engage.db`` relative to the working directory."""

DATABASE_URL_ENV = "ENGAGE_DATABASE_URL"

SQLITE_BUSY_TIMEOUT_MS = 5000

# The JSON columns' text: orjson where it equals the standard library's (json_codec).
_JSON_CODEC: dict[str, Any] = {
    "json_serializer": json_codec.dumps,
    "json_deserializer": json_codec.loads,
}

_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``ENGAGE_DATABASE_URL`` from ``environ`` (default ``os.environ``), else the default URL."""
    env = os.environ if environ is None else environ
    return env.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and point plain PostgreSQL URLs at the psycopg (v3) driver.

    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://``. Any other database
    or driver (MySQL, asyncpg, ...) is refused by name (:class:`InvalidFieldError`, field
    ``database_url``), before SQLAlchemy would fail to import a driver engage does not ship; the
    message names the scheme only, never the URL, which may hold a password.
    """
    parsed = make_url(url)
    if parsed.drivername not in _POSTGRES_DRIVERS | _SQLITE_DRIVERS:
        raise InvalidFieldError(
            f"database URL scheme '{parsed.drivername}' is not supported: engage stores data in "
            "SQLite (sqlite:///path.db) or PostgreSQL (postgresql://user@host/db)",
            field="database_url",
        )
    if parsed.drivername in _POSTGRES_DRIVERS:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_sqlite_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or (url.query.get("mode") == "memory")


def is_in_memory(url: str | URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database (``sqlite://``, ``:memory:``,
    ``mode=memory``): one that is gone when the process that opened it ends."""
    parsed = normalize_url(url)
    return parsed.drivername in _SQLITE_DRIVERS and _is_sqlite_memory(parsed)


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite ``url`` (None for PostgreSQL and in-memory SQLite): connecting
    creates a missing one, empty, so a command that reads checks it first."""
    parsed = normalize_url(url)
    if parsed.drivername not in _SQLITE_DRIVERS or _is_sqlite_memory(parsed):
        return None
    database = str(parsed.database)
    return Path(database.removeprefix("file:")) if parsed.query.get("uri") else Path(database)


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
    timeout: float | None = None,
) -> Engine:
    """An engine for ``url``: ``sqlite:///path`` or ``postgresql://user@host:port/db``.

    SQLite: ``check_same_thread=False`` (sessions move between threads in the server), a busy
    timeout, and on every new connection ``journal_mode=WAL``, ``busy_timeout``,
    ``synchronous=NORMAL`` and ``foreign_keys=ON``. An in-memory database (``sqlite://``) uses
    one shared connection so that every session sees the same data.

    PostgreSQL: the psycopg 3 driver, ``pool_pre_ping`` (servers restart, connections go stale),
    a modest pool of ``pool_size`` plus ``max_overflow`` connections and ``connect_timeout``
    seconds to connect.

    ``timeout`` (PostgreSQL only; seconds) bounds every wait on the database: for a connection
    from the pool (``pool_timeout``), for a new connection (``connect_timeout``, which libpq
    counts in whole seconds and at least 2), and for the answer to a statement, a commit or a
    rollback: ``statement_timeout`` makes the server give up on its side, and a client-side
    deadline (:mod:`experiments.store.deadlines`) closes a connection whose answer has not
    come in time, which the server cannot do when the network or a proxy in between has gone
    silent. A request
    makes a few such waits, so it ends within a small multiple of ``timeout``. Without it (the
    command line: migrations, exports) statements may run as long as they need.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        kwargs: dict[str, Any] = {"echo": echo, "connect_args": connect_args, **_JSON_CODEC}
        if _is_sqlite_memory(parsed):
            kwargs["poolclass"] = StaticPool
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if timeout is None:
            return create_engine(
                parsed,
                echo=echo,
                pool_pre_ping=True,
                pool_size=pool_size,
                max_overflow=max_overflow,
                connect_args={"connect_timeout": connect_timeout},
                **_JSON_CODEC,
            )
        if not timeout > 0:
            raise ValueError(f"The 'timeout' parameter of make_engine must be > 0. Got {timeout}.")
        engine = create_engine(
            parsed,
            echo=echo,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=timeout,
            connect_args={"connect_timeout": max(2, math.ceil(timeout))},
            **_JSON_CODEC,
        )
        event.listen(engine, "do_connect", guarded_connect(timeout))
        return engine
    return create_engine(parsed, echo=echo, pool_pre_ping=True, **_JSON_CODEC)


def dialect_name(engine: Engine) -> str:
    """The engine's dialect: ``"sqlite"`` or ``"postgresql"``."""
    return engine.dialect.name
