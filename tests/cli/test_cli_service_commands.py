"""The service-side commands through typer's CliRunner: db upgrade, keys create, serve, --help.

Every failure a user can cause (bad database URL, unmigrated database, remote bind) must end in
one readable ``error:`` line and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import text
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app
from experiments.store.api_keys import verify_api_key
from experiments.store.connection import make_engine
from experiments.store.key_hashing import API_KEY_PREFIX
from experiments.store.models import ApiKey
from experiments.store.schema import current_revision, head_revision

runner = CliRunner()

#: Every interface: the address serve must refuse without --allow-remote.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - never bound: uvicorn is not started in these tests

#: URLs that cannot work, each for a different reason: unparseable, unknown dialect, nobody
#: listening, a SQLite file in a directory that does not exist.
BAD_URLS = [
    "not a database url",
    "nonsense://user@host/db",
    "postgresql://postgres@127.0.0.1:1/none",
    "sqlite:////nonexistent-engage-dir/sub/engage.db",
]


def assert_one_error_line(result, *, code: int = 2) -> str:
    """The command failed with ``code`` and printed exactly one ``error:`` line, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def upgrade(url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 0, result.output


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("db", "keys", "serve", "demo"):
        assert command in result.stdout
    for group, command in (
        ("db", "upgrade"),
        ("keys", "create"),
        ("keys", "list"),
        ("keys", "revoke"),
    ):
        shown = runner.invoke(app, [group, "--help"])
        assert shown.exit_code == 0
        assert command in shown.stdout


def test_db_upgrade_migrates_to_head_and_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
        for _ in range(2):
            result = runner.invoke(app, ["db", "upgrade", "--database-url", database_url])
            assert result.exit_code == 0, result.output
            assert result.stdout.strip() == f"database at revision {head_revision()}"
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_db_upgrade_reads_the_url_from_the_environment(database_url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env={"ENGAGE_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(database_url: str) -> None:
    upgrade(database_url)
    shown = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--scope",
            "decide",
            "--name",
            "checkout",
            "--database-url",
            database_url,
        ],
    )
    assert shown.exit_code == 0, shown.output
    plain_key = shown.stdout.splitlines()[0].strip()
    assert plain_key.startswith(API_KEY_PREFIX)
    assert shown.stdout.count(plain_key) == 1
    assert "not shown again" in shown.stdout

    as_json = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--scope",
            "decide",
            "--scope",
            "read",
            "--json",
            "--database-url",
            database_url,
        ],
    )
    assert as_json.exit_code == 0, as_json.output
    created = json.loads(as_json.stdout)
    assert set(created) == {"key", "id", "scopes"}
    assert created["scopes"] == "decide,read"

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            rows = session.exec(select(ApiKey).order_by(ApiKey.id)).all()
            assert [row.scopes for row in rows] == ["decide", "decide,read"]
            assert [row.name for row in rows] == ["checkout", ""]
            for row in rows:
                stored = " ".join(str(value) for value in row.model_dump().values())
                assert plain_key not in stored
                assert created["key"] not in stored
            assert verify_api_key(session, key=plain_key).id == rows[0].id
            assert verify_api_key(session, key=created["key"]).id == created["id"]
    finally:
        engine.dispose()


def test_keys_create_rejects_an_unknown_scope(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'engage.db'}"
    upgrade(url)
    result = runner.invoke(app, ["keys", "create", "--scope", "root", "--database-url", url])
    assert result.exit_code == 2
    assert "root" in result.output


def test_keys_create_on_an_unmigrated_database_is_one_line(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'engage.db'}"
    line = assert_one_error_line(
        runner.invoke(app, ["keys", "create", "--scope", "admin", "--database-url", url])
    )
    assert "engage db upgrade" in line


def test_serve_refuses_a_remote_host_without_allow_remote() -> None:
    result = runner.invoke(app, ["serve", "--host", ALL_INTERFACES])
    line = assert_one_error_line(result)
    assert line == "error: --host 0.0.0.0 is not a loopback address; pass --allow-remote to bind it"
    assert result.stdout == ""


