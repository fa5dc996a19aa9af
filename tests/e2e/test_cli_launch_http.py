"""Launching from the CLI (issue 12, item 8) with safe promotion shown everywhere (item 4):
`engage experiments create` and `set` against the store a real server uses, decisions and
outcomes over HTTP, the report read with `engage report`; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from e2e_support import ENGAGE, Server, engage, free_port, prepare_in_process

KEY = "launch"
SPEC = """
key = "launch"
description = "launched from the CLI"

[factors]
offer = ["a", "b", "c"]

[policy]
name = "epsilon_greedy"
params = { epsilon = 0.0 }

[reward]
kind = "event"
event = "click"
window = "1h"

[holdout]
share = 0.0
policy = "fixed"
action = { offer = "b" }

[learner]
batch_size = 20
interval_seconds = 3600

[promotion]
enabled = true
min_rows = 20
"""


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    """A server on a database migrated and keyed in-process (the CLI commands under test are
    the ones this test runs; each process start costs seconds on a loaded machine)."""
    with Server(database_url, free_port(), prepare_in_process(database_url)) as running:
        yield running


def refused(*args: str) -> str:
    """Run the CLI expecting bad input: exit code 2 and one error line, returned."""
    done = subprocess.run(  # noqa: S603 - our own console script with fixed arguments
        [ENGAGE, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def decide(client: httpx.Client, customer: str) -> dict:
    answer = client.post(f"/v1/experiments/{KEY}/decisions", json={"customer_id": customer})
    assert answer.status_code == 200, answer.text
    return answer.json()


def click_offer_a(client: httpx.Client, prefix: str, clicks: int) -> None:
    """Decide until ``clicks`` customers got offer "a"; each of them clicks (a reward of 1,
    final at once); the others do not (their rewards wait for the hour-long window)."""
    number = 0
    while clicks:
        made = decide(client, f"{prefix}{number}")
        number += 1
        if made["action"]["offer"] != "a":
            continue
        outcome = {
            "outcome_id": f"o-{made['decision_id']}",
            "decision_id": made["decision_id"],
            "event": "click",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        sent = client.post("/v1/outcomes", json={"outcomes": [outcome]})
        assert sent.status_code == 202, sent.text
        clicks -= 1


def promotions(client: httpx.Client) -> list[dict]:
    answer = client.get(f"/v1/experiments/{KEY}/promotions")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_launch_decide_set_and_report_from_the_cli(server: Server, tmp_path: Path) -> None:
    url = ["--database-url", server.database_url]
    spec_file = tmp_path / "launch.toml"
    spec_file.write_text(SPEC)
    created = json.loads(
        engage("experiments", "create", str(spec_file), "--paused", "--json", *url).stdout
    )
    assert (created["key"], created["status"]) == (KEY, "paused")

    # The same refusal, word for word, as POST /v1/experiments (more in tests/cli).
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.replace("min_rows = 20", "min_rows = 1"))
    with server.client("admin") as admin:
        answer = admin.post("/v1/experiments", json=tomllib.loads(bad.read_text()))
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["field"] == "promotion.min_rows"
        assert refused("experiments", "create", str(bad), *url) == f"error: {error['message']}"

    with server.client("decide") as client:
        paused = decide(client, "p0")
        assert (paused["action"], paused["propensity"]) == ({"offer": "b"}, 1.0)
        with server.client("admin") as admin:
            assert admin.post(f"/v1/experiments/{KEY}/resume").status_code == 200

        click_offer_a(client, "first", 20)  # learned into v1, a pending candidate
        with server.client("read") as reader:
            wait_for(lambda: [p["status"] for p in promotions(reader)] == ["pending"])
            click_offer_a(client, "second", 20)  # v1 judged on these, then v2 learned
            wait_for(lambda: len(promotions(reader)) == 2)
            newest, first = promotions(reader)
        assert (newest["version"], newest["status"]) == (2, "pending")
        assert (first["version"], first["status"], first["rows"]) == (1, "promoted", 20)
        # Every fresh reward is 1 (only clicks are final): both policies' SNIPS value is 1.
        assert (first["candidate_value"], first["serving_value"]) == (1.0, 1.0)
        assert first["difference"] == 0.0
        assert first["reason"].startswith("promoted: SNIPS candidate v1 1 vs serving v0 1")

        # v1 learned that "a" clicks: greedy "a" under the spec's floor 0.01 of 3 actions. The
        # action is drawn, so "b" or "c" come with probability 0.01 / 3 each (1 in 150 per
        # decision): each answer's propensity must be its action's, and "a" must come.
        wait_for(lambda: decide(client, "served")["policy_version"] == 1)
        answers = [decide(client, f"v1-{attempt}") for attempt in range(6)]
        for served in answers:
            greedy = served["action"] == {"offer": "a"}
            expected = 0.99 + 0.01 / 3 if greedy else 0.01 / 3
            assert abs(served["propensity"] - expected) < 1e-12, served
        assert sum(served["action"] == {"offer": "a"} for served in answers) >= 4

        # `set` reaches the running server (it rereads the settings within a second).
        changed = json.loads(
            engage("experiments", "set", KEY, "--exploration-floor", "1", "--json", *url).stdout
        )
        assert (changed["exploration_floor"], changed["apprentice"]) == (1.0, False)
        wait_for(lambda: abs(decide(client, "floor")["propensity"] - 1 / 3) < 1e-12)
        engage("experiments", "set", KEY, "--apprentice", *url)
        # Under the floor of 1, "b" comes up a third of the time before the server rereads
        # the settings: apprentice mode shows as "b" with propensity 1.
        wait_for(
            lambda: (
                (answer := decide(client, "apprentice"))["action"] == {"offer": "b"}
                and answer["propensity"] == 1.0
            )
        )
        assert decide(client, "apprentice-2")["propensity"] == 1.0
    with server.client("read") as reader:
        stored = reader.get(f"/v1/experiments/{KEY}").json()
        assert (stored["exploration_floor"], stored["apprentice"]) == (1.0, True)
        assert stored["promotions"][1] == first
        report = reader.get(f"/v1/experiments/{KEY}/report").json()

    shown = json.loads(engage("experiments", "show", KEY, "--json", *url).stdout)
    assert [p["status"] for p in shown["promotions"]] == ["pending", "promoted"]
    assert shown["promotions"] == stored["promotions"]

    cli_report = json.loads(engage("report", KEY, "--json", "--no-track", *url).stdout)
    assert cli_report["decisions"]["total"] == report["decisions"]["total"]
    assert cli_report["policy_version"] == report["policy_version"] == 1
    assert cli_report["promotions"] == report["promotions"] == shown["promotions"]
    text = engage("report", KEY, "--no-track", *url).stdout
    assert "v1: promoted: SNIPS candidate v1 1 vs serving v0 1" in text
    assert f"decisions {report['decisions']['total']}," in text
