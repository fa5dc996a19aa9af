"""Two and four `engage serve` processes on one database, each with its own learner, under
concurrent decisions and outcomes from several clients; then the learner's leader is killed.

Afterwards the database must hold every accepted decision and outcome exactly once (retries with
the same request id or outcome id on another server deduplicated, some at the same moment), at
most one reward per decision, each learned by exactly one snapshot, and snapshot versions 1..N
without gaps or duplicates, published in order. Throughout, at most one process says it leads
the learner (sampled on /healthz) and exactly one holds the learner lock (the advisory lock on
PostgreSQL, the lease row on SQLite); once the leader is killed (SIGKILL) another process takes
over and learns the rest. No process ever serves an older policy version than it served before.

PostgreSQL with two and four processes; SQLite (one file) with two.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from e2e_support import Server, free_port, prepare_in_process
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select
from test_service_http import context, quick_spec

from experiments.engine.learner import ADVISORY_LOCK_ID, LEASE_NAME
from experiments.store.connection import make_engine
from experiments.store.models import Decision, LearnerLease, Outcome, PolicySnapshot, Reward

CUSTOMERS = 200  # per phase: one decision each, and one outcome each
THREADS = 8
SETTLE_SECONDS = 30.0  # SQLite: the killed leader's 10-second lease must run out first
KILL_AFTER_SECONDS = 1.0  # into the second wave of traffic


def spec() -> dict[str, Any]:
    """An ``event`` reward with a 1-hour window: every customer's click must be joined at once
    by whichever process leads, not when the window closes; small batches, so that several
    snapshots get published."""
    base = quick_spec()
    return {
        **base,
        "key": "twin",
        "reward": {**base["reward"], "window": "1h"},
        "learner": {"batch_size": 5, "interval_seconds": 0.5},
    }


@dataclass(frozen=True)
class Served:
    """One decision answered by the server on ``port``: when asked and answered, which version."""

    port: int
    sent: float
    received: float
    version: int


class Traffic:
    """Client threads against several servers; every answer kept for the checks.

    Customers ``first .. first + count - 1``, each with one story (:meth:`customer`).
    """

    def __init__(self, servers: Sequence[Server], key: str, *, first: int, count: int) -> None:
        self.servers = list(servers)
        self.key = key
        self.numbers = range(first, first + count)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.decisions: dict[str, list[dict[str, Any]]] = defaultdict(list)  # by request id
        self.served: dict[str, list[Served]] = defaultdict(list)  # by request id
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

    def both(self, first: Callable[[], None], second: Callable[[], None]) -> None:
        """Run two calls at the same moment (one in a helper thread)."""
        barrier = threading.Barrier(2)

        def run(call: Callable[[], None]) -> None:
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
        sent = time.monotonic()
        answer = self.http(index).post(f"/v1/experiments/{self.key}/decisions", json=body)
        received = time.monotonic()
        if answer.status_code != 200:
            self.failures.append(f"decide {answer.status_code} {answer.text}")
            return
        result = answer.json()
        port = self.servers[index].port
        with self.lock:
            self.decisions[request_id].append(result)
            self.served[request_id].append(Served(port, sent, received, result["policy_version"]))

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
        """One customer's story: a decision (some retried on another server, some of those at
        the same moment), then one outcome (some sent to two servers)."""
        n = len(self.servers)
        home = number % n
        # Every other server in turn (the same one when a single server is left).
        other = (home + 1 + (number // n) % (n - 1)) % n if n > 1 else home
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

    def run(self) -> Traffic:
        try:
            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(self.customer, self.numbers))
        finally:
            for client in self.clients:
                client.close()
        return self


def learner_status(server: Server) -> dict[str, Any]:
    return httpx.get(f"{server.base_url}/healthz", timeout=10).json()["learner"]


class LeaderSampler(threading.Thread):
    """Polls the live servers' /healthz: which of them say they lead the learner."""

    def __init__(self, servers: Sequence[Server]) -> None:
        super().__init__(daemon=True)
        self.live = list(servers)
        self.lock = threading.Lock()
        self.samples: list[tuple[int, ...]] = []  # the ports of the self-declared leaders
        self.errors: list[str] = []
        self.halt = threading.Event()

    def retire(self, server: Server) -> None:
        """Stop sampling ``server`` (about to be killed)."""
        with self.lock:
            self.live.remove(server)

    def run(self) -> None:
        while not self.halt.is_set():
            with self.lock:
                live = list(self.live)
            leaders = []
            for server in live:
                try:
                    if learner_status(server)["leader"]:
                        leaders.append(server.port)
                except httpx.HTTPError as error:  # /healthz must answer throughout
                    with self.lock:
                        if server in self.live:
                            self.errors.append(f"{server.port}: {type(error).__name__}: {error}")
            # A server retired while this pass ran (the leader, about to be killed) may have
            # answered before its successor took over: its claim is from before the kill.
            with self.lock:
                still_live = {server.port for server in self.live}
            self.samples.append(tuple(port for port in leaders if port in still_live))
            self.halt.wait(0.1)


