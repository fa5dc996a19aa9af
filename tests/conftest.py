"""Database fixtures: tests that ask for a database run once on SQLite and once on PostgreSQL.

Written so it can move to ``tests/conftest.py`` unchanged once other packages need a database.

- ``database_url``: the URL of a fresh, empty database (no schema);
- ``migrated_database_url``: the URL of a fresh database at the newest revision;
- ``engine``: an engine on a ``migrated_database_url``; ``session``: a session on it.

Both URL fixtures are parametrised over the dialects, so a test uses one of them, not both.

PostgreSQL is the server on 127.0.0.1:5432 (database ``test``, user ``postgres``, trust auth), or
``ENGAGE_TEST_POSTGRES_URL``. Each test gets its own database ``engage_test_<hex>``, dropped
afterwards; migrated ones are copied from a template migrated once per session (faster than
migrating each). When the server is unreachable the PostgreSQL half is skipped locally, but fails
when ``CI`` is set: CI must exercise the real database.

Parallel runs (``make test`` runs pytest-xdist with ``--dist loadgroup``): every test gets an
``xdist_group``, so a group runs on one worker, in collection order. The tests that load the
machine or measure a window of time (``LOAD_SENSITIVE``) form one group, so they never run beside
each other; the Ray sweep tests another (one local Ray at a time); every other module is its own
group, so its module-scoped fixtures are built once. Each worker has its own PostgreSQL template
and databases (random names) and its own block of loopback ports (``port_support``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from database_support import postgres_database
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import Session

from experiments.store.connection import make_engine
from experiments.store.schema import upgrade

POSTGRES_URL_ENV = "ENGAGE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DIALECTS = ["sqlite", "postgresql"]
#: Paths (relative to ``tests/``) whose tests share the one serial xdist group ``load``: real
#: servers under load, outage and crash windows, the benchmarks, leases timed in fractions of a
#: second, and Chromium.
LOAD_SENSITIVE = (
    "reliability/",
    "bench/",
    "tracking/test_ui_browser.py",
    "experiments/test_learner.py",
)
#: Tests that each start a local Ray: kept on one worker.
RAY = ("experiments/test_sweep.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test its ``xdist_group`` (see the module docstring)."""
    tests = config.rootpath / "tests"
    for item in items:
        path = item.path.relative_to(tests).as_posix()
        if path.startswith(LOAD_SENSITIVE):
            group = "load"
        elif path.startswith(RAY):
            group = "ray"
        else:
            group = path
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A URL of a PostgreSQL database from which test databases are created and dropped."""
    url = os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is unreachable at {url}: {exc}".strip()
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: the store tests need the real database)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    """The name of a PostgreSQL database migrated to the newest revision, to copy from."""
    with postgres_database(postgres_admin_url) as url:
        upgrade(url)  # disposes of its engine: a template must have no open connections
        yield make_url(url).database or ""


@pytest.fixture(params=DIALECTS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of a fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'engage.db'}"
        return
    with postgres_database(request.getfixturevalue("postgres_admin_url")) as url:
        yield url


@pytest.fixture(params=DIALECTS)
def migrated_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of a fresh database at the newest revision."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'engage.db'}"
        upgrade(url)
        yield url
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    template = request.getfixturevalue("postgres_template")
    with postgres_database(admin_url, template=template) as url:
        yield url


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database at the newest revision."""
    engine = make_engine(migrated_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the migrated database (tests commit as the engine would)."""
    with Session(engine) as session:
        yield session
