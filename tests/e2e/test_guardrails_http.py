"""The automatic stop over HTTP against a real server (SQLite and PostgreSQL): a treatment
that drives customers away stops itself on its retention guardrail through the server's own
learner, the status endpoint and the report say when and why, the control is served, and
only an admin's PATCH resumes it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
from e2e_support import Server

from bench.guardrails import world_spec

KEY = "guarded"


def wait_for_status(client: httpx.Client, status: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/experiments/{KEY}").json()
        if body["status"] == status or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def create_harmful(server: Server) -> None:
    """The experiment: half held out on the gentle message, the treatment sending the pushy
    one, a retention guardrail (margin 0.02, action stop), checked every half second."""
    spec = world_spec(KEY, harmful=True, share=0.5)
    spec["learner"] = {"interval_seconds": 0.5}
    with server.client("admin") as admin:
        assert admin.post("/v1/experiments", json=spec).status_code == 201


def drive_customers_away(server: Server) -> None:
    """200 customers decided for; treated ones churn with probability 0.6, held-out ones
    0.05 (seeded), so the retention difference is about -0.55 and its 95% always-valid
    interval about +-0.2: far beyond the margin of 0.02."""
    rng = np.random.default_rng(0)
    with server.client("decide") as client:
        answers = []
        for index in range(200):
            answer = client.post(
                f"/v1/experiments/{KEY}/decisions", json={"customer_id": f"c{index}"}
            )
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
        churn = {"treatment": 0.6, "holdout": 0.05}
        now = datetime.now(UTC).isoformat()
        outcomes = [
            {
                "outcome_id": f"churn-{index}",
                "decision_id": answer["decision_id"],
                "event": "churn",
                "occurred_at": now,
            }
            for index, answer in enumerate(answers)
            if rng.random() < churn[answer["group"]]
        ]
        assert client.post("/v1/outcomes", json={"outcomes": outcomes}).status_code == 202


def test_a_harmful_experiment_stops_itself_over_http(server: Server) -> None:
    """The treatment drives customers away (:func:`drive_customers_away`): the server's
    learner stops the experiment on its retention guardrail."""
    create_harmful(server)
    drive_customers_away(server)
    with server.client("read") as reader:
        stopped = wait_for_status(reader, "paused")
        assert stopped["status"] == "paused", stopped
        assert stopped["stop_reason"].startswith("guardrail retention:churn breached: ")
        assert stopped["stopped_at"] is not None
        report = reader.get(f"/v1/experiments/{KEY}/report").json()
        assert report["stop_reason"] == stopped["stop_reason"]
        assert report["stopped_at"] == stopped["stopped_at"]
        [guardrail] = report["checks"]["guardrails"]
        assert guardrail["status"] == "breached"
        assert guardrail["av_high"] < -0.02
        assert report["checks"]["sample_ratio"]["mismatch"] is False
        health = httpx.get(f"{server.base_url}/healthz").json()
        assert health["experiments_stopped_by_checks"] == 1
    with server.client("decide") as client:
        served = [
            client.post(f"/v1/experiments/{KEY}/decisions", json={"customer_id": f"n{index}"})
            for index in range(20)
        ]
        treated = [answer.json() for answer in served if answer.json()["group"] == "treatment"]
        assert treated
        assert all(answer["action"] == {"message": "gentle"} for answer in treated)
    with server.client("read") as reader:
        refused = reader.patch(f"/v1/experiments/{KEY}", json={"status": "running"})
        assert refused.status_code == 403
    with server.client("admin") as admin:
        bad = admin.patch(f"/v1/experiments/{KEY}", json={"status": "go"})
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "status"
        resumed = admin.patch(f"/v1/experiments/{KEY}", json={"status": "running"})
        assert resumed.status_code == 200, resumed.text
        body = resumed.json()
        assert (body["status"], body["stop_reason"]) == ("running", None)
        assert body["resumed_at"] is not None
        assert body["stopped_at"] == stopped["stopped_at"]
        time.sleep(1.5)  # three of the learner's check intervals: no new evidence, no stop
        assert admin.get(f"/v1/experiments/{KEY}").json()["status"] == "running"
        health = httpx.get(f"{server.base_url}/healthz").json()
        assert health["experiments_stopped_by_checks"] == 0


def test_guardrail_actions_set_over_http(server: Server) -> None:
    """PATCH switches the retention guardrail to alert: the breach is reported and the
    server's learner leaves the experiment running; switched back to stop, it stops it. Bad
    values are 422s naming the field, an unknown guardrail is refused by name, an unknown
    experiment is a 404 and a read key may not change actions."""
    create_harmful(server)
    with server.client("read") as reader:
        refused = reader.patch(f"/v1/experiments/{KEY}", json={"sample_ratio_action": "alert"})
        assert refused.status_code == 403
    with server.client("admin") as admin:
        for body, field, words in (
            (
                {"guardrail_actions": {"retention": "alert"}},
                "guardrail_actions",
                "['retention:churn']",
            ),
            (
                {"guardrail_actions": {"retention:churn": "pause"}},
                "guardrail_actions.retention:churn",
                "'stop' or 'alert'",
            ),
            ({"sample_ratio_action": 1}, "sample_ratio_action", "'stop' or 'alert'"),
        ):
            bad = admin.patch(f"/v1/experiments/{KEY}", json={**body, "status": "paused"})
            assert bad.status_code == 422, bad.text
            assert bad.json()["error"]["field"] == field
            assert words in bad.json()["error"]["message"]
        missing = admin.patch("/v1/experiments/nobody", json={"sample_ratio_action": "alert"})
        assert missing.status_code == 404
        changed = admin.patch(
            f"/v1/experiments/{KEY}",
            json={
                "guardrail_actions": {"retention:churn": "alert"},
                "sample_ratio_action": "alert",
            },
        )
        assert changed.status_code == 200, changed.text
        guardrails = changed.json()["spec"]["guardrails"]
        assert (guardrails["kpi"][0]["action"], guardrails["sample_ratio"]) == ("alert", "alert")
        assert changed.json()["status"] == "running"  # the refused PATCHes paused nothing
    drive_customers_away(server)
    with server.client("admin") as admin:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            report = admin.get(f"/v1/experiments/{KEY}/report").json()
            if report["checks"]["guardrails"][0]["status"] == "breached":
                break
            time.sleep(0.2)
        assert report["checks"]["guardrails"][0]["status"] == "breached"
        time.sleep(1.5)  # three of the learner's check intervals: breached, but only alerted
        assert admin.get(f"/v1/experiments/{KEY}").json()["status"] == "running"
        back = admin.patch(
            f"/v1/experiments/{KEY}", json={"guardrail_actions": {"retention:churn": "stop"}}
        )
        assert back.status_code == 200, back.text
        stopped = wait_for_status(admin, "paused")
        assert stopped["stop_reason"].startswith("guardrail retention:churn breached: ")
