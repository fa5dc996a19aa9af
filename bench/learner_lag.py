"""Does the learner keep up? Rewards joined and learned per second, and the lag from a decision
to the published snapshot that includes its reward, under a steady decide load.

``python -m bench.learner_lag`` runs, for each database (SQLite file, fresh PostgreSQL
database), the real `engage serve` (learner on, as in production) with the quickstart
experiment (an ``event`` reward: a click makes a decision's reward final at once, so the
learner joins it early instead of at the window's close). A load generator sends, at a fixed
rate, a decision followed by a click outcome for it: every decision becomes a reward to join
and learn, the learner's worst case. After ``duration`` seconds of load the run waits (up to
``drain`` seconds) until every reward is learned. Then, from the database:

- joined/s: rewards computed during the load, per second of load;
- learned/s: rows folded into snapshots published during the load, per second;
- lag: per reward, ``snapshot.created_at - decision.created_at`` for the snapshot whose version
  first folded it in (``reward.learned_version``): p50 / p90 / p99 / max;
- drain: seconds after the load stopped until the last reward was learned;
- the decide latency from each pair's scheduled start (open loop) and the outcome latency
  seen by the client, and errors.

The learner publishes every ``[learner] batch_size`` rewards (100) or ``interval_seconds``
(60 s), polling every ``learner_poll_seconds`` (0.5 s): the lag has that cadence as a floor.
The client runs on the same 2 cores as the server and the database. Results go to
``bench/results/learner.json`` and ``learner.md``.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import numpy as np
import typer
from rich.console import Console
from sqlalchemy import func
from sqlmodel import Session, col, select

from bench.report import Table, fmt_ms, fmt_rate, machine, print_tables
from bench.service_load import RawLink
from bench.service_server import Server, create_experiment, database, prepare

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SPEC_PATH = ROOT / "examples" / "quickstart.toml"
CONTEXT = {"tenure_months": 7, "plan": "postpaid"}
#: Keep-alive connections the load is spread over.
CONNECTIONS = 32


@dataclass
class LagResult:
    """One database's run: the load, what the learner did with it, and the lags."""

    database: str
    workers: int
    rate: float
    seconds: float
    decisions: int
    outcomes: int
    errors: int
    decide_ms: dict[str, float]
    outcome_ms: dict[str, float]
    rewards: int  # stored when the run ended
    joined_per_second: float
    learned_per_second: float
    snapshots: int
    lag_ms: dict[str, float]
    outcome_lag_ms: dict[str, float]
    drain_seconds: float | None
    unlearned: int


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.asarray(values)
    return {
        "p50": float(np.quantile(array, 0.5)),
        "p90": float(np.quantile(array, 0.9)),
        "p99": float(np.quantile(array, 0.99)),
        "max": float(array.max()),
    }


async def _load(
    server: Server, token: str, key: str, *, rate: float, seconds: float
) -> tuple[list[float], list[float], int]:
    """Decision + click pairs started at ``rate`` per second for ``seconds`` (open loop); the
    latencies (ms, from each pair's scheduled start for the decision, so a slow server is
    not hidden by a client that waits for it) of the decisions and of the outcomes, and the
    number of failed requests.

    The pairs go out over :data:`CONNECTIONS` keep-alive connections of the raw client of
    :mod:`bench.service_load` (about 0.07 ms of CPU per request, against about 1.1 ms for
    ``httpx``, which at 200 pairs/s made the client the busiest process on the machine and
    its backlog the measured lag).
    """
    decide_ms: list[float] = []
    outcome_ms: list[float] = []
    errors = 0
    address = urlsplit(server.base_url)
    if address.hostname is None or address.port is None:
        raise ValueError(f"The server's base_url must name a host and a port: {server.base_url}")
    free: asyncio.Queue[RawLink] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        free.put_nowait(RawLink(address.hostname, address.port, token))
    decide_path = f"/v1/experiments/{key}/decisions"

    async def pair(number: int, scheduled: float) -> None:
        nonlocal errors
        link = await free.get()
        try:
            body = {"customer_id": f"c{random.randrange(100_000)}", "context": CONTEXT}
            status, content = await link.request("POST", decide_path, json.dumps(body).encode())
            decide_ms.append(1000 * (time.perf_counter() - scheduled))
            if status != 200:
                errors += 1
                return
            outcome = {
                "outcome_id": f"o{number}",
                "decision_id": json.loads(content)["decision_id"],
                "event": "click",
                "value": 1.0,
                "occurred_at": datetime.now(UTC).isoformat(),
            }
            began = time.perf_counter()
            status, _ = await link.request(
                "POST", "/v1/outcomes", json.dumps({"outcomes": [outcome]}).encode()
            )
            outcome_ms.append(1000 * (time.perf_counter() - began))
            errors += status != 202
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            free.put_nowait(link)

    tasks = []
    start = time.perf_counter()
    for number in range(int(rate * seconds)):
        scheduled = start + number / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(pair(number, scheduled)))
    await asyncio.gather(*tasks)
    while not free.empty():
        await free.get_nowait().close()
    return decide_ms, outcome_ms, errors


