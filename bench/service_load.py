"""The load generator of ``bench.service``: asyncio, run in its own process.

The benchmarked server and this client share one small machine, so the client runs in a
separate process (its own interpreter, its own GIL) that the parent feeds one :class:`Job`
at a time over a pipe and that answers with a :class:`LoadResult`. Two ways to drive load:

- closed loop: ``connections`` workers each send a request, wait for the answer, send the
  next (HTTP/1.1 keep-alive, one connection each) until the time is up: the peak rate;
- open loop: requests leave at a fixed arrival rate whatever the answers do, and latency is
  measured from each request's *scheduled* start, so a slow server is not hidden by a client
  that waits for it (no coordinated omission).

Both are bounded in time and in the number of requests; the first ``warmup`` seconds are
sent but not measured (policy caches, connection set-up, workers still booting).

Two clients speak HTTP/1.1 over keep-alive connections. ``raw`` (the default) is a minimal
asyncio-streams client: it needs about 0.07 ms of CPU per request here, against about
1.1 ms for ``httpx.AsyncClient``, which on a 2-core machine shared with the server would
make the client, not the server, the ceiling (httpx 0.28 measured ~500 GET /livez per second
on a core where the server answers ~1,800; its shared pool also slows down as connections
grow, encode/httpx#3215, hence one ``AsyncClient`` per connection when ``httpx`` is chosen).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Protocol
from urllib.parse import urlsplit

import numpy as np

#: Request timeout: a stuck server ends a measurement instead of hanging it.
TIMEOUT_SECONDS = 10.0
#: Decision ids kept from a decide run, for the outcome runs to name.
MAX_DECISION_IDS = 20_000
PLANS = ("prepaid", "postpaid")
CLIENTS = ("raw", "httpx")


@dataclass(frozen=True)
class Job:
    """One measurement: what to send, how hard, and for how long.

    ``kind`` is ``livez`` (GET /livez), ``decide`` (POST a decision with a random customer
    and a valid quickstart context) or ``outcomes`` (POST ``batch`` click outcomes naming
    decisions from ``decision_ids``). ``rate`` switches to the open loop at that many
    arrivals per second; ``connections`` is the closed loop's concurrency and the open
    loop's connection pool.
    """

    kind: str
    base_url: str
    token: str
    experiment: str
    duration: float
    warmup: float
    connections: int
    max_requests: int
    batch: int = 1
    rate: float | None = None
    seed: int = 0
    client: str = "raw"
    decision_ids: tuple[str, ...] = ()


@dataclass
class LoadResult:
    """What one :class:`Job` measured (latencies in milliseconds, over the measured window)."""

    kind: str
    requests: int  # measured requests (started after the warm-up)
    ok: int  # 2xx answers counted in the throughput
    errors: dict[str, int]  # status code or exception name -> count
    seconds: float  # length of the measured window
    latency_ms: dict[str, float]
    client_cpu: float  # busy cores of the load generator (1.0: one core fully used)
    rate: float | None = None
    dropped: int = 0  # open loop: arrivals not sent because too many were in flight
    decision_ids: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Successful requests per second over the measured window."""
        return self.ok / self.seconds if self.seconds > 0 else float("nan")


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 / p99.9 / max of ``latencies`` (any unit; nan when empty)."""
    if not latencies:
        return {name: float("nan") for name in ("p50", "p90", "p99", "p99.9", "max")}
    values = np.asarray(latencies, dtype=np.float64)
    p50, p90, p99, p999 = np.percentile(values, [50, 90, 99, 99.9])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "p99.9": float(p999),
        "max": float(values.max()),
    }


# ---------------------------------------------------------------------------- bodies
class _Bodies:
    """Request bodies for one job, from one seeded generator."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.rng = np.random.default_rng(job.seed)
        self.ids = job.decision_ids

    def decide(self) -> bytes:
        rng = self.rng
        return json.dumps(
            {
                "customer_id": f"bench-{int(rng.integers(1_000_000))}",
                "context": {
                    "tenure_months": round(float(rng.uniform(0.0, 120.0)), 1),
                    "plan": PLANS[int(rng.integers(2))],
                    "is_roaming": bool(rng.random() < 0.1),
                },
            }
        ).encode()

    def outcomes(self) -> bytes:
        now = datetime.now(UTC).isoformat()
        items = []
        for _ in range(self.job.batch):
            item: dict[str, object] = {
                "outcome_id": uuid.uuid4().hex,
                "event": "click",
                "value": 1.0,
                "occurred_at": now,
            }
            if self.ids:
                item["decision_id"] = self.ids[int(self.rng.integers(len(self.ids)))]
            else:
                item["experiment"] = self.job.experiment
                item["customer_id"] = f"bench-{int(self.rng.integers(1_000_000))}"
            items.append(item)
        return json.dumps({"outcomes": items}).encode()