def lock_holders(engine: Engine) -> list[str]:
    """Who holds the learner lock: the backend pids holding the advisory lock (PostgreSQL),
    or the pid of the unexpired lease's holder (SQLite).

    The advisory lock's connection must not sit idle in an open transaction between uses:
    ``idle_in_transaction_session_timeout`` would end the session, and the lock with it,
    while the process still thinks it leads.
    """
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            query = text(
                "SELECT l.pid, a.state FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND l.classid = 0 AND l.objid = :id AND l.objsubid = 1"
            )
            rows = session.exec(query, params={"id": ADVISORY_LOCK_ID}).all()
            assert {state for _, state in rows} <= {"idle", "active"}, rows
            return [str(pid) for pid, _ in rows]
        lease = session.get(LearnerLease, LEASE_NAME)
    if lease is None or lease.expires_at <= datetime.now(UTC):
        return []
    return [lease.holder.split("-")[0]]


def count_rewards(engine: Engine, *conditions: Any) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Reward).where(*conditions)).one()


def settle(
    engine: Engine, servers: Sequence[Server], decisions: int, *, published_before: int = 0
) -> list[dict[str, Any]]:
    """Wait until every decision has a reward, every reward is learned and ``servers`` have
    counted every snapshot published since ``published_before`` (a leader counts one just
    after committing it); return the servers' learner states then."""
    deadline = time.monotonic() + SETTLE_SECONDS
    unlearned = col(Reward.learned_version).is_(None)
    while (rewarded := count_rewards(engine)) < decisions or count_rewards(engine, unlearned):
        assert time.monotonic() < deadline, f"{rewarded} of {decisions} decisions rewarded"
        time.sleep(0.2)
    with Session(engine) as session:
        published = session.exec(select(func.count()).select_from(PolicySnapshot)).one()
    while True:
        health = [learner_status(server) for server in servers]
        if published_by(health) >= published - published_before:
            return health
        assert time.monotonic() < deadline, f"{published} publications not counted: {health}"
        time.sleep(0.05)


def published_by(health: Sequence[dict[str, Any]]) -> int:
    return sum(state["published"] for state in health)


@pytest.mark.parametrize(
    ("database_url", "processes"),
    [("sqlite", 2), ("postgresql", 2), ("postgresql", 4)],
    indirect=["database_url"],
)
def test_servers_share_one_database(
    database_url: str, processes: int, spawn_server: Callable[..., Server]
) -> None:
    keys = prepare_in_process(database_url)
    ports: set[int] = set()
    while len(ports) < processes:
        ports.add(free_port())
    with ThreadPoolExecutor(processes) as pool:  # start together: each start is mostly imports
        servers = list(pool.map(lambda port: spawn_server(database_url, port, keys), sorted(ports)))
    pids = {str(server.process.pid): server for server in servers if server.process is not None}
    with servers[0].client("admin") as admin:
        created = admin.post("/v1/experiments", json=spec())
        assert created.status_code == 201, created.text
    key = created.json()["key"]
    sampler = LeaderSampler(servers)
    sampler.start()
    engine = make_engine(database_url)
    try:
        before = Traffic(servers, key, first=0, count=CUSTOMERS).run()
        assert before.failures == []
        health = settle(engine, servers, CUSTOMERS)
        with Session(engine) as session:
            published = session.exec(select(func.count()).select_from(PolicySnapshot)).one()
        assert published_by(health) == published  # every snapshot by the one leader
        assert [state["leader"] for state in health].count(True) == 1
        assert all(state["last_error"] is None for state in health), health
        (leader,) = (
            server for server, state in zip(servers, health, strict=True) if state["leader"]
        )
        holders = lock_holders(engine)
        assert len(holders) == 1
        if engine.dialect.name == "sqlite":
            assert pids[holders[0]] is leader

        # Kill the leader while it learns from new traffic (sent to the other processes):
        # another process takes the lock over and learns the rest.
        sampler.retire(leader)
        killed_at: list[datetime] = []

        def kill() -> None:
            killed_at.append(datetime.now(UTC))
            leader.stop(signal.SIGKILL)

        killer = threading.Timer(KILL_AFTER_SECONDS, kill)
        survivors = [server for server in servers if server is not leader]
        killer.start()
        after = Traffic(survivors, key, first=CUSTOMERS, count=CUSTOMERS).run()
        killer.join()
        assert after.failures == []
        with Session(engine) as session:
            published_before = session.exec(
                select(func.count()).where(PolicySnapshot.created_at < killed_at[0])
            ).one()
        assert published_before >= published
        health = settle(engine, survivors, 2 * CUSTOMERS, published_before=published_before)
        assert [state["leader"] for state in health].count(True) == 1
        assert all(state["last_error"] is None for state in health), health
        (successor,) = (
            server for server, state in zip(survivors, health, strict=True) if state["leader"]
        )
        new_holders = lock_holders(engine)
        assert len(new_holders) == 1
        assert new_holders != holders
        if engine.dialect.name == "sqlite":
            assert pids[new_holders[0]] is successor

        with Session(engine) as session:
            decisions = session.exec(select(Decision)).all()
            outcomes = session.exec(select(Outcome)).all()
            reward_rows = session.exec(select(Reward)).all()
            snapshots = session.exec(select(PolicySnapshot).order_by(PolicySnapshot.id)).all()
    finally:
        sampler.halt.set()
        sampler.join()
        engine.dispose()

    check_decisions(decisions, [before, after])
    check_outcomes(outcomes, decisions, [before, after])
    check_learning(reward_rows, snapshots, decisions)
    # The successor published everything after the kill (survivors never led before it).
    taken_over = len(snapshots) - published_before
    assert taken_over >= 1
    assert published_by(health) == taken_over
    # One learner at a time: never two self-declared leaders at once.
    assert sampler.errors == []
    assert sampler.samples
    assert all(len(leaders) <= 1 for leaders in sampler.samples), [
        leaders for leaders in sampler.samples if len(leaders) > 1
    ]
    assert (leader.port,) in sampler.samples
    assert (successor.port,) in sampler.samples
    print(
        f"{engine.dialect.name} x{processes}: {len(decisions)} decisions, {len(outcomes)}"
        f" outcomes, {len(snapshots)} snapshots ({taken_over} after the leader was killed)"
    )


