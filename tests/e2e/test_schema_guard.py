"""`engage serve` (the real process) refuses a database whose schema it does not know.

It must exit with code 2 and one readable line before binding the port: a server that started
on an unmigrated or newer schema would fail on the first request instead.
"""

from __future__ import annotations

import subprocess

from e2e_support import ENGAGE, free_port
from sqlalchemy import text

from experiments.store.connection import make_engine
from experiments.store.schema import current_revision, upgrade


def serve(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script with fixed arguments
        [ENGAGE, "serve", "--port", str(free_port()), "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert "serving on" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_serve_refuses_an_unmigrated_database(database_url: str) -> None:
    line = one_error_line(serve(database_url))
    # A fresh SQLite database is a file not made yet: it is refused before it is created.
    assert ("no database at" if database_url.startswith("sqlite") else "no engage schema") in line
    assert "engage db upgrade" in line
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None  # refused, and touched nothing
    finally:
        engine.dispose()


def test_serve_refuses_an_unknown_revision(database_url: str) -> None:
    """A revision this engage does not ship: a newer engage migrated the database."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'ffff0000beef'"))
        line = one_error_line(serve(database_url))
        assert "ffff0000beef" in line
        assert "unknown" in line
        assert "run `engage db upgrade`" not in line  # upgrading the database cannot help
        assert current_revision(engine) == "ffff0000beef"
    finally:
        engine.dispose()
