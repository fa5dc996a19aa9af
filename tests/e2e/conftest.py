"""Fixtures for end-to-end tests: a real server per test, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_support import Server, free_port, prepare_in_process


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    """A migrated database with keys and a server on it (SQLite and PostgreSQL).

    Prepared in process (four CLI starts fewer per test); ``engage db upgrade`` and
    ``engage keys create`` feeding a real server stay covered by ``test_rate_limit.py`` and
    the reliability tests' ``module_server``, fuzz and outage servers.
    """
    with Server(database_url, free_port(), prepare_in_process(database_url)) as running:
        yield running
