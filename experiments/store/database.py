"""One database as the rest of engage sees it: short sessions, a liveness check, the dialect,
and PostgreSQL's session-level advisory locks.

The SQLAlchemy engine stays inside :class:`Database`; callers ask for what they need (a session,
a ping, a lock) instead of reaching through to the engine. Nothing connects at import or when a
``Database`` is built: :func:`open_database` only builds the engine (:func:`make_engine`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlmodel import Session

from experiments.store.connection import make_engine
from experiments.store.schema import check_schema


class SessionLock:
    """A PostgreSQL session-level advisory lock, held on its own autocommit connection.

    The server releases it when the connection ends (the process dies, the connection is
    killed), so a lock never outlives its holder. The connection is kept for as long as the
    lock, in autocommit: idle inside an open transaction, ``idle_in_transaction_session_timeout``
    would end it, and the lock with it.
    """

    def __init__(self, connection: Connection, key: int) -> None:
        self._connection = connection
        self.key = key

    def alive(self) -> bool:
        """True while the connection (and so the lock) is still there."""
        try:
            self._connection.execute(text("SELECT 1"))
        except Exception:  # the connection died: so did the lock
            return False
        return True

    def release(self) -> None:
        """Unlock and close; never raises (a dead connection has released the lock already)."""
        with contextlib.suppress(Exception):
            self._connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": self.key})
            self._connection.commit()
        with contextlib.suppress(Exception):
            self._connection.close()


class Database:
    """A database engage reads and writes: SQLite or PostgreSQL behind one engine.

    Args:
        engine: a SQLAlchemy engine from :func:`experiments.store.connection.make_engine`.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def session(self) -> Session:
        """A new session whose rows stay readable after commit (``expire_on_commit=False``):
        callers build their answers from rows they have just written."""
        return Session(self._engine, expire_on_commit=False)

    def connect(self) -> Connection:
        """A connection in autocommit, for session-level state that must outlive transactions
        (advisory locks) and for statements that must not run in one."""
        return self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def ping(self) -> None:
        """Run ``SELECT 1``; raises whatever the driver raises when the database is down."""
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def check_schema(self) -> None:
        """Raise :class:`~experiments.store.errors.SchemaMismatchError` unless the schema is
        current."""
        check_schema(self._engine)

    def try_session_lock(self, key: int) -> SessionLock | None:
        """PostgreSQL only: take the session-level advisory lock ``key`` without waiting, or
        ``None`` when another session holds it."""
        connection = self.connect()
        try:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": key}).scalar()
        except BaseException:
            connection.close()
            raise
        if got:
            return SessionLock(connection, key)
        connection.close()
        return None

    def dispose(self) -> None:
        """Close the pooled connections (at shutdown)."""
        self._engine.dispose()


def open_database(url: str | URL, **engine_kwargs: Any) -> Database:
    """A :class:`Database` on ``url``; ``engine_kwargs`` go to :func:`make_engine`
    (``timeout=...`` for the service, pool sizes)."""
    return Database(make_engine(url, **engine_kwargs))


__all__ = ["Database", "SessionLock", "open_database"]