def check_decisions(decisions: Sequence[Decision], phases: Sequence[Traffic]) -> None:
    """One row per request id; every answer to a retry is the first answer, which is stored;
    no process served an older policy version than one it had already answered with."""
    answered = {
        request: answers for phase in phases for request, answers in phase.decisions.items()
    }
    assert len(answered) == CUSTOMERS * len(phases)
    for answers in answered.values():
        assert all(answer == answers[0] for answer in answers), answers
    by_id = {decision.id: decision for decision in decisions}
    assert len(by_id) == len(decisions) == len(answered)
    assert Counter(decision.request_id for decision in decisions) == Counter(
        dict.fromkeys(answered, 1)
    )
    for request_id, (answer, *_) in answered.items():
        row = by_id[answer["decision_id"]]
        assert row.request_id == request_id
        assert (row.action, row.group) == (answer["action"], answer["group"])
        assert row.propensity == pytest.approx(answer["propensity"])
        assert row.policy_version == answer["policy_version"]

    # A replayed answer carries the version it was first made with: only requests sent once.
    served: dict[int, list[Served]] = defaultdict(list)
    for phase in phases:
        for answers in phase.served.values():
            if len(answers) == 1:
                served[answers[0].port].append(answers[0])
    for port, answers in served.items():
        answers.sort(key=lambda answer: answer.received)
        newest, done = 0, 0
        for answer in sorted(answers, key=lambda answer: answer.sent):
            while done < len(answers) and answers[done].received < answer.sent:
                newest = max(newest, answers[done].version)
                done += 1
            assert answer.version >= newest, f"server {port} went back to version {answer}"


def check_outcomes(
    outcomes: Sequence[Outcome], decisions: Sequence[Decision], phases: Sequence[Traffic]
) -> None:
    """Each accepted exactly once over every send, stored once, duplicates counted."""
    by_id = {decision.id: decision for decision in decisions}
    sends = sum((phase.sends for phase in phases), Counter())
    accepted = sum((phase.accepted for phase in phases), Counter())
    named = {name: value for phase in phases for name, value in phase.named.items()}
    owner = {name: value for phase in phases for name, value in phase.owner.items()}
    assert set(accepted) == set(sends)
    assert len(sends) == CUSTOMERS * len(phases)
    assert all(count == 1 for count in accepted.values()), accepted
    assert sum(sends.values()) > len(sends)  # some were sent to two servers
    assert Counter(outcome.outcome_id for outcome in outcomes) == Counter(dict.fromkeys(sends, 1))
    # Each the first outcome of an open decision: counted in its reward, so none is late (a
    # second send of an outcome must not relabel the stored one).
    assert Counter(outcome.attribution for outcome in outcomes) == {"attributed": len(outcomes)}
    for outcome in outcomes:
        if outcome.outcome_id in named:
            assert outcome.decision_id == named[outcome.outcome_id]
        else:
            assert by_id[outcome.decision_id].customer_id == owner[outcome.outcome_id]


def check_learning(
    rewards: Sequence[Reward], snapshots: Sequence[PolicySnapshot], decisions: Sequence[Decision]
) -> None:
    """One reward per decision, each learned by exactly one snapshot; versions 1..N published
    in order, none served before it existed."""
    assert sorted(reward.decision_id for reward in rewards) == sorted(row.id for row in decisions)
    assert {reward.value for reward in rewards} == {1.0}  # every decision got its click
    versions = [snapshot.version for snapshot in snapshots]
    assert len(versions) >= 3, "expected several snapshots in the test"
    assert versions == list(range(1, len(versions) + 1))  # in order, no gap, no duplicate
    created = [snapshot.created_at for snapshot in snapshots]
    assert created == sorted(created)
    learned = Counter(reward.learned_version for reward in rewards)
    previous = 0
    for snapshot in snapshots:
        assert snapshot.rows_learned - previous == learned[snapshot.version]
        previous = snapshot.rows_learned
    assert previous == len(decisions)
    assert {decision.policy_version for decision in decisions} <= set(range(len(versions) + 1))