def _unlearned(url: str, key: str) -> tuple[int, int]:
    """Decisions with a click but no learned reward yet, and the rewards stored."""
    from experiments.store.connection import make_engine
    from experiments.store.models import Outcome, Reward

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            clicked = session.exec(
                select(func.count(func.distinct(Outcome.decision_id))).where(
                    Outcome.experiment_key == key
                )
            ).one()
            learned = session.exec(
                select(func.count()).where(
                    Reward.experiment_key == key, col(Reward.learned_version).is_not(None)
                )
            ).one()
            rewards = session.exec(select(func.count()).select_from(Reward)).one()
        return int(clicked) - int(learned), int(rewards)
    finally:
        engine.dispose()


def _lags(
    url: str, key: str, began: datetime, ended: datetime
) -> tuple[list[float], list[float], int, int, int]:
    """Per reward learned during the load, ms from its decision, and from its click's arrival,
    to the snapshot that folded it in; then rewards computed, rewards learned and snapshots
    published during the load."""
    from experiments.store.connection import make_engine
    from experiments.store.models import Decision, Outcome, PolicySnapshot, Reward

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            published = {
                row.version: row.created_at
                for row in session.exec(
                    select(PolicySnapshot).where(PolicySnapshot.experiment_key == key)
                )
            }
            rows = session.exec(
                select(
                    Decision.created_at,
                    Outcome.received_at,
                    Reward.computed_at,
                    Reward.learned_version,
                )
                .join(Reward, Reward.decision_id == Decision.id)
                .join(Outcome, Outcome.decision_id == Decision.id)
                .where(Decision.experiment_key == key)
            ).all()
    finally:
        engine.dispose()
    # Steady state: the rewards folded in by snapshots published while the load ran. The last
    # partial batch after it waits for the spec's interval (the drain column says how long).
    learned = [
        (row, published[row[3]])
        for row in rows
        if row[3] in published and began <= published[row[3]] <= ended
    ]
    from_decision = [1000 * (at - row[0]).total_seconds() for row, at in learned]
    from_outcome = [1000 * (at - row[1]).total_seconds() for row, at in learned]
    joined = sum(1 for row in rows if began <= row[2] <= ended)
    learned_during = len(learned)
    snapshots = sum(1 for at in published.values() if began <= at <= ended)
    return from_decision, from_outcome, joined, learned_during, snapshots


def run_one(
    kind: str,
    *,
    workers: int,
    rate: float,
    seconds: float,
    drain: float,
    log_dir: Path,
    spec: dict[str, Any] | None = None,
) -> LagResult:
    """One database: fresh database and server, the load, the drain, the figures."""
    spec = spec or tomllib.loads(SPEC_PATH.read_text())
    key = spec["key"]
    with database(kind) as url:
        keys = prepare(url)
        server = Server(url, workers=workers, log_dir=log_dir)
        try:
            server.start()
            create_experiment(server, keys["admin"], spec)
            began = datetime.now(UTC)
            decide_ms, outcome_ms, errors = asyncio.run(
                _load(server, keys["decide"], key, rate=rate, seconds=seconds)
            )
            ended = datetime.now(UTC)
            stopped = time.perf_counter()
            drain_seconds: float | None = None
            unlearned = rewards = 0
            while time.perf_counter() - stopped < drain:
                unlearned, rewards = _unlearned(url, key)
                if unlearned == 0:
                    drain_seconds = time.perf_counter() - stopped
                    break
                time.sleep(0.25)
            lags, outcome_lags, joined, learned, snapshots = _lags(url, key, began, ended)
        finally:
            server.stop()
    load_seconds = (ended - began).total_seconds()
    return LagResult(
        database=kind,
        workers=workers,
        rate=rate,
        seconds=load_seconds,
        decisions=len(decide_ms),
        outcomes=len(outcome_ms),
        errors=errors,
        decide_ms=_quantiles(decide_ms),
        outcome_ms=_quantiles(outcome_ms),
        rewards=rewards,
        joined_per_second=joined / load_seconds,
        learned_per_second=learned / load_seconds,
        snapshots=snapshots,
        lag_ms=_quantiles(lags),
        outcome_lag_ms=_quantiles(outcome_lags),
        drain_seconds=drain_seconds,
        unlearned=unlearned,
    )


