"""Two `engage serve` processes on one database (a PostgreSQL database, a SQLite file), each with
its own learner, under concurrent decisions and outcomes from several clients.

Afterwards the database must hold every accepted decision and outcome exactly once (retries with
the same request id or outcome id on the other server deduplicated), at most one reward per
decision, and snapshot versions 1..N without gaps or duplicates; while it ran, at most one
process may have reported itself the learner's leader at any sampled moment.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from e2e_support import Server, free_port
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from test_service_http import context, quick_spec

from experiments.store import (
    Decision,
    Outcome,
    PolicySnapshot,
    Reward,
    make_engine,
    queries,
    upgrade,
)

CUSTOMERS = 200  # one decision each, and one outcome each
WORKERS = 8
SETTLE_SECONDS = 45.0


def spec() -> dict[str, Any]:
    """A 1-second window and small batches, so several snapshots get published in the test."""
    base = quick_spec()
    return {
        **base,
        "key": "twin",
        "reward": {**base["reward"], "window": "1s"},
        "learner": {"batch_size": 5, "interval_seconds": 0.5},
    }


def prepare_in_process(database_url: str) -> dict[str, str]:
    """Migrate and create one key per scope without the CLI: the same result as
    ``e2e_support.prepare_database`` minus four process starts (the CLI has its own tests)."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            keys = {
                scope: queries.create_api_key(session, scopes=[scope])[1]
                for scope in ("admin", "decide", "read")
            }
            session.commit()
    finally:
        engine.dispose()
    return keys


@pytest.fixture
def servers(database_url: str) -> Iterator[tuple[Server, Server]]:
    keys = prepare_in_process(database_url)
    ports = {free_port()}
    while len(ports) < 2:
        ports.add(free_port())
    pair = tuple(Server(database_url, port, keys) for port in sorted(ports))
    try:
        for server in pair:
            server.start()
        yield pair
    finally:
        for server in pair:
            server.stop()


class Traffic:
    """Several client threads against both servers; every answer kept for the checks."""

    def __init__(self, servers: tuple[Server, Server], key: str) -> None:
        self.servers = servers
        self.key = key
        self.local = threading.local()
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.decisions: dict[str, list[dict[str, Any]]] = defaultdict(list)  # by request id
        self.accepted: Counter[str] = Counter()  # by outcome id, summed over every send
        self.sends: Counter[str] = Counter()
        self.named: dict[str, str] = {}  # outcome id -> decision id it names
        self.owner: dict[str, str] = {}  # outcome id -> customer id (customer-only outcomes)
        self.clients: list[httpx.Client] = []

    def http(self, index: int) -> httpx.Client:
        clients = getattr(self.local, "clients", None)
        if clients is None:
            clients = self.local.clients = [server.client("decide") for server in self.servers]
            with self.lock:
                self.clients.extend(clients)
        return clients[index]

    def both(self, first: Any, second: Any) -> None:
        """Run two calls at the same moment (one in a helper thread)."""
        barrier = threading.Barrier(2)

        def run(call: Any) -> None:
            barrier.wait()
            try:
                call()
            except Exception as error:  # reported by the test, not lost in a helper thread
                self.failures.append(f"{type(error).__name__}: {error}")

        helper = threading.Thread(target=run, args=(second,))
        helper.start()
        run(first)
        helper.join()

    def decide(self, index: int, customer: str, request_id: str) -> None:
        body = {"customer_id": customer, "context": context(), "request_id": request_id}
        answer = self.http(index).post(f"/v1/experiments/{self.key}/decisions", json=body)
        if answer.status_code != 200:
            self.failures.append(f"decide {answer.status_code} {answer.text}")
            return
        with self.lock:
            self.decisions[request_id].append(answer.json())

    def send(self, index: int, item: dict[str, Any]) -> None:
        answer = self.http(index).post("/v1/outcomes", json={"outcomes": [item]})
        with self.lock:
            self.sends[item["outcome_id"]] += 1
        if answer.status_code != 202:
            self.failures.append(f"outcome {answer.status_code} {answer.text}")
            return
        counts = answer.json()
        assert counts["accepted"] + counts["duplicates"] == 1
        with self.lock:
            self.accepted[item["outcome_id"]] += counts["accepted"]

    def customer(self, number: int) -> None:
        """One customer's story: a decision (some retried on the other server, some of those at
        the same moment), then one outcome (some sent to both servers)."""
        home, other = number % 2, (number + 1) % 2
        customer, request_id = f"c{number}", f"req-{number}"
        try:
            if number % 10 == 0:
                self.both(
                    lambda: self.decide(home, customer, request_id),
                    lambda: self.decide(other, customer, request_id),
                )
            else:
                self.decide(home, customer, request_id)
                if number % 5 == 0:
                    self.decide(other, customer, request_id)
            if not self.decisions.get(request_id):
                return
            item: dict[str, Any] = {"event": "click", "value": 1.0}
            item["occurred_at"] = datetime.now(UTC).isoformat()
            if number % 2 == 0:  # names the decision
                item["outcome_id"] = f"click-{number}"
                item["decision_id"] = self.decisions[request_id][0]["decision_id"]
                self.named[item["outcome_id"]] = item["decision_id"]
            else:  # names only the customer: attributed to their open decision
                item.update(outcome_id=f"visit-{number}", experiment=self.key)
                item["customer_id"] = customer
                self.owner[item["outcome_id"]] = customer
            if number % 8 == 0:
                self.both(lambda: self.send(other, item), lambda: self.send(home, item))
            else:
                self.send(other, item)
                if number % 4 == 0 or number % 6 == 1:
                    self.send(home, item)
        except Exception as error:  # reported by the test, not lost in a worker thread
            self.failures.append(f"customer {number}: {type(error).__name__}: {error}")

    def run(self) -> None:
        try:
            with ThreadPoolExecutor(WORKERS) as pool:
                list(pool.map(self.customer, range(CUSTOMERS)))
        finally:
            for client in self.clients:
                client.close()


