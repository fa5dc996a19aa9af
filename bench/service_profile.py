"""Where a request's time goes: cProfile over the real app, in process, one thread.

The FastAPI app from ``create_app`` runs its lifespan as in ``engage serve`` and is driven
by ``httpx.AsyncClient`` over ``httpx.ASGITransport``, one request at a time, with no
network and no uvicorn. FastAPI runs sync endpoints and dependencies in a thread pool, which
cProfile (one thread) cannot see, so while profiling ``anyio.to_thread.run_sync`` is replaced
by a direct call: the endpoint runs on the event loop's thread, as it would with no
concurrency. The learner is off, so nothing else runs.

The result lists, per request, our functions (``experiments/``, ``bandit/``) and the key-hash
and database-driver built-ins by cumulative time, and the largest own times anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import pstats
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.service_load import Job, request_maker

#: Built-in functions worth naming next to our own: the key hash and the database drivers.
_BUILTINS = ("pbkdf2_hmac", "sqlite3", "psycopg", "pgconn")
#: Wrappers that contain the whole request: listed, they would crowd out the real costs.
_WRAPPERS = ("experiments/service/limits.py",)


@dataclass(frozen=True)
class ProfileResult:
    """Per-request time of one endpoint under cProfile (which slows everything ~1.5-2x)."""

    name: str
    requests: int
    ms_per_request: float  # profiled time of the app per request (client excluded)
    ours: list[tuple[str, float, float]]  # function, cumulative ms per request, own ms
    own_time: list[tuple[str, float, float]]  # function, cumulative ms, own ms per request
    text: str  # pstats' own listing, for the results file


@contextlib.contextmanager
def _inline_threadpool() -> Iterator[None]:
    import anyio.to_thread

    original = anyio.to_thread.run_sync

    async def run_inline(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
        return func(*args)

    anyio.to_thread.run_sync = run_inline
    try:
        yield
    finally:
        anyio.to_thread.run_sync = original


def _short(file: str, line: int, function: str) -> str:
    if file == "~":
        return function.strip("<>")
    short = file.split("site-packages/")[-1].split("/work/main/")[-1]
    return f"{short}:{line}({function})"


def _ours(stats: pstats.Stats, calls: int, limit: int) -> list[tuple[str, float, float]]:
    """Our functions (and the hash / driver built-ins) by cumulative time per request."""
    table = stats.stats  # type: ignore[attr-defined]  # {(file, line, name): (cc, nc, tt, ct, _)}
    rows = []
    for (file, line, function), (_, _, tt, ct, _) in table.items():
        ours = ("/experiments/" in file or "/bandit/" in file) and not file.endswith(_WRAPPERS)
        builtin = file == "~" and any(name in function for name in _BUILTINS)
        if ours or builtin:
            rows.append((_short(file, line, function), 1000.0 * ct / calls, 1000.0 * tt / calls))
    rows.sort(key=lambda row: row[1], reverse=True)
    return rows[:limit]


def _own_time(stats: pstats.Stats, calls: int, limit: int) -> list[tuple[str, float, float]]:
    """Any function by its own time per request (the load generator's code left out)."""
    table = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (file, line, function), (_, _, tt, ct, _) in table.items():
        if "/httpx/" in file or "/bench/" in file:
            continue
        rows.append((_short(file, line, function), 1000.0 * ct / calls, 1000.0 * tt / calls))
    rows.sort(key=lambda row: row[2], reverse=True)
    return rows[:limit]


def _app_ms(stats: pstats.Stats, calls: int) -> float:
    """Time inside the ASGI app per request (the in-process client's own work left out)."""
    table = stats.stats  # type: ignore[attr-defined]
    inside = [
        ct
        for (file, _, function), (_, _, _, ct, _) in table.items()
        if function == "__call__" and file.endswith("fastapi/applications.py")
    ]
    return 1000.0 * max(inside, default=float("nan")) / calls


async def _profile(client: httpx.AsyncClient, job: Job, requests: int) -> cProfile.Profile:
    """Profile ``requests`` sequential requests of ``job`` after 20 unprofiled ones."""
    make = request_maker(job)
    for _ in range(20):  # warm caches (policy, compiled SQL) outside the profile
        method, path, body = make()
        await client.request(method, path, content=body)
    profiler = cProfile.Profile()
    for _ in range(requests):
        method, path, body = make()
        profiler.enable()
        response = await client.request(method, path, content=body)
        profiler.disable()
        if response.status_code >= 300:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text}")
    return profiler


def profile_endpoints(database_url: str, *, requests: int, spec_path: Path) -> list[ProfileResult]:
    """Profile decide and outcomes x1 (``requests`` calls each) and outcomes x100 in process.

    ``database_url`` must name an empty database: it is migrated here.
    """
    from sqlmodel import Session

    from experiments.service.app import create_app
    from experiments.settings import Settings
    from experiments.store.api_keys import create_api_key
    from experiments.store.connection import make_engine
    from experiments.store.schema import upgrade

    upgrade(database_url)
    store = make_engine(database_url)
    with Session(store) as session:
        _, token = create_api_key(session, scopes=["admin"], name="bench-profile")
        session.commit()
    store.dispose()
    spec = tomllib.loads(spec_path.read_text())
    key = spec["key"]
    app = create_app(Settings(database_url=database_url, learner=False), start_learner=False)

    def job(kind: str, batch: int = 1, ids: tuple[str, ...] = ()) -> Job:
        return Job(kind, "", token, key, 0.0, 0.0, 1, requests, batch=batch, decision_ids=ids)

    async def run() -> list[ProfileResult]:
        results = []
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://127.0.0.1",
                headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
            ) as client,
        ):
            created = await client.post("/v1/experiments", json=spec)
            if created.status_code != 201:
                raise RuntimeError(f"creating the experiment failed: {created.text}")
            make = request_maker(job("decide"))
            ids = []
            for _ in range(200):
                method, path, body = make()
                ids.append((await client.request(method, path, content=body)).json()["decision_id"])
            plans = (
                ("decide", job("decide"), requests),
                ("outcomes x1", job("outcomes", 1, tuple(ids)), requests),
                ("outcomes x100", job("outcomes", 100, tuple(ids)), max(requests // 20, 10)),
            )
            with _inline_threadpool():
                for name, plan, count in plans:
                    profiler = await _profile(client, plan, count)
                    stats = pstats.Stats(profiler)
                    out = io.StringIO()
                    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
                    results.append(
                        ProfileResult(
                            name=name,
                            requests=count,
                            ms_per_request=_app_ms(stats, count),
                            ours=_ours(stats, count, 14),
                            own_time=_own_time(stats, count, 8),
                            text=out.getvalue(),
                        )
                    )
        return results

    return asyncio.run(run())