def tables(results: list[LagResult]) -> list[Table]:
    table = Table(
        "The learner under decide load: every decision clicked at once (event reward)",
        [
            "database",
            "workers",
            "rate/s",
            "joined/s",
            "learned/s",
            "snapshots",
            "lag p50 ms",
            "lag p90 ms",
            "lag p99 ms",
            "lag max ms",
            "click to snapshot p50 / p99 ms",
            "drain s",
            "decide p99 ms",
            "outcome p99 ms",
            "errors",
            "unlearned at end",
        ],
        notes=[
            "lag: from a decision's creation to the creation of the snapshot that first folded "
            "its reward in, over the snapshots published during the load; click to snapshot: "
            "from the click's arrival (the learner's own delay); drain: after the load stopped, "
            "until every reward was learned (the last partial batch waits for the spec's "
            "interval_seconds).",
            "joined/s and learned/s count only what happened during the load.",
        ],
    )
    for r in results:
        table.add(
            r.database,
            r.workers,
            fmt_rate(r.rate),
            fmt_rate(r.joined_per_second),
            fmt_rate(r.learned_per_second),
            r.snapshots,
            fmt_ms(r.lag_ms.get("p50")),
            fmt_ms(r.lag_ms.get("p90")),
            fmt_ms(r.lag_ms.get("p99")),
            fmt_ms(r.lag_ms.get("max")),
            f"{fmt_ms(r.outcome_lag_ms.get('p50'))} / {fmt_ms(r.outcome_lag_ms.get('p99'))}",
            "-" if r.drain_seconds is None else f"{r.drain_seconds:.1f}",
            fmt_ms(r.decide_ms.get("p99")),
            fmt_ms(r.outcome_ms.get("p99")),
            r.errors,
            r.unlearned,
        )
    return [table]


def main(
    rate: Annotated[float, typer.Option("--rate", min=1.0, help="Decision+click pairs/s.")] = 200.0,
    duration: Annotated[float, typer.Option("--duration", min=1.0, help="Seconds of load.")] = 20.0,
    drain: Annotated[
        float,
        typer.Option(
            "--drain",
            help="Seconds to wait for the backlog (the spec publishes at least every 60).",
        ),
    ] = 65.0,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Server processes.")] = 2,
    databases: Annotated[str, typer.Option("--databases", help="sqlite,postgresql")] = (
        "sqlite,postgresql"
    ),
    out: Annotated[Path, typer.Option("--out", help="Directory for the results.")] = RESULTS,
) -> None:
    """Measure whether the learner keeps up with a steady decide load."""
    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as logs:
        for kind in databases.split(","):
            console.print(f"[dim]{kind}: {rate:g} pairs/s for {duration:g} s[/dim]")
            results.append(
                run_one(
                    kind,
                    workers=workers,
                    rate=rate,
                    seconds=duration,
                    drain=drain,
                    log_dir=Path(logs),
                )
            )
    rendered = tables(results)
    print_tables(console, rendered)

    (out / "learner.json").write_text(
        json.dumps(
            {"machine": machine(ROOT), "results": [asdict(r) for r in results]},
            indent=2,
            default=str,
        )
    )
    (out / "learner.md").write_text(
        "# Learner under decide load\n\n" + "\n".join(t.markdown() for t in rendered)
    )
    console.print(f"wrote {out / 'learner.md'}")


if __name__ == "__main__":
    typer.run(main)
