"""EngageClient's retries are safe against the real server: a request the server processed but
whose response was lost (a read timeout) is retried with the same request id or outcome id, and
nothing is written twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from e2e_support import Server, free_port, prepare_in_process
from sqlalchemy import func
from sqlmodel import Session, select
from test_service_http import context, quick_spec

from experiments.service.client import EngageClient
from experiments.store.connection import make_engine
from experiments.store.models import Decision, Outcome


class LosesResponses(httpx.BaseTransport):
    """Forwards every request to the real server, then loses the first ``lose`` responses: the
    server did the work, the client sees a read timeout."""

    def __init__(self, lose: int = 1) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = lose
        self.forwarded: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()  # the server has answered: the work is done and committed
        self.forwarded.append(request)
        if self.lose > 0:
            self.lose -= 1
            response.close()
            raise httpx.ReadTimeout("response lost (simulated)", request=request)
        return response

    def close(self) -> None:
        self.inner.close()

    def bodies(self) -> list[dict]:
        return [json.loads(request.content) for request in self.forwarded]


def count(database_url: str, model, *conditions) -> int:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return session.exec(select(func.count()).select_from(model).where(*conditions)).one()
    finally:
        engine.dispose()


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    """A server on a database prepared in-process (quicker than the shared fixture's CLI)."""
    with Server(database_url, free_port(), prepare_in_process(database_url)) as running:
        yield running


@pytest.fixture
def experiment(server: Server) -> Iterator[str]:
    with server.client("admin") as admin:
        created = admin.post("/v1/experiments", json=quick_spec())
        assert created.status_code == 201, created.text
        yield created.json()["key"]


def client(server: Server, transport: LosesResponses, retries: int = 3) -> EngageClient:
    return EngageClient(
        server.base_url, server.keys["decide"], retries=retries, backoff=0.01, transport=transport
    )


def test_retries_after_lost_responses_never_write_twice(server: Server, experiment: str) -> None:
    """A lost response retried by the client (decide, then outcome), then every response lost
    (the client gives up). One server per dialect for all of it: starting one is the slow part."""
    transport = LosesResponses(lose=1)
    with client(server, transport) as engage:
        decision = engage.decide(experiment, "alice", context())
        assert len(transport.forwarded) == 2  # processed twice by the server ...
        first, retry = transport.bodies()
        assert first["request_id"] == retry["request_id"]  # ... as the same request
        rows = count(server.database_url, Decision, Decision.customer_id == "alice")
        assert rows == 1
        again = engage.decide(experiment, "alice", context(), request_id=first["request_id"])
        assert again == decision

        transport.lose = 1
        transport.forwarded.clear()
        answer = engage.outcome(
            "click", 1.0, datetime.now(UTC), decision_id=decision["decision_id"]
        )
        assert answer == {"accepted": 0, "duplicates": 1}  # the lost attempt was accepted
        first, retry = transport.bodies()
        assert first == retry
        outcome_id = first["outcomes"][0]["outcome_id"]
    assert count(server.database_url, Outcome, Outcome.outcome_id == outcome_id) == 1
    assert count(server.database_url, Outcome) == 1
    with server.client("read") as reader:
        report = reader.get(f"/v1/experiments/{experiment}/report").json()
    assert report["decisions"]["total"] == 1
    assert report["outcomes"]["total"] == 1

    # Every response lost: the client gives up after ``retries``; the caller may retry later
    # with the same request id and gets the decision the server made on the first attempt.
    transport = LosesResponses(lose=10)
    with client(server, transport, retries=2) as engage, pytest.raises(httpx.ReadTimeout):
        engage.decide(experiment, "bob", context(), request_id="checkout-42")
    assert len(transport.forwarded) == 3
    assert {body["request_id"] for body in transport.bodies()} == {"checkout-42"}
    assert count(server.database_url, Decision, Decision.request_id == "checkout-42") == 1

    with client(server, LosesResponses(lose=0)) as engage:
        decision = engage.decide(experiment, "bob", context(), request_id="checkout-42")
    engine = make_engine(server.database_url)
    try:
        with Session(engine) as session:
            (row,) = session.exec(select(Decision).where(Decision.customer_id == "bob")).all()
    finally:
        engine.dispose()
    assert decision["decision_id"] == row.id
    assert decision["propensity"] == pytest.approx(row.propensity)
    assert decision["action"] == row.action
