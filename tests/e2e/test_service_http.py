"""End to end over HTTP against a real uvicorn server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from e2e_support import Server

from experiments.service.client import EngageClient, EngageError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def quick_spec() -> dict:
    """The quickstart example with a 2-second window so windows close inside the test."""
    spec = tomllib.loads((EXAMPLES / "quickstart.toml").read_text())
    spec["reward"]["window"] = "2s"
    spec["learner"] = {"batch_size": 5, "interval_seconds": 1}
    spec["holdout"] = {"share": 0.2}
    return spec


def context() -> dict:
    spec = tomllib.loads((EXAMPLES / "quickstart.toml").read_text())
    values: dict = {}
    for name, field in spec.get("context", {}).items():
        if field["type"] == "numeric":
            values[name] = field.get("min", 0) + 1
        elif field["type"] == "categorical":
            values[name] = field["levels"][0]
        else:
            values[name] = True
    return values


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_full_loop_survives_restart(server: Server) -> None:
    with server.client("admin") as admin:
        created = admin.post("/v1/experiments", json=quick_spec())
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        assert admin.post("/v1/experiments", json=quick_spec()).status_code == 409
        assert admin.get(f"/v1/experiments/{key}").json()["status"] == "running"
    with EngageClient(server.base_url, server.keys["decide"]) as client:
        made = [client.decide(key, f"c{number}", context()) for number in range(20)]
        assert {item["group"] for item in made} <= {"treatment", "holdout"}
        again = client.decide(key, "c0", context(), request_id="fixed-id")
        assert client.decide(key, "c0", context(), request_id="fixed-id") == again
        now = datetime.now(UTC)
        items = [
            {
                "outcome_id": f"click-{number}",
                "decision_id": item["decision_id"],
                "event": "click",
                "value": 1,
                "occurred_at": now.isoformat(),
            }
            for number, item in enumerate(made[:8])
        ]
        assert client.outcomes(items) == {"accepted": 8, "duplicates": 0}
        assert client.outcomes(items[:3]) == {"accepted": 0, "duplicates": 3}
        late = client.outcome(
            "click",
            1,
            now + timedelta(days=30),
            decision_id=made[10]["decision_id"],
            outcome_id="late-1",
        )
        assert late == {"accepted": 1, "duplicates": 0}

    with server.client("read") as reader:

        def learned() -> bool:
            return reader.get(f"/v1/experiments/{key}/report").json()["policy_version"] >= 1

        wait_for(learned)
        report = reader.get(f"/v1/experiments/{key}/report").json()
    assert report["decisions"]["total"] == 21
    assert report["rewards"]["total"] >= 8
    assert report["outcomes"]["total"] == 9

    server.stop()
    server.start()
    with server.client("read") as reader:
        after = reader.get(f"/v1/experiments/{key}/report").json()
    assert after["decisions"]["total"] == report["decisions"]["total"]
    assert after["outcomes"] == report["outcomes"]
    assert after["rewards"]["total"] >= report["rewards"]["total"]
    assert after["policy_version"] >= report["policy_version"]


def test_auth_scopes_and_errors(server: Server) -> None:
    url = server.base_url
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/v1/experiments").status_code == 401
    wrong = {"authorization": "Bearer egk_wrongwrongwrongwrongwrongwrongwrongwrong"}
    assert httpx.get(f"{url}/v1/experiments", headers=wrong).status_code == 401
    with server.client("decide") as decider:
        forbidden = decider.post("/v1/experiments", json=quick_spec())
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["field"] == "authorization"
    with server.client("admin") as admin:
        bad = admin.post("/v1/experiments", json={**quick_spec(), "key": "Bad Key"})
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "key"
        key = admin.post("/v1/experiments", json=quick_spec()).json()["key"]
        missing = admin.post("/v1/experiments/nope/decisions", json={"customer_id": "c"})
        assert missing.status_code == 404
        invalid = admin.post(
            f"/v1/experiments/{key}/decisions",
            json={"customer_id": "c", "context": {**context(), "unknown_field": 1}},
        )
        assert invalid.status_code == 422
        assert invalid.json()["error"]["field"].startswith("context.")
        extra = admin.post(
            f"/v1/experiments/{key}/decisions",
            json={"customer_id": "c", "context": context(), "surprise": True},
        )
        assert extra.status_code == 422
        assert extra.json()["error"]["field"] == "surprise"
        huge = admin.post("/v1/outcomes", content=b"{" + b" " * 2_000_000 + b"}")
        assert huge.status_code == 413
        assert admin.post(f"/v1/experiments/{key}/stop").json()["status"] == "stopped"
        stopped = admin.post(
            f"/v1/experiments/{key}/decisions", json={"customer_id": "c", "context": context()}
        )
        assert stopped.status_code == 409
    with EngageClient(url, server.keys["decide"]) as client, pytest.raises(EngageError) as error:
        client.decide("nope", "c", {})
    assert error.value.status == 404
