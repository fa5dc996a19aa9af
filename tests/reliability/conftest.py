"""Fixtures for reliability tests: real servers (as in ``tests/e2e``) fed hostile input.

``tests/e2e`` is put on ``sys.path`` so its helpers (``Server``, ``prepare_database``,
``free_port``, ``engage``) are shared rather than copied. Tests take what is defined here
as fixtures rather than importing it: several ``conftest`` modules share that name.

``module_database_url`` / ``module_server`` are one per module and dialect, for tests that
keep to their own experiments (each server start costs seconds on two cores).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from database_support import postgres_database
from e2e_support import Server, free_port, prepare_database, prepare_in_process


class LoggedServer(Server):
    """A ``Server`` whose stderr (uvicorn's and the service's logs) is kept for inspection.

    The base class pipes stderr and reads it only when the process dies early; here a thread
    drains the pipe once the server is up, so a chatty server never blocks on a full pipe.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._chunks: list[bytes] = []
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> None:
        super().start(timeout)
        stream = self.process.stderr if self.process is not None else None
        if stream is not None:
            self._reader = threading.Thread(target=self._drain, args=(stream,), daemon=True)
            self._reader.start()

    def _drain(self, stream: object) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
            self._chunks.append(chunk)

    def stop(self, *args: object, **kwargs: object) -> None:
        super().stop(*args, **kwargs)  # type: ignore[arg-type]
        if self._reader is not None:
            self._reader.join(timeout=15)
            self._reader = None

    @property
    def log(self) -> str:
        """Everything the server wrote to stderr so far (complete once it is stopped)."""
        return b"".join(self._chunks).decode(errors="replace")


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    """A migrated database with keys and a server on it (SQLite and PostgreSQL), prepared in
    process (``module_server`` keeps the CLI's ``db upgrade`` and ``keys create``)."""
    with Server(database_url, free_port(), prepare_in_process(database_url)) as running:
        yield running


@pytest.fixture
def logged_server(database_url: str) -> Iterator[LoggedServer]:
    """Like ``server``, with its stderr captured (``.log``) and the key cache off."""
    with LoggedServer(
        database_url,
        free_port(),
        prepare_in_process(database_url),
        env={"ENGAGE_API_KEY_CACHE_SECONDS": "0"},
    ) as running:
        yield running


@pytest.fixture
def spawn_server() -> Iterator[Callable[..., LoggedServer]]:
    """Start ``LoggedServer(*args, **kwargs)`` on demand (several, any workers or env);
    every one is stopped at teardown, killed ones included."""
    started: list[LoggedServer] = []

    def spawn(*args: object, **kwargs: object) -> LoggedServer:
        running = LoggedServer(*args, **kwargs)
        started.append(running)
        running.start()
        return running

    try:
        yield spawn
    finally:
        for running in started:
            running.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database shared by one module's tests (SQLite and PostgreSQL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'engage.db'}"
        return
    with postgres_database(request.getfixturevalue("postgres_admin_url")) as url:
        yield url


@pytest.fixture(scope="module")
def module_server(module_database_url: str) -> Iterator[Server]:
    """A server shared by one module's tests, with a key per scope."""
    with Server(module_database_url, free_port(), prepare_database(module_database_url)) as running:
        yield running
