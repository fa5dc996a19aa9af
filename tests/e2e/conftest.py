"""Fixtures for end-to-end tests: a real server per test, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_support import Server, free_port, prepare_database


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    """A migrated database with keys and a server on it (SQLite and PostgreSQL)."""
    with Server(database_url, free_port(), prepare_database(database_url)) as running:
        yield running