Request = tuple[str, str, bytes | None]


def request_maker(job: Job) -> Callable[[], Request]:
    """A function returning the next (method, path, body) of ``job``."""
    bodies = _Bodies(job)
    if job.kind == "livez":
        return lambda: ("GET", "/livez", None)
    if job.kind == "decide":
        path = f"/v1/experiments/{job.experiment}/decisions"
        return lambda: ("POST", path, bodies.decide())
    if job.kind == "outcomes":
        return lambda: ("POST", "/v1/outcomes", bodies.outcomes())
    raise ValueError(
        f"The 'kind' parameter of Job must be livez|decide|outcomes. Got {job.kind!r}."
    )


# ---------------------------------------------------------------------------- clients
class _Link(Protocol):
    """One keep-alive connection: send a request, get (status, body)."""

    async def request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


class RawLink:
    """A minimal HTTP/1.1 client on asyncio streams: one connection, reopened when lost.

    Enough for this server: Content-Length or chunked bodies, ``Connection: close``.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = (
            f"host: {host}:{port}\r\nauthorization: Bearer {token}\r\n"
            "content-type: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = body or b""
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                self.writer.write(
                    f"{method} {path} HTTP/1.1\r\n".encode()
                    + self.head
                    + f"content-length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                head = await self.reader.readuntil(b"\r\n\r\n")
                status, headers = _parse_head(head)
                if headers.get("transfer-encoding") == "chunked":
                    content = await _read_chunked(self.reader)
                else:
                    content = await self.reader.readexactly(int(headers.get("content-length", 0)))
        except BaseException:
            await self.close()  # a half-read answer leaves the connection unusable
            raise
        if headers.get("connection") == "close":
            await self.close()
        return status, content

    async def close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
    return status, headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    for _ in range(100_000):  # bounded: our answers are a few chunks at most
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    raise ValueError("chunked body with too many chunks")


class _HttpxLink:
    """One ``httpx.AsyncClient`` per connection (see the module docstring for why)."""

    def __init__(self, base_url: str, token: str) -> None:
        import httpx

        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=TIMEOUT_SECONDS,
            trust_env=False,  # loopback only: never through a proxy from the environment
        )

    async def request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        response = await self.client.request(method, path, content=body)
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


def _links(job: Job) -> list[_Link]:
    if job.client == "httpx":
        return [_HttpxLink(job.base_url, job.token) for _ in range(job.connections)]
    if job.client != "raw":
        raise ValueError(f"The 'client' parameter of Job must be raw|httpx. Got {job.client!r}.")
    url = urlsplit(job.base_url)
    if url.hostname is None or url.port is None:
        raise ValueError(f"The 'base_url' of Job must name a host and a port. Got {job.base_url}.")
    return [RawLink(url.hostname, url.port, job.token) for _ in range(job.connections)]


async def _exchange(link: _Link, request: Request) -> tuple[int | None, bytes, str | None]:
    """(status, body, None) or (None, b"", the exception's name)."""
    try:
        status, content = await link.request(*request)
        return status, content, None
    except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
        return None, b"", type(exc).__name__
    except Exception as exc:  # httpx's errors, without importing httpx for the raw client
        if type(exc).__module__.startswith("httpx"):
            return None, b"", type(exc).__name__
        raise


class _Tally:
    """Statuses and latencies of the measured requests."""

    def __init__(self, keep_ids: bool) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.ok = 0
        self.ids: list[str] = []
        self.keep_ids = keep_ids

    def add(self, status: int | None, content: bytes, error: str | None, latency: float) -> bool:
        """Record one measured request; True when it succeeded."""
        self.latencies.append(latency * 1000.0)
        if status is not None and 200 <= status < 300:
            self.ok += 1
            if self.keep_ids and len(self.ids) < MAX_DECISION_IDS:
                self.ids.append(json.loads(content)["decision_id"])
            return True
        self.statuses[error or str(status)] += 1
        return False


# ---------------------------------------------------------------------------- loops
async def closed_loop(job: Job) -> LoadResult:
    """``job.connections`` workers, each sending its next request when the last answered."""
    make = request_maker(job)
    tally = _Tally(keep_ids=job.kind == "decide")
    links = _links(job)
    issued = 0
    ok_in_window = 0
    cpu0 = time.process_time()
    start = time.perf_counter()
    measure_from = start + job.warmup
    stop = measure_from + job.duration

    async def worker(link: _Link) -> None:
        nonlocal issued, ok_in_window
        while issued < job.max_requests:
            began = time.perf_counter()
            if began >= stop:
                return
            issued += 1
            status, content, error = await _exchange(link, make())
            ended = time.perf_counter()
            if began >= measure_from and tally.add(status, content, error, ended - began):
                ok_in_window += ended <= stop

    try:
        await asyncio.gather(*(worker(link) for link in links))
    finally:
        finished = time.perf_counter()
        cpu = time.process_time() - cpu0
        await asyncio.gather(*(link.close() for link in links))
    # Throughput counts the successes that ended inside the window; hitting max_requests
    # ends the window early, so divide by the time actually measured.
    seconds = min(finished, stop) - measure_from
    return LoadResult(
        kind=job.kind,
        requests=len(tally.latencies),
        ok=ok_in_window,
        errors=dict(tally.statuses),
        seconds=max(seconds, 1e-9),
        latency_ms=percentiles(tally.latencies),
        client_cpu=cpu / max(finished - start, 1e-9),
        decision_ids=tally.ids,
    )


async def open_loop(job: Job) -> LoadResult:
    """Requests scheduled at ``job.rate`` per second; latency from the scheduled start.

    A request waits for a free connection of the pool (that wait counts in its latency). At
    most ``4 * connections`` requests are pending; an arrival beyond that is counted as
    dropped (the server has fallen behind) instead of piling up without bound.
    """
    if job.rate is None or job.rate <= 0:
        raise ValueError(f"The 'rate' parameter of Job must be a float > 0. Got {job.rate}.")
    make = request_maker(job)
    tally = _Tally(keep_ids=False)
    links = _links(job)
    idle: asyncio.Queue[_Link] = asyncio.Queue()
    for link in links:
        idle.put_nowait(link)
    total = min(job.max_requests, int(job.rate * (job.warmup + job.duration)))
    max_pending = 4 * job.connections
    dropped = 0
    pending: set[asyncio.Task[None]] = set()
    cpu0 = time.process_time()
    start = time.perf_counter()
    measure_from = start + job.warmup

    async def one(scheduled: float) -> None:
        link = await idle.get()
        try:
            status, content, error = await _exchange(link, make())
        finally:
            idle.put_nowait(link)
        if scheduled >= measure_from:
            tally.add(status, content, error, time.perf_counter() - scheduled)

    try:
        for index in range(total):
            scheduled = start + index / job.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(pending) >= max_pending:
                dropped += scheduled >= measure_from
                continue
            task = asyncio.create_task(one(scheduled))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=2 * TIMEOUT_SECONDS)
    finally:
        finished = time.perf_counter()
        cpu = time.process_time() - cpu0
        for task in pending:
            task.cancel()
        await asyncio.gather(*(link.close() for link in links))
    return LoadResult(
        kind=job.kind,
        requests=len(tally.latencies),
        ok=tally.ok,
        errors=dict(tally.statuses),
        seconds=max(finished - measure_from, 1e-9),
        latency_ms=percentiles(tally.latencies),
        client_cpu=cpu / max(finished - start, 1e-9),
        rate=job.rate,
        dropped=dropped,
    )


