"""Client-side deadlines for PostgreSQL: a silent database must not hang a request.

``make_engine(url, timeout=...)`` installs :func:`guarded_connect`: psycopg connections whose
every statement, commit and rollback is armed with a deadline; :class:`_Deadlines` shuts the
socket of an overdue one down, so the waiting thread gets an ``OperationalError`` (503 in the
service) instead of waiting forever. See :class:`_Deadlines` for why the usual timeouts do not
cover this case.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg.rows import TupleRow

__all__ = ["guarded_connect"]

logger = logging.getLogger("engage.store")


class _Deadlines:
    """One daemon thread that shuts down the socket of a connection whose answer is overdue.

    libpq has no client-side timeout for an answer, and the server-side ones need a server that
    hears us: when a firewall, a proxy or a half-dead host keeps the TCP connection open but
    delivers nothing, the peer's kernel still acknowledges our packets, so neither TCP
    keepalives nor ``tcp_user_timeout`` fire, ``statement_timeout`` never starts, and the
    thread waiting for the answer (a request, the learner) waits forever. Shutting the socket
    down wakes it: libpq's read fails, psycopg raises ``OperationalError`` and marks the
    connection broken, and SQLAlchemy discards it instead of returning it to the pool.

    Process-wide and started on first use (a forked child starts its own); arming is a dict
    insert under a lock, about a microsecond, on each statement, commit and rollback, and never
    wakes the thread, which ticks only while something is armed.
    """

    #: How late past its deadline a connection may be closed, at most.
    TICK_SECONDS = 0.05

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        # id(connection) -> (deadline, (fd, inode), seconds)
        self._armed: dict[int, tuple[float, tuple[int, int], float]] = {}
        self._thread: threading.Thread | None = None
        # Asleep this long when nothing is armed: half the shortest time allowed so far, so an
        # operation armed just after it fell asleep is looked at long before it is due. Arming
        # then never has to wake the thread (a wake-up per statement costs a context switch).
        self._idle_seconds = 60.0

    def arm(self, key: int, socket_id: tuple[int, int], seconds: float) -> None:
        with self._condition:
            self._armed[key] = (time.monotonic() + seconds, socket_id, seconds)
            if seconds / 2 < self._idle_seconds or self._thread is None:
                self._idle_seconds = min(self._idle_seconds, seconds / 2)
                self._condition.notify()  # rarely: a shorter time allowed, or a first use
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name="engage-db-deadlines", daemon=True
                )
                self._thread.start()

    def disarm(self, key: int) -> None:
        with self._condition:
            self._armed.pop(key, None)

    def _watch(self) -> None:
        with self._condition:
            while True:
                self._condition.wait(self.TICK_SECONDS if self._armed else self._idle_seconds)
                now = time.monotonic()
                for key, (deadline, socket_id, seconds) in list(self._armed.items()):
                    if deadline <= now:
                        # Under the lock: the owner cannot disarm and close the connection
                        # meanwhile; libpq may have closed the socket itself, hence the inode.
                        del self._armed[key]
                        _shutdown(socket_id)
                        logger.warning(
                            "no answer from PostgreSQL within %.1f s: connection closed", seconds
                        )


def _socket_id(fd: int) -> tuple[int, int]:
    """``fd`` and the inode of its socket: a reused fd number is another socket."""
    return fd, os.fstat(fd).st_ino


def _shutdown(socket_id: tuple[int, int]) -> None:
    fd, inode = socket_id
    with contextlib.suppress(OSError):
        if os.fstat(fd).st_ino != inode:
            return
        duplicate = socket.socket(fileno=os.dup(fd))  # shutdown acts on the socket, not the fd
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()


_DEADLINES = _Deadlines()


@contextlib.contextmanager
def _answer_due(connection: Any) -> Iterator[None]:
    """The server's answer to what runs inside is due within the connection's seconds."""
    _DEADLINES.arm(id(connection), connection.engage_socket, connection.engage_seconds)
    try:
        yield
    finally:
        _DEADLINES.disarm(id(connection))


@functools.cache
def _guarded_opener() -> Callable[[float, Any, dict[str, Any]], Connection[TupleRow]]:
    """A function opening psycopg connections with every wait for the server under a deadline.

    Its Connection and Cursor classes are built on first use so that importing this module
    never imports psycopg.
    """
    import psycopg
    from psycopg.rows import TupleRow

    class GuardedConnection(psycopg.Connection[TupleRow]):
        engage_socket: tuple[int, int] = (-1, 0)
        engage_seconds: float = 0.0

        def commit(self) -> None:
            with _answer_due(self):
                super().commit()

        def rollback(self) -> None:
            with _answer_due(self):
                super().rollback()

    class GuardedCursor(psycopg.Cursor[TupleRow]):
        # Client-side cursors: execute() waits for the whole result; fetches read memory.
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            with _answer_due(self.connection):
                return super().execute(*args, **kwargs)

        def executemany(self, *args: Any, **kwargs: Any) -> None:
            with _answer_due(self.connection):
                super().executemany(*args, **kwargs)

    def open_guarded(seconds: float, cargs: Any, cparams: dict[str, Any]) -> GuardedConnection:
        connection = GuardedConnection.connect(*cargs, cursor_factory=GuardedCursor, **cparams)
        connection.engage_socket = _socket_id(connection.fileno())
        connection.engage_seconds = seconds
        return connection

    return open_guarded


def guarded_connect(seconds: float) -> Any:
    """A ``do_connect`` listener: psycopg connections whose answers are due within ``seconds``,
    on the server (``statement_timeout``) and on our side (:class:`_Deadlines`)."""

    def connect(
        _dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]
    ) -> Connection[TupleRow]:
        # Added to the URL's own ?options=, if any, rather than replacing them.
        timeout = f"-c statement_timeout={math.ceil(seconds * 1000)}"
        cparams["options"] = " ".join(filter(None, (cparams.get("options"), timeout)))
        return _guarded_opener()(seconds, cargs, cparams)

    return connect
