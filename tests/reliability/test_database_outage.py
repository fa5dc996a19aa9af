"""The database goes away under load, and comes back: `engage serve` on PostgreSQL behind a proxy.

The server reaches PostgreSQL through :class:`tcp_proxy.TcpProxy`, so only its connections
suffer; the test migrates, creates keys and checks the data over the direct URL. Client threads
post decisions and outcomes (every 2xx answer is acknowledged data) while another polls
/healthz, and the proxy cuts the database in one of two ways:

- ``refuse``: PostgreSQL stopped: open connections closed, new ones refused;
- ``blackhole``: the network went silent: connections stay open, nothing is answered (the case
  where, without a client-side deadline, a request waits forever).

During the outage every answer must be 503 with Retry-After and a JSON error (never a 500,
never a dropped connection), each within a small multiple of ``ENGAGE_DATABASE_TIMEOUT_SECONDS``
(a request waits at most for a free pooled connection, its check and a new connection, each
bounded by it), and /healthz must say the database is down just as fast. Once the proxy
forwards again the same server process must answer decisions within seconds and /healthz must
be ok again, learner included; every acknowledged decision and outcome must be in the database
exactly once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from e2e_support import free_port, prepare_database
from sqlalchemy.engine import make_url
from tcp_proxy import TcpProxy
from test_service_http import context, quick_spec

#: The server's ENGAGE_DATABASE_TIMEOUT_SECONDS (libpq's connect timeout is 2 s at least).
TIMEOUT = 2.0
#: The longest any answer may take: the wait for a free connection of the pool, a pooled
#: connection's check, a new connection (each at most TIMEOUT), and a second of slack for two
#: busy cores. Usually one or two of those waits: 4 s at most measured.
ANSWER_BOUND = 3 * TIMEOUT + 1.0
#: How long the database stays away: long enough for several timeouts to expire in a row.
OUTAGE_SECONDS = {"refuse": 4.0, "blackhole": 3 * TIMEOUT + 1.0}
#: After the database returns: decisions must succeed again within this.
RECOVERY_SECONDS = TIMEOUT + 3.0
CLIENT_THREADS = 3
#: The server engine's pool_size + max_overflow.
POOL_CONNECTIONS = 15


@dataclass(frozen=True)
class Answer:
    """One request as a client saw it."""

    kind: str  # "decide", "outcomes" or "healthz"
    started: float
    ended: float
    status: int | None  # None: no HTTP answer at all
    error: str | None  # the transport error, if any
    retry_after: str | None
    body: Any  # parsed JSON, or None when not JSON

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def is_database_503(self) -> bool:
        return (
            self.status == 503
            and self.retry_after is not None
            and isinstance(self.body, dict)
            and "error" in self.body
        ) or (
            self.kind == "healthz"
            and self.status == 503
            and isinstance(self.body, dict)
            and self.body.get("database") == "down"
        )

    def describe(self, origin: float) -> str:
        return (
            f"{self.kind} at {self.started - origin:+.2f} s took {self.seconds:.2f} s:"
            f" {self.status or self.error} {self.body}"
        )


def click(outcome_id: str, decision_id: str) -> dict[str, Any]:
    """A click on ``decision_id``, happening now."""
    return {
        "outcome_id": outcome_id,
        "decision_id": decision_id,
        "event": "click",
        "value": 1.0,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


class Traffic:
    """Client threads deciding and reporting outcomes, and one polling /healthz, until stopped.

    ``acknowledged_decisions`` maps request id -> decision id of every 200 answer;
    ``acknowledged_outcomes`` holds the outcome id of every 202 answer.
    """

    def __init__(self, base_url: str, token: str, key: str) -> None:
        self.base_url = base_url
        self.headers = {"authorization": f"Bearer {token}"}
        self.key = key
        self.answers: list[Answer] = []
        self.acknowledged_decisions: dict[str, str] = {}
        self.acknowledged_outcomes: set[str] = set()
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(index,), daemon=True)
            for index in range(CLIENT_THREADS)
        ]
        self._threads.append(threading.Thread(target=self._health, daemon=True))

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._halt.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in self._threads), "traffic did not stop"

    def _send(self, http: httpx.Client, kind: str, method: str, path: str, **kw: Any) -> Answer:
        started = time.monotonic()
        try:
            response = http.request(method, f"{self.base_url}{path}", **kw)
        except httpx.TransportError as error:
            answer = Answer(kind, started, time.monotonic(), None, repr(error), None, None)
        else:
            try:
                body = response.json()
            except json.JSONDecodeError:
                body = None
            answer = Answer(
                kind,
                started,
                time.monotonic(),
                response.status_code,
                None,
                response.headers.get("retry-after"),
                body,
            )
        with self._lock:
            self.answers.append(answer)
        return answer

    def _client(self, index: int) -> None:
        """Decide; report the outcome of an earlier decision; retry what was not acknowledged
        with the same outcome id, as a client honouring Retry-After would."""
        pending: list[dict[str, Any]] = []
        # Far beyond ANSWER_BOUND: a slow answer is measured, not cut short by the client.
        with httpx.Client(headers=self.headers, timeout=30) as http:
            number = 0
            while not self._halt.is_set():
                number += 1
                request_id = f"r{index}-{number}"
                answer = self.decide(http, request_id, f"c{index}-{number}")
                if answer.ok:
                    pending.append(click(f"o{index}-{number}", answer.body["decision_id"]))
                # A backlog of two, sent as soon as decisions fail: outcomes meet the outage too.
                backlog = len(pending) > 2 or (pending and not answer.ok)
                if backlog and self.report(http, pending[:2]).ok:
                    del pending[:2]
                if not answer.ok:
                    self._halt.wait(0.05)

    def report(self, http: httpx.Client, batch: list[dict[str, Any]]) -> Answer:
        """Post ``batch`` of outcomes; on 202 (accepted or already there: stored either way)
        their ids are acknowledged."""
        sent = self._send(http, "outcomes", "POST", "/v1/outcomes", json={"outcomes": batch})
        if sent.ok:
            with self._lock:
                self.acknowledged_outcomes.update(item["outcome_id"] for item in batch)
        return sent

    def decide(self, http: httpx.Client, request_id: str, customer: str) -> Answer:
        body = {"customer_id": customer, "context": context(), "request_id": request_id}
        path = f"/v1/experiments/{self.key}/decisions"
        answer = self._send(http, "decide", "POST", path, json=body)
        if answer.ok:
            with self._lock:
                self.acknowledged_decisions[request_id] = answer.body["decision_id"]
        return answer

    def burst(self, requests: int) -> None:
        """``requests`` decisions at once, more than the server's connection pool holds, and
        beside them one outcome for an acknowledged decision: the outage meets both kinds of
        write whatever the client threads happen to be doing when it starts."""

        def one(number: int) -> None:
            with httpx.Client(headers=self.headers, timeout=30) as http:
                self.decide(http, f"burst-{number}", f"burst-{number}")

        def outcome() -> None:
            with self._lock:
                decision_id = next(iter(self.acknowledged_decisions.values()))
            with httpx.Client(headers=self.headers, timeout=30) as http:
                self.report(http, [click("burst-outcome", decision_id)])

        threads = [threading.Thread(target=outcome)]
        threads += [threading.Thread(target=one, args=(n,)) for n in range(requests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    def _health(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._halt.is_set():
                self._send(http, "healthz", "GET", "/healthz")
                self._halt.wait(0.2)

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def wait_for(
        self, predicate: Callable[[Answer], bool], *, after: float, timeout: float
    ) -> float:
        """When the first answer started after ``after`` satisfying ``predicate`` ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [a.ended for a in self.snapshot() if a.started >= after and predicate(a)]
            if found:
                return min(found)
            time.sleep(0.05)
        raise AssertionError(f"no matching answer within {timeout:.0f} s")


