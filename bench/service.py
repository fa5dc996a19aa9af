"""Service benchmark: the real `engage serve` under load on loopback, SQLite and PostgreSQL.

``python -m bench.service`` (``make bench-service``) runs, for each database (a SQLite file in
a temporary directory; a fresh PostgreSQL database on 127.0.0.1:5432, dropped afterwards)
and each worker count (1, 2, 4), on a freshly migrated database with new API keys and the
quickstart experiment (``examples/quickstart.toml``, default one-day reward window, learner
on as in production):

1. closed loop, ``connections`` keep-alive connections, ``duration`` seconds each:
   ``GET /livez`` (no database, no auth: the ceiling), ``POST .../decisions`` (random
   customers, valid contexts), ``POST /v1/outcomes`` with 1 and with 100 outcomes a request;
   throughput, p50/p99/p99.9 latency, errors, and the ratio to /livez of the same server;
2. open loop: decisions arriving at half of the decide peak just measured; p50/p99 there.

Targets, fixed in advance, printed PASS / MISS and never asserted: decide and single-outcome
throughput each at least 40% of /livez's, and decide p99 under 20 ms at half of our peak rate.
Then cProfile of decide and outcomes in process (no network) names where a request's time
goes.

The load generator (:mod:`bench.service_load`) runs in its own process, but on the same
2-core machine as the server (and PostgreSQL): every number here is "server + client + the
database on 2 cores". The CPU columns say who used what. Results go to
``bench/results/service.json``, ``service.md`` and ``service_profile.txt``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bench.report import Table, fmt, fmt_ms, fmt_rate, machine, print_tables, verdict
from bench.service_load import Job, LoadClient, LoadResult
from bench.service_server import (
    Server,
    create_experiment,
    database,
    machine_cpu,
    postgres_admin_url,
    postgres_reachable,
    prepare,
    terminate_as_interrupt,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SPEC_PATH = ROOT / "examples" / "quickstart.toml"
DATABASES = ("sqlite", "postgresql")
#: Targets fixed in advance: decide throughput at least this share of /livez's, and decide p99
#: under this many milliseconds at half of the peak rate.
RATIO_TARGET = 0.4
P99_TARGET_MS = 20.0
#: The whole run must end within this: a configuration (or the profile) that would not fit,
#: judged by the ones already run, is skipped and reported as such.
BUDGET_SECONDS = 570.0
#: Set-up, server start and stop of one configuration, before any has been timed.
SETUP_SECONDS = 20.0
PROFILE_SECONDS_PER_DATABASE = 30.0
IDLE_LIVEZ = "GET /livez, 1 connection"
#: An unloaded keep-alive round trip slower than this is a delayed ACK, not work.
NAGLE_SUSPECT_MS = 30.0


@dataclass(frozen=True)
class ServiceBenchConfig:
    """Sizes of one run: seconds per measurement, concurrency, request caps."""

    duration: float = 10.0
    warmup: float = 1.0
    connections: int = 16
    paced_connections: int = 32
    max_requests: int = 200_000
    outcome_batches: tuple[int, ...] = (1, 100)
    profile_requests: int = 1_000
    client: str = "raw"

    @classmethod
    def quick(cls) -> ServiceBenchConfig:
        return cls(duration=3.0, warmup=0.5, profile_requests=300)

    def config_seconds(self) -> float:
        """Expected wall time of one configuration: six measurements and the set-up."""
        return 6 * (self.duration + self.warmup) + SETUP_SECONDS


@dataclass
class Measurement:
    """One load run against one server: a row of the tables."""

    database: str
    workers: int
    endpoint: str
    batch: int
    paced: bool
    throughput: float  # successful requests per second
    items_per_second: float  # outcomes per second (= throughput x batch), decisions per second
    latency_ms: dict[str, float]
    requests: int
    errors: dict[str, int]
    seconds: float
    server_cpu: float  # busy cores, server processes (all workers)
    client_cpu: float  # busy cores, load generator
    machine_cpu: float  # busy cores, whole machine
    rate: float | None = None
    dropped: int = 0
    ratio_to_livez: float | None = None

    @property
    def other_cpu(self) -> float:
        """Busy cores of everything else: PostgreSQL's backends, the kernel's share that
        /proc does not bill to a process, other programs on the machine."""
        return max(self.machine_cpu - self.server_cpu - self.client_cpu, 0.0)

    @property
    def server_cpu_ms_per_request(self) -> float:
        """Server CPU per answered request: the cost, which other load on the machine
        changes far less than it changes the rate."""
        return 1000.0 * self.server_cpu / self.throughput if self.throughput > 0 else float("nan")

    @property
    def error_count(self) -> int:
        return sum(self.errors.values()) + self.dropped


@dataclass
class ConfigResult:
    database: str
    workers: int
    measurements: list[Measurement] = field(default_factory=list)
    failure: str | None = None
    seconds: float = 0.0

    def get(self, endpoint: str, *, paced: bool = False) -> Measurement | None:
        for item in self.measurements:
            if item.endpoint == endpoint and item.paced == paced:
                return item
        return None


# ---------------------------------------------------------------------------- running
def measure(
    client: LoadClient, server: Server, job: Job, *, database_kind: str, endpoint: str
) -> tuple[Measurement, LoadResult]:
    """Run ``job`` against ``server``, with the CPU used by each side meanwhile."""
    server0, (busy0, _) = server.cpu_seconds(), machine_cpu()
    began = time.perf_counter()
    result: LoadResult = client.run(job)
    elapsed = time.perf_counter() - began
    server1, (busy1, _) = server.cpu_seconds(), machine_cpu()
    return Measurement(
        database=database_kind,
        workers=server.workers,
        endpoint=endpoint,
        batch=job.batch,
        paced=job.rate is not None,
        throughput=result.throughput,
        items_per_second=result.throughput * (job.batch if job.kind == "outcomes" else 1),
        latency_ms=result.latency_ms,
        requests=result.requests,
        errors=result.errors,
        seconds=result.seconds,
        server_cpu=(server1 - server0) / elapsed,
        client_cpu=result.client_cpu,
        machine_cpu=(busy1 - busy0) / elapsed,
        rate=result.rate,
        dropped=result.dropped,
    ), result


def run_config(
    database_kind: str,
    workers: int,
    config: ServiceBenchConfig,
    client: LoadClient,
    *,
    spec: dict[str, Any],
    log_dir: Path,
    console: Console,
    outcome: ConfigResult,
) -> None:
    """Fresh database, keys, server and experiment; the five measurements into ``outcome``
    (as they finish, so an interrupted run keeps them); tear down."""
    began = time.perf_counter()
    with database(database_kind) as url:
        keys = prepare(url)
        server = Server(url, workers=workers, log_dir=log_dir)
        try:
            server.start()
            create_experiment(server, keys["admin"], spec)
            base = Job(
                kind="livez",
                base_url=server.base_url,
                token=keys["decide"],
                experiment=spec["key"],
                duration=config.duration,
                warmup=config.warmup,
                connections=config.connections,
                max_requests=config.max_requests,
                client=config.client,
                seed=workers * 1_000 + DATABASES.index(database_kind),
            )

            def run(job: Job, endpoint: str) -> LoadResult:
                console.print(f"  [dim]{database_kind}, {workers} worker(s): {endpoint}[/dim]")
                row, result = measure(
                    client, server, job, database_kind=database_kind, endpoint=endpoint
                )
                outcome.measurements.append(row)
                if row.error_count and not result.ok:
                    console.print(f"    [red]all failed: {row.errors}[/red] {server.log_tail(5)}")
                return result

            # One connection, one request at a time: the unloaded round trip. ~40 ms here
            # means a keep-alive answer waits for a delayed ACK (TCP_NODELAY off, see notes).
            run(replace(base, connections=1, duration=min(config.duration, 2.0)), IDLE_LIVEZ)
            livez = run(base, "GET /livez")
            decide = run(replace(base, kind="decide"), "POST decisions")
            if decide.throughput > 0:
                run(
                    replace(
                        base,
                        kind="decide",
                        rate=max(decide.throughput / 2, 1.0),
                        connections=config.paced_connections,
                        seed=base.seed + 1,
                    ),
                    "POST decisions",
                )
            ids = tuple(decide.decision_ids)
            for batch in config.outcome_batches:
                run(
                    replace(base, kind="outcomes", batch=batch, decision_ids=ids),
                    f"POST outcomes x{batch}",
                )
            for row in outcome.measurements:
                if livez.throughput > 0 and not row.paced and row.endpoint != IDLE_LIVEZ:
                    row.ratio_to_livez = row.throughput / livez.throughput
        finally:
            server.stop()
            outcome.seconds = time.perf_counter() - began


# ---------------------------------------------------------------------------- tables
def _cores(value: float) -> str:
    return f"{value:.2f}"


def _errors(row: Measurement) -> str:
    if not row.error_count:
        return "0"
    parts = [f"{name}: {count}" for name, count in sorted(row.errors.items())]
    if row.dropped:
        parts.append(f"dropped: {row.dropped}")
    return ", ".join(parts)


def peak_table(results: Sequence[ConfigResult], config: ServiceBenchConfig) -> Table:
    table = Table(
        f"Peak: closed loop, {config.connections} keep-alive connections,"
        f" {config.duration:g} s per row after {config.warmup:g} s warm-up",
        [
            "database",
            "workers",
            "endpoint",
            "req/s",
            "items/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "errors",
            "vs /livez",
            "server CPU",
            "CPU ms/req",
            "client CPU",
            "other CPU",
        ],
    )
    for result in results:
        for row in result.measurements:
            if row.paced:
                continue
            table.add(
                row.database,
                row.workers,
                row.endpoint,
                fmt_rate(row.throughput),
                fmt_rate(row.items_per_second),
                fmt_ms(row.latency_ms["p50"]),
                fmt_ms(row.latency_ms["p99"]),
                fmt_ms(row.latency_ms["p99.9"]),
                _errors(row),
                "-" if row.ratio_to_livez is None else f"{100 * row.ratio_to_livez:.0f}%",
                _cores(row.server_cpu),
                fmt(row.server_cpu_ms_per_request, 2),
                _cores(row.client_cpu),
                _cores(row.other_cpu),
            )
        if result.failure:
            table.add(result.database, result.workers, result.failure[:100])
    table.notes += [
        "items/s: decisions/s for decide, outcomes/s for outcome batches.",
        "CPU columns are busy cores (2 on this machine): the server's processes, the load"
        " generator's process, and everything else (PostgreSQL, other programs).",
        "CPU ms/req: the server's CPU per answered request (all workers; PostgreSQL's own"
        " work not included): the cost, which competing load changes far less than the rate.",
        "The load generator runs on the same 2 cores as the server: the ceiling and the"
        " ratios are those of server + client + database sharing one small machine.",
    ]
    slow = sorted(
        {
            f"{row.database} x {row.workers}"
            for result in results
            for row in result.measurements
            if row.endpoint == IDLE_LIVEZ and row.latency_ms["p50"] > NAGLE_SUSPECT_MS
        }
    )
    if slow:
        table.notes.append(
            f"{', '.join(slow)}: an unloaded keep-alive GET /livez takes"
            f" > {NAGLE_SUSPECT_MS:g} ms: every answer waits for the client's delayed ACK"
            " (Nagle on: uvicorn --workers N binds its socket with proto 0, so asyncio never"
            " sets TCP_NODELAY; uvicorn#3149). Fix in engage serve, not in the client."
        )
    return table


def paced_table(results: Sequence[ConfigResult], config: ServiceBenchConfig) -> Table:
    table = Table(
        "Decide at half of our peak: open loop (fixed arrival rate, latency from the scheduled"
        f" start), pool of {config.paced_connections} connections",
        [
            "database",
            "workers",
            "rate/s",
            "answered/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "errors",
            f"p99 < {P99_TARGET_MS:g} ms",
            "server CPU",
            "other CPU",
        ],
    )
    for result in results:
        row = result.get("POST decisions", paced=True)
        if row is None:
            continue
        table.add(
            row.database,
            row.workers,
            fmt_rate(row.rate),
            fmt_rate(row.throughput),
            fmt_ms(row.latency_ms["p50"]),
            fmt_ms(row.latency_ms["p90"]),
            fmt_ms(row.latency_ms["p99"]),
            fmt_ms(row.latency_ms["p99.9"]),
            _errors(row),
            verdict(row.latency_ms["p99"] < P99_TARGET_MS and not row.error_count),
            _cores(row.server_cpu),
            _cores(row.other_cpu),
        )
    return table


def targets(results: Sequence[ConfigResult]) -> list[dict[str, Any]]:
    found = []
    for result in results:
        livez, decide = result.get("GET /livez"), result.get("POST decisions")
        outcome = result.get("POST outcomes x1")
        idle = result.get(IDLE_LIVEZ)
        paced = result.get("POST decisions", paced=True)
        ratio = decide.ratio_to_livez if decide is not None else None
        outcome_ratio = outcome.ratio_to_livez if outcome is not None else None
        p99 = paced.latency_ms["p99"] if paced is not None else None
        found.append(
            {
                "database": result.database,
                "workers": result.workers,
                "idle_livez_p50_ms": idle.latency_ms["p50"] if idle else None,
                "livez_capped_by_delayed_ack": bool(
                    idle and idle.latency_ms["p50"] > NAGLE_SUSPECT_MS
                ),
                "livez_per_second": livez.throughput if livez else None,
                "decisions_per_second": decide.throughput if decide else None,
                "ratio": ratio,
                "ratio_pass": None if ratio is None else ratio >= RATIO_TARGET,
                "outcome_ratio": outcome_ratio,
                "outcome_ratio_pass": None
                if outcome_ratio is None
                else outcome_ratio >= RATIO_TARGET,
                "half_peak_rate": paced.rate if paced else None,
                "half_peak_p99_ms": p99,
                "half_peak_errors": paced.error_count if paced else None,
                "p99_pass": None
                if p99 is None
                else bool(p99 < P99_TARGET_MS and not paced.error_count),
            }
        )
    return found


def target_table(found: Sequence[dict[str, Any]]) -> Table:
    table = Table(
        "Targets",
        [
            "database",
            "workers",
            "1-conn /livez p50 ms",
            "/livez req/s",
            "decisions/s",
            "ratio",
            f">= {100 * RATIO_TARGET:.0f}% of /livez",
            "1-outcome ratio",
            f">= {100 * RATIO_TARGET:.0f}%",
            "half-peak rate",
            "p99 ms there",
            f"p99 < {P99_TARGET_MS:g} ms",
        ],
    )
    for item in found:
        table.add(
            item["database"],
            item["workers"],
            fmt_ms(item["idle_livez_p50_ms"]),
            fmt_rate(item["livez_per_second"]),
            fmt_rate(item["decisions_per_second"]),
            "-" if item["ratio"] is None else f"{100 * item['ratio']:.0f}%",
            verdict(item["ratio_pass"])
            + ("*" if item["livez_capped_by_delayed_ack"] and item["ratio"] is not None else ""),
            "-" if item["outcome_ratio"] is None else f"{100 * item['outcome_ratio']:.0f}%",
            verdict(item["outcome_ratio_pass"]),
            fmt_rate(item["half_peak_rate"]),
            fmt_ms(item["half_peak_p99_ms"]),
            verdict(item["p99_pass"]),
        )
    table.notes.append(
        "*: a 1-connection /livez round trip of ~40 ms is the delayed-ACK stall (see the peak"
        " table); it caps /livez, so the ratio of that row flatters decide."
    )
    return table


def profile_tables(profiles: dict[str, list[Any]]) -> list[Table]:
    tables = []
    for database_kind, results in profiles.items():
        for result in results:
            table = Table(
                f"Where {result.name} spends its time ({database_kind}, cProfile in process,"
                f" one request at a time, {result.requests} requests):"
                f" {result.ms_per_request:.2f} ms of app time per request under the profiler",
                [
                    "function (ours, and the hash / driver built-ins)",
                    "cum ms/req",
                    "own ms/req",
                    "share",
                ],
            )
            for name, cumulative, own in result.ours:
                table.add(
                    name,
                    fmt(cumulative, 3),
                    fmt(own, 3),
                    f"{100 * cumulative / result.ms_per_request:.0f}%",
                )
            table.notes.append(
                "largest own time anywhere: "
                + "; ".join(f"{name} {own:.3f} ms" for name, _, own in result.own_time[:5])
            )
            tables.append(table)
    return tables


# ---------------------------------------------------------------------------- environment
def environment(config: ServiceBenchConfig) -> dict[str, Any]:
    versions = {}
    for package in (
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "pydantic",
        "sqlalchemy",
        "sqlmodel",
        "psycopg",
        "httpx",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    info: dict[str, Any] = {**machine(ROOT), "service_packages": versions}
    info["load_generator"] = config.client
    return info


def _postgres_version() -> str | None:
    try:
        import psycopg

        with psycopg.connect(postgres_admin_url(), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except Exception:  # informational only
        return None


def _markdown_header(payload: dict[str, Any]) -> str:
    info = payload["environment"]
    git = info["git"]
    versions = info["service_packages"]
    return "\n".join(
        [
            "# Service benchmark" + (" (quick run)" if payload["quick"] else ""),
            "",
            f"- {payload['created']}, runtime {payload['runtime_seconds']:,.0f} s,"
            f" `{payload['command']}`" + (" (interrupted)" if payload["interrupted"] else ""),
            f"- git {git['commit']}" + (" with uncommitted changes" if git["dirty"] else ""),
            f"- python {info['python']}, {info['cpu_count']} CPUs, load average (1, 5, 15 min)"
            f" at the start {_load(payload['load_average_at_start'])} and the end"
            f" {_load(info['load_average'])}; {payload['idle_check_busy_cores']:.2f} cores busy"
            " in the second before the run (other work on the machine: see 'other CPU');"
            f" PostgreSQL {payload['postgres_version']}",
            f"- fastapi {versions['fastapi']}, starlette {versions['starlette']}, uvicorn"
            f" {versions['uvicorn']} (uvloop {versions['uvloop']}, httptools"
            f" {versions['httptools']}), sqlalchemy {versions['sqlalchemy']}, psycopg"
            f" {versions['psycopg']}",
            f"- load generator: {payload['config']['client']} asyncio client in its own process,"
            " on the same 2 cores as the server and PostgreSQL (see the CPU columns)",
            "",
        ]
    )


def _result_dict(result: ConfigResult) -> dict[str, Any]:
    """A configuration's results with the derived figures (properties) of each row."""
    data = asdict(result)
    for row, item in zip(result.measurements, data["measurements"], strict=True):
        item["other_cpu"] = row.other_cpu
        item["server_cpu_ms_per_request"] = row.server_cpu_ms_per_request
    return data