def test_serve_with_allow_remote_hands_over_to_uvicorn(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --allow-remote the checks pass and uvicorn gets the host (not started for real)."""
    url = f"sqlite:///{tmp_path / 'engage.db'}"
    upgrade(url)
    calls = []
    monkeypatch.setattr(
        "experiments.service.server.run_server", lambda **kwargs: calls.append(kwargs)
    )
    bound: list[tuple[str, int]] = []

    class FakeSocket:
        def getsockname(self) -> tuple[str, int]:
            return bound[0]

    fake = FakeSocket()
    monkeypatch.setattr(
        "experiments.service.server.listen",
        lambda host, port: bound.append((host, port)) or fake,
    )
    # serve exports the settings for its workers: restore the environment afterwards.
    monkeypatch.setenv("ENGAGE_DATABASE_URL", "unset-by-test")
    monkeypatch.setenv("ENGAGE_LEARNER", "unset-by-test")
    result = runner.invoke(
        app,
        [
            "serve",
            "--host",
            ALL_INTERFACES,
            "--allow-remote",
            "--port",
            "8123",
            "--no-learner",
            "--database-url",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    (kwargs,) = calls
    assert bound == [(ALL_INTERFACES, 8123)]
    assert kwargs == {"host": ALL_INTERFACES, "port": 8123, "workers": 1, "sock": fake}
    # The worker processes build their settings from the environment serve exported.
    assert os.environ["ENGAGE_DATABASE_URL"] == url
    assert os.environ["ENGAGE_LEARNER"] == "false"


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["keys", "create", "--scope", "admin"],
        ["keys", "list"],
        ["serve", "--port", "0"],
    ],
    ids=["db-upgrade", "keys-create", "keys-list", "serve"],
)
def test_bad_database_url_is_one_readable_line(command: list[str], url: str) -> None:
    result = runner.invoke(app, [*command, "--database-url", url])
    line = assert_one_error_line(result)
    assert "Background on this error" not in line


def test_serve_refuses_an_unmigrated_database(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'engage.db'}"
    line = assert_one_error_line(runner.invoke(app, ["serve", "--database-url", url]))
    assert "engage db upgrade" in line


def test_serve_refuses_an_unknown_revision(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'engage.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))
    finally:
        engine.dispose()
    line = assert_one_error_line(runner.invoke(app, ["serve", "--database-url", url]))
    assert "ffff9999" in line
    assert "unknown" in line


def test_keys_list_and_revoke(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'engage.db'}"
    upgrade(url)
    created = [
        json.loads(
            runner.invoke(
                app, ["keys", "create", "--scope", scope, "--json", "--database-url", url]
            ).stdout
        )
        for scope in ("admin", "read")
    ]
    listed = runner.invoke(app, ["keys", "list", "--json", "--database-url", url])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(row["id"], row["scopes"], row["revoked_at"]) for row in rows] == [
        (created[0]["id"], "admin", None),
        (created[1]["id"], "read", None),
    ]
    assert all(key["key"] not in listed.stdout for key in created)

    revoked = runner.invoke(app, ["keys", "revoke", str(created[0]["id"]), "--database-url", url])
    assert revoked.exit_code == 0, revoked.output
    assert f"API key {created[0]['id']} revoked" in revoked.stdout
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            assert verify_api_key(session, key=created[0]["key"]) is None
            assert verify_api_key(session, key=created[1]["key"]) is not None
    finally:
        engine.dispose()
    active = json.loads(
        runner.invoke(app, ["keys", "list", "--json", "--database-url", url]).stdout
    )
    assert [row["id"] for row in active] == [created[1]["id"]]
    every = runner.invoke(app, ["keys", "list", "--all", "--database-url", url])
    assert every.exit_code == 0
    assert "admin" in every.stdout
    assert "read" in every.stdout

    again = assert_one_error_line(
        runner.invoke(app, ["keys", "revoke", str(created[0]["id"]), "--database-url", url])
    )
    assert f"no active API key with id {created[0]['id']}" in again