@dataclass
class ProxiedServer:
    server: Any  # conftest.LoggedServer
    proxy: TcpProxy
    direct_url: str
    key: str


@pytest.fixture
def proxied_server(database_url: str, spawn_server: Callable[..., Any]) -> Iterator[ProxiedServer]:
    """A fresh PostgreSQL database, migrated with keys over the direct URL, and a server (its
    stderr kept) whose only way to the database is the proxy."""
    keys = prepare_database(database_url)
    direct = make_url(database_url)
    with TcpProxy(direct.port or 5432, direct.host or "127.0.0.1") as proxy:
        through_proxy = direct.set(host="127.0.0.1", port=proxy.port)
        server = spawn_server(
            through_proxy.render_as_string(hide_password=False),
            free_port(),
            keys,
            env={"ENGAGE_DATABASE_TIMEOUT_SECONDS": str(TIMEOUT)},
        )
        with server.client("admin") as admin:
            created = admin.post("/v1/experiments", json=quick_spec())
            assert created.status_code == 201, created.text
        yield ProxiedServer(server, proxy, database_url, created.json()["key"])
        server.stop()  # before the proxy closes: a clean shutdown, not another outage


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_outage_answers_503_fast_and_the_service_recovers_without_losing_data(
    proxied_server: ProxiedServer, mode: str
) -> None:
    server, proxy = proxied_server.server, proxied_server.proxy
    origin = time.monotonic()
    with Traffic(server.base_url, server.keys["decide"], proxied_server.key) as traffic:
        traffic.wait_for(lambda a: a.kind == "outcomes" and a.ok, after=origin, timeout=10)
        time.sleep(1.0)
        cut = time.monotonic()
        getattr(proxy, mode)()
        time.sleep(0.2)
        # Waiting requests queue for the pool (5 + 10 connections): that wait is bounded too.
        traffic.burst(POOL_CONNECTIONS + 9)
        time.sleep(max(cut + OUTAGE_SECONDS[mode] - time.monotonic(), 0.0))
        restored = time.monotonic()
        proxy.forward()
        recovered = traffic.wait_for(
            lambda a: a.kind == "decide" and a.ok, after=restored, timeout=RECOVERY_SECONDS
        )
        healthy = traffic.wait_for(
            lambda a: a.kind == "healthz" and a.ok and a.body["status"] == "ok",
            after=restored,
            timeout=RECOVERY_SECONDS + 5,
        )
        steady = time.monotonic()  # steady again: everything from here on must succeed
        time.sleep(1.5)
    answers = traffic.snapshot()

    def show(items: list[Answer]) -> str:
        return "\n".join(a.describe(origin) for a in items[:10])

    # Never a 500, never a dropped connection, never slower than the bound: not even the
    # requests caught when the database went or came back.
    broken = [a for a in answers if not (a.ok or a.is_database_503())]
    assert not broken, show(broken)
    slow = [a for a in answers if a.seconds > ANSWER_BOUND]
    assert not slow, show(slow)
    # Everything that started after the cut and ended before the return: 503 + Retry-After.
    during = [a for a in answers if a.started > cut + 0.05 and a.ended < restored]
    assert {a.kind for a in during} == {"decide", "outcomes", "healthz"}, show(during)
    assert all(a.is_database_503() for a in during), show([a for a in during if a.ok])
    assert all(a.body["database"] == "down" for a in during if a.kind == "healthz")
    assert all(a.body["error"]["field"] == "database" for a in during if a.kind != "healthz")
    # Back by itself, no restart: decisions soon, then /healthz (the learner too), then all.
    assert recovered - restored < RECOVERY_SECONDS
    assert healthy > restored
    after = [a for a in answers if a.started >= steady]
    assert after, "no traffic after recovery"
    assert all(a.ok for a in after), show([a for a in after if not a.ok])
    assert server.process is not None
    assert server.process.poll() is None

    # Every acknowledged decision and outcome is stored, exactly once.
    decisions, outcomes = traffic.acknowledged_decisions, traffic.acknowledged_outcomes
    assert decisions
    assert outcomes
    with psycopg.connect(proxied_server.direct_url) as connection:
        stored = dict(
            connection.execute(
                "SELECT request_id, id FROM decision WHERE request_id = ANY(%s)",
                (list(decisions),),
            ).fetchall()
        )
        counted = connection.execute(
            "SELECT count(*), count(DISTINCT outcome_id) FROM outcome WHERE outcome_id = ANY(%s)",
            (list(outcomes),),
        ).fetchone()
    assert stored == decisions
    assert counted == (len(outcomes), len(outcomes))

    server.stop()
    assert "unhandled" not in server.log
    assert "database unavailable" in server.log
    if mode == "blackhole":  # the client-side deadline, not a refusal, ended the waits
        assert "no answer from PostgreSQL within" in server.log