def learner_status(server: Server) -> dict[str, Any]:
    return httpx.get(f"{server.base_url}/healthz", timeout=10).json()["learner"]


def count(engine: Engine, *conditions: Any) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Reward).where(*conditions)).one()


class LeaderSampler(threading.Thread):
    """Polls both servers' /healthz: which of them says it is the learner's leader."""

    def __init__(self, servers: tuple[Server, Server]) -> None:
        super().__init__(daemon=True)
        self.servers = servers
        self.samples: list[tuple[bool, bool]] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def leaders(self) -> tuple[bool, bool]:
        first, second = (learner_status(server) for server in self.servers)
        return first["leader"], second["leader"]

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.samples.append(self.leaders())
            except httpx.HTTPError as error:  # /healthz must answer throughout
                self.errors.append(f"{type(error).__name__}: {error}")
            self.halt.wait(0.05)


def test_two_servers_share_one_database(servers: tuple[Server, Server]) -> None:
    with servers[0].client("admin") as admin:
        created = admin.post("/v1/experiments", json=spec())
        assert created.status_code == 201, created.text
    key = created.json()["key"]
    sampler = LeaderSampler(servers)
    sampler.start()
    traffic = Traffic(servers, key)
    engine = make_engine(servers[0].database_url)
    try:
        traffic.run()
        assert traffic.failures == []
        # Let every window close and the leader learn every reward.
        deadline = time.monotonic() + SETTLE_SECONDS
        while count(engine) < CUSTOMERS or count(engine, col(Reward.learned_version).is_(None)):
            assert time.monotonic() < deadline, "rewards not all joined and learned in time"
            time.sleep(0.2)
        with Session(engine) as session:
            decisions = session.exec(select(Decision)).all()
            outcomes = session.exec(select(Outcome)).all()
            reward_rows = session.exec(select(Reward)).all()
            snapshots = session.exec(select(PolicySnapshot).order_by(PolicySnapshot.id)).all()
        # The leader counts a publication just after committing it: wait for the last one.
        while sum(learner_status(server)["published"] for server in servers) < len(snapshots):
            assert time.monotonic() < deadline, "publications not all counted in time"
            time.sleep(0.05)
        health = [learner_status(server) for server in servers]
    finally:
        sampler.halt.set()
        sampler.join()
        engine.dispose()

    # Decisions: one row per request id; every answer to a retry is the first answer.
    assert len(traffic.decisions) == CUSTOMERS
    for answers in traffic.decisions.values():
        assert all(answer == answers[0] for answer in answers), answers
    by_id = {decision.id: decision for decision in decisions}
    assert len(by_id) == len(decisions) == CUSTOMERS
    assert Counter(decision.request_id for decision in decisions) == Counter(
        dict.fromkeys(traffic.decisions, 1)
    )
    for request_id, (answer, *_) in traffic.decisions.items():
        row = by_id[answer["decision_id"]]
        assert row.request_id == request_id
        assert (row.action, row.group) == (answer["action"], answer["group"])
        assert row.propensity == pytest.approx(answer["propensity"])

    # Outcomes: each accepted exactly once over every send, stored once, duplicates counted.
    assert set(traffic.accepted) == set(traffic.sends)
    assert len(traffic.sends) == CUSTOMERS
    assert all(accepted == 1 for accepted in traffic.accepted.values()), traffic.accepted
    assert sum(traffic.sends.values()) > CUSTOMERS  # some were sent to both servers
    assert Counter(outcome.outcome_id for outcome in outcomes) == Counter(
        dict.fromkeys(traffic.sends, 1)
    )
    for outcome in outcomes:
        if outcome.outcome_id in traffic.named:
            assert outcome.decision_id == traffic.named[outcome.outcome_id]
        elif outcome.decision_id is not None:  # unattributed if its window had closed
            assert by_id[outcome.decision_id].customer_id == traffic.owner[outcome.outcome_id]

    # Rewards: one per decision, each learned by exactly one snapshot.
    assert sorted(reward.decision_id for reward in reward_rows) == sorted(by_id)
    versions = [snapshot.version for snapshot in snapshots]
    assert len(versions) >= 3, "expected several snapshots in the test"
    assert sorted(versions) == list(range(1, len(versions) + 1))  # no gap, no duplicate
    assert versions == sorted(versions)  # published in version order
    learned = Counter(reward.learned_version for reward in reward_rows)
    previous = 0
    for snapshot in sorted(snapshots, key=lambda row: row.version):
        assert snapshot.rows_learned - previous == learned[snapshot.version]
        previous = snapshot.rows_learned
    assert previous == CUSTOMERS
    assert {decision.policy_version for decision in decisions} <= set(range(len(versions) + 1))

    # One learner at a time: never two leaders at once; everything was published by leaders.
    assert sampler.errors == []
    assert sampler.samples
    assert (True, True) not in sampler.samples
    assert any(any(sample) for sample in sampler.samples)
    assert sum(state["published"] for state in health) == len(versions)
    assert [state["leader"] for state in health].count(True) == 1
    assert all(state["last_error"] is None for state in health), health
