"""The learner fails, decisions go on: on the last good snapshot, with the failure in /healthz and
in the log.

``tests/experiments/test_learner.py`` covers a failing learn step in process; here:

- a real server (SQLite, PostgreSQL) whose learner meets a real failure: the database refuses
  new snapshots (a trigger, installed and dropped over the test's own connection). Decisions
  keep the last published version, /healthz answers 200 (the database is fine) but "degraded"
  with the error, the log has the traceback; once the trigger is gone the learner publishes
  again by itself;
- the learner's thread dying outright (anything but an ``Exception``, which the loop would
  catch and retry): /healthz must stop claiming a running learner, and the lock is released
  so that another process can lead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from test_service_http import context, quick_spec

from experiments.engine.learner import Learner, LearnerLock
from experiments.service.app import create_app
from experiments.settings import Settings
from experiments.store.connection import make_engine
from experiments.store.database import Database
from experiments.store.schema import upgrade

REFUSE_SNAPSHOTS = {
    "postgresql": [
        "CREATE FUNCTION refuse_snapshot() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'snapshot store unavailable'; END $$",
        "CREATE TRIGGER refuse_snapshot BEFORE INSERT ON policy_snapshot"
        " FOR EACH ROW EXECUTE FUNCTION refuse_snapshot()",
    ],
    "sqlite": [
        "CREATE TRIGGER refuse_snapshot BEFORE INSERT ON policy_snapshot"
        " BEGIN SELECT RAISE(ABORT, 'snapshot store unavailable'); END",
    ],
}
ALLOW_SNAPSHOTS = {
    "postgresql": ["DROP TRIGGER refuse_snapshot ON policy_snapshot"],
    "sqlite": ["DROP TRIGGER refuse_snapshot"],
}


def run_sql(database_url: str, statements: list[str]) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def wait_for(probe: Callable[[], Any], timeout: float = 20.0) -> Any:
    """The first truthy value of ``probe()`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_a_learner_that_cannot_publish_leaves_decisions_on_the_last_snapshot(
    logged_server: Any, database_url: str
) -> None:
    server = logged_server
    dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"

    def health() -> httpx.Response:
        return httpx.get(f"{server.base_url}/healthz", timeout=10)

    with server.client("admin") as admin, server.client("decide") as client:
        key = admin.post("/v1/experiments", json=quick_spec()).json()["key"]
        number = 0

        def decide() -> dict[str, Any]:
            nonlocal number
            number += 1
            path = f"/v1/experiments/{key}/decisions"
            answer = client.post(path, json={"customer_id": f"c{number}", "context": context()})
            assert answer.status_code == 200, answer.text
            return answer.json()

        def rewarded(count: int) -> None:
            """``count`` decisions clicked at once: a batch of final rewards (batch size 5)."""
            made = [decide() for _ in range(count)]
            items = [
                {
                    "outcome_id": f"click-{item['decision_id']}",
                    "decision_id": item["decision_id"],
                    "event": "click",
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
                for item in made
            ]
            assert client.post("/v1/outcomes", json={"outcomes": items}).status_code == 202

        def serves(version: int) -> bool:
            return decide()["policy_version"] == version

        rewarded(6)
        wait_for(lambda: serves(1))

        run_sql(database_url, REFUSE_SNAPSHOTS[dialect])
        rewarded(6)
        failing = wait_for(lambda: (body := health().json())["learner"]["last_error"] and body)
        answer = health()
        assert answer.status_code == 200  # the database is fine: only learning stopped
        assert failing["status"] == "degraded"
        assert failing["database"] == "ok"
        assert failing["learner"]["running"] is True
        assert "snapshot store unavailable" in failing["learner"]["last_error"]
        assert "[SQL:" not in failing["learner"]["last_error"]  # no statement, no parameters
        assert all(serves(1) for _ in range(20))  # the last good snapshot, every time

        run_sql(database_url, ALLOW_SNAPSHOTS[dialect])
        wait_for(lambda: serves(2))
        recovered = wait_for(lambda: (body := health().json())["status"] == "ok" and body)
        assert recovered["learner"]["last_error"] is None
        assert recovered["learner"]["published"] == 2

    server.stop()
    assert "learner step failed" in server.log
    assert "Traceback" in server.log
    assert "snapshot store unavailable" in server.log


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_dead_learner_thread_shows_in_healthz_and_frees_the_lock(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(database_url)

    def lead_then_die(self: Learner) -> list[int]:
        self.status.leader = self.lock.acquire()  # as run_once does
        assert self.status.leader
        raise SystemExit("killed")  # not an Exception: the loop does not catch it

    monkeypatch.setattr(Learner, "run_once", lead_then_die)
    app = create_app(Settings(database_url=database_url), start_learner=True)

    async def scenario() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://engage") as http,
        ):
            for _ in range(200):
                body = (await http.get("/healthz")).json()
                if body["learner"]["last_error"]:
                    break
                await asyncio.sleep(0.05)
            # While this server still runs, another process can take the lead (the SQLite
            # lease would otherwise hold for 10 s past the last renewal, the PostgreSQL lock
            # for as long as the process lives).
            other = make_engine(database_url)
            try:
                body["other_process_leads"] = LearnerLock(Database(other)).acquire()
            finally:
                other.dispose()
            return body

    with caplog.at_level(logging.CRITICAL, logger="engage.learner"):
        body = asyncio.run(scenario())
    assert body["status"] == "degraded"
    assert body["learner"]["running"] is False
    assert body["learner"]["leader"] is False  # it led before it died; the lock is released
    assert body["learner"]["last_error"] == "learner stopped: SystemExit: killed"
    assert body["other_process_leads"] is True
    assert "learner thread died" in caplog.text