def _load(values: Sequence[float] | None) -> str:
    return "-" if not values else ", ".join(f"{value:.2f}" for value in values)


def busy_cores(seconds: float = 1.0) -> float:
    """Busy cores of the whole machine over ``seconds`` (before we start: other work)."""
    busy0, _ = machine_cpu()
    time.sleep(seconds)
    busy1, _ = machine_cpu()
    return (busy1 - busy0) / seconds


def write_results(
    directory: Path, payload: dict[str, Any], tables: Sequence[Table], profile_text: str
) -> tuple[Path, Path]:
    """Write ``service.json``, ``service.md`` and ``service_profile.txt``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "service.json", directory / "service.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path.write_text(_markdown_header(payload) + "\n" + "\n".join(t.markdown() for t in tables))
    if profile_text:
        (directory / "service_profile.txt").write_text(profile_text)
    return json_path, md_path


# ---------------------------------------------------------------------------- entry point
def _parse_list(value: str, choices: Sequence[str], option: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    wrong = [item for item in items if item not in choices]
    if not items or wrong:
        raise typer.BadParameter(
            f"expected a comma-separated subset of {','.join(choices)}; got {value!r}",
            param_hint=option,
        )
    return items


def _parse_workers(value: str) -> list[int]:
    try:
        items = [int(item) for item in value.split(",") if item.strip()]
    except ValueError:
        items = []
    if not items or any(not 1 <= item <= 16 for item in items):
        raise typer.BadParameter(
            f"expected comma-separated worker counts in [1, 16]; got {value!r}",
            param_hint="--workers",
        )
    return items


def run_profiles(
    databases: Sequence[str], config: ServiceBenchConfig, console: Console
) -> tuple[dict[str, list[Any]], str]:
    from bench.service_profile import profile_endpoints

    profiles: dict[str, list[Any]] = {}
    text = []
    for database_kind in databases:
        console.print(f"[dim]profiling decide and outcomes in process on {database_kind}[/dim]")
        with database(database_kind) as url:
            results = profile_endpoints(url, requests=config.profile_requests, spec_path=SPEC_PATH)
        profiles[database_kind] = results
        for result in results:
            text.append(f"===== {database_kind}: {result.name} ({result.requests} requests)\n")
            text.append(result.text)
    return profiles, "\n".join(text)


class Client(StrEnum):
    """The load generator's HTTP client (see :mod:`bench.service_load` for why raw)."""

    raw = "raw"
    httpx = "httpx"