def run_job(job: Job) -> LoadResult:
    """Run one job to completion in this process (closed loop unless ``job.rate`` is set)."""
    return asyncio.run(open_loop(job) if job.rate else closed_loop(job))


# ---------------------------------------------------------------------------- process
def _serve(connection: Connection) -> None:
    # Ctrl-C reaches the whole foreground group: the parent handles it and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        job = connection.recv()
        if job is None:
            return
        try:
            connection.send(run_job(job))
        except Exception as exc:  # hand the failure to the parent instead of dying silently
            connection.send(RuntimeError(f"{type(exc).__name__}: {exc}"))


class LoadClient:
    """A long-lived load-generator process (spawned: it inherits no state from the parent)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._parent, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        child.close()

    def run(self, job: Job) -> LoadResult:
        self._parent.send(job)
        # Bounded: the job's own time, the drain timeout and a margin for start-up.
        limit = job.warmup + job.duration + 3 * TIMEOUT_SECONDS + 30
        if not self._parent.poll(limit):
            raise TimeoutError(f"the load generator gave no answer within {limit:.0f} s")
        try:
            answer = self._parent.recv()
        except (EOFError, OSError) as exc:
            raise RuntimeError(
                f"the load generator died (exit code {self._process.exitcode})"
            ) from exc
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._parent.send(None)
            self._process.join(timeout=5)
        if self._process.is_alive() and self._process.pid is not None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.join(timeout=5)
        self._parent.close()