app = typer.Typer(add_completion=False)


@app.command()
def main(
    quick: Annotated[
        bool, typer.Option("--quick", help="3 s per measurement instead of 10.")
    ] = False,
    workers: Annotated[
        str, typer.Option("--workers", help="Comma-separated worker counts.")
    ] = "1,2,4",
    databases: Annotated[
        str, typer.Option("--databases", help="Comma-separated: sqlite,postgresql.")
    ] = "sqlite,postgresql",
    duration: Annotated[
        float | None, typer.Option("--duration", min=1.0, max=60.0, help="Seconds per row.")
    ] = None,
    connections: Annotated[
        int | None,
        typer.Option("--connections", min=1, max=256, help="Closed-loop concurrency."),
    ] = None,
    client: Annotated[
        Client, typer.Option("--client", help="Load generator (raw: asyncio streams).")
    ] = Client.raw,
    profile: Annotated[
        bool, typer.Option("--profile/--no-profile", help="cProfile decide and outcomes.")
    ] = True,
    out: Annotated[Path, typer.Option("--out", help="Directory for the results.")] = RESULTS,
) -> None:
    """Benchmark the HTTP decision service against its own trivial endpoint."""
    worker_counts = _parse_workers(workers)
    kinds = _parse_list(databases, DATABASES, "--databases")
    config = ServiceBenchConfig.quick() if quick else ServiceBenchConfig()
    config = replace(
        config,
        duration=duration or config.duration,
        connections=connections or config.connections,
        client=client.value,
    )
    console = Console()
    if not console.is_terminal:
        console = Console(width=190)  # piped to a file: wide tables instead of 80 columns
    if "postgresql" in kinds:
        why = postgres_reachable(postgres_admin_url())
        if why is not None:
            console.print(f"[yellow]PostgreSQL unreachable, skipping it: {why}[/yellow]")
            kinds.remove("postgresql")
    spec = tomllib.loads(SPEC_PATH.read_text())
    began = time.perf_counter()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    load_at_start = list(os.getloadavg())
    idle_check = busy_cores()
    console.print(
        f"[bold]engage service benchmark[/bold]: {', '.join(kinds)} x workers"
        f" {worker_counts}; {config.duration:g} s per measurement. The load generator shares"
        f" this machine's {os.cpu_count()} CPUs with the server and PostgreSQL."
    )
    if idle_check > 0.25:
        console.print(
            f"[yellow]{idle_check:.2f} cores were busy before we started (load average"
            f" {_load(load_at_start)}): other work will lower and scatter these numbers;"
            " its share shows in the 'other CPU' column.[/yellow]"
        )
    results: list[ConfigResult] = []
    profiles: dict[str, list[Any]] = {}
    profile_text = ""
    interrupted = False
    reserve = PROFILE_SECONDS_PER_DATABASE * len(kinds) if profile else 0.0
    load = LoadClient()
    try:
        with terminate_as_interrupt(), tempfile.TemporaryDirectory(prefix="engage-bench-") as logs:
            for database_kind in kinds:
                for count in worker_counts:
                    result = ConfigResult(database_kind, count)
                    results.append(result)
                    timed = [item.seconds for item in results if item.seconds > 0]
                    expected = max(timed) if timed else config.config_seconds()
                    if time.perf_counter() - began + expected + reserve > BUDGET_SECONDS:
                        result.failure = "skipped: it would not finish within the time budget"
                        console.print(
                            f"[yellow]{database_kind} x {count}: {result.failure}[/yellow]"
                        )
                        continue
                    try:
                        run_config(
                            database_kind,
                            count,
                            config,
                            load,
                            spec=spec,
                            log_dir=Path(logs),
                            console=console,
                            outcome=result,
                        )
                    except Exception as exc:  # one broken configuration must not end the run
                        result.failure = f"{type(exc).__name__}: {exc}"
                        console.print(f"[red]{database_kind} x {count} failed: {exc}[/red]")
            if profile and time.perf_counter() - began + reserve <= BUDGET_SECONDS:
                profiles, profile_text = run_profiles(kinds, config, console)
            elif profile:
                console.print("[yellow]profile skipped: it would not fit the time budget[/yellow]")
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]interrupted: servers stopped; writing what was measured[/yellow]")
    finally:
        load.close()
    found = targets(results)
    tables = [
        peak_table(results, config),
        paced_table(results, config),
        *profile_tables(profiles),
        target_table(found),
    ]
    print_tables(console, tables)
    payload: dict[str, Any] = {
        "benchmark": "service",
        "created": created,
        "runtime_seconds": time.perf_counter() - began,
        "command": " ".join(["python -m bench.service", *sys.argv[1:]]),
        "quick": quick,
        "interrupted": interrupted,
        "config": asdict(config),
        "targets_fixed": {"ratio_to_livez": RATIO_TARGET, "p99_ms_at_half_peak": P99_TARGET_MS},
        "targets": found,
        "load_average_at_start": load_at_start,
        "idle_check_busy_cores": idle_check,
        "postgres_version": _postgres_version() if "postgresql" in kinds else None,
        "environment": environment(config),
        "results": [_result_dict(result) for result in results],
        "profiles": {
            kind: [{k: v for k, v in asdict(item).items() if k != "text"} for item in items]
            for kind, items in profiles.items()
        },
    }
    json_path, md_path = write_results(out, payload, tables, profile_text)
    console.print(f"runtime {payload['runtime_seconds']:,.0f} s; wrote {json_path} and {md_path}")
    if interrupted:
        raise typer.Exit(code=130)


if __name__ == "__main__":
    app()
