"""Soak: `engage serve` at half of its peak for minutes on end; errors, p99 drift, worker memory.

``python -m bench.service_soak`` (``make bench-soak``) starts the real server (``--workers``
processes, learner on, a SQLite file by default or a fresh PostgreSQL database with
``--database postgresql``) on the quickstart experiment, then:

1. peak: decisions in a closed loop (``connections`` keep-alive connections) for
   ``--peak-seconds``; the decision ids it logged are the ones outcomes will name;
2. soak: for ``--minutes``, requests arrive at a fixed rate (open loop, latency from each
   request's scheduled start, so a server that falls behind cannot hide it), by default half
   of that peak, ``--outcome-share`` of them outcome posts (a click naming a logged decision,
   so the learner keeps joining and publishing) and the rest decisions. Every sample
   (``--sample-seconds``, a minute by default) records answered rates, p50/p99, errors, what
   /healthz says, and the resident memory (VmRSS) of every process of the server.

Targets, fixed in advance, printed PASS / MISS and never asserted: no error at all (failed or
dropped requests, a /healthz that is not ok, a worker replaced); decision p99 stable (the
median p99 of the second half of the samples at most ``P99_DRIFT_TARGET`` times that of the
first half); each process's memory flat (end at most ``RSS_GROWTH_TARGET`` above its start,
the start being taken after the peak, once warm). Results go to
``bench/results/service_soak.json`` and ``service_soak.md``.

The load generator (two processes of :mod:`bench.service_load`, one per kind) shares the
machine with the server, as in ``bench.service``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from bench.report import Table, fmt, fmt_ms, fmt_rate, print_tables, verdict
from bench.service import ServiceBenchConfig, busy_cores, environment
from bench.service_load import Job, LoadClient, LoadResult
from bench.service_server import (
    Server,
    create_experiment,
    database,
    group_stat_fields,
    postgres_admin_url,
    postgres_reachable,
    prepare,
    terminate_as_interrupt,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SPEC_PATH = ROOT / "examples" / "quickstart.toml"
#: Share of the peak the soak runs at.
LOAD_FRACTION = 0.5
#: Targets fixed in advance.
P99_DRIFT_TARGET = 1.5
RSS_GROWTH_TARGET = 0.10
MIB = 1024 * 1024


@dataclass(frozen=True)
class SoakConfig:
    """What one soak run does (rates in requests per second)."""

    database: str = "sqlite"
    workers: int = 2
    minutes: float = 10.0
    sample_seconds: float = 60.0
    peak_seconds: float = 10.0
    connections: int = 16
    paced_connections: int = 32
    outcome_share: float = 0.2
    rate: float | None = None  # total; None: LOAD_FRACTION of the measured decide peak

    def samples(self) -> list[float]:
        """The length of each sample: whole ``sample_seconds``, the last one shorter."""
        total = self.minutes * 60.0
        count = max(math.ceil(total / self.sample_seconds - 1e-9), 1)
        lengths = [self.sample_seconds] * (count - 1)
        return [*lengths, max(total - sum(lengths), 1.0)]


@dataclass
class Sample:
    """One sample of the soak: both kinds of request, /healthz and every server process."""

    index: int
    seconds: float
    decide: dict[str, Any]
    outcomes: dict[str, Any]
    health_status: int | None
    health: dict[str, Any] | None
    rss_mib: dict[int, float]  # pid -> resident MiB at the end of the sample
    roles: dict[int, str]

    @property
    def errors(self) -> int:
        failed = sum(
            sum(part["errors"].values()) + part["dropped"] for part in (self.decide, self.outcomes)
        )
        return failed + (self.health_status != 200)


@dataclass
class SoakResult:
    config: SoakConfig
    peak_per_second: float | None = None
    rate: float | None = None
    start_rss_mib: dict[int, float] = field(default_factory=dict)
    start_roles: dict[int, str] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    failure: str | None = None
    interrupted: bool = False


# ---------------------------------------------------------------------------- processes
def process_group(group: int) -> dict[int, str]:
    """pid -> role of the live processes in process group ``group``.

    ``main`` is the process `engage serve` started (the supervisor with several workers, the
    only worker otherwise); ``worker`` a uvicorn worker; ``helper`` multiprocessing's resource
    tracker and the like.
    """
    found = {}
    for pid in group_stat_fields(group):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if pid == group:
            found[pid] = "main"
        elif b"resource_tracker" in command or b"semaphore_tracker" in command:
            found[pid] = "helper"
        else:
            found[pid] = "worker"
    return found


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (VmRSS), or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MIB
    except OSError:
        return None
    return None


def memory(server: Server) -> tuple[dict[int, float], dict[int, str]]:
    """RSS in MiB and role of every live process of ``server``."""
    if server.process is None:
        return {}, {}
    roles = process_group(server.process.pid)
    sizes = {pid: rss_mib(pid) for pid in roles}
    return {pid: size for pid, size in sizes.items() if size is not None}, roles


# ---------------------------------------------------------------------------- running
def _health(server: Server) -> tuple[int | None, dict[str, Any] | None]:
    try:
        answer = httpx.get(f"{server.base_url}/healthz", timeout=10, trust_env=False)
    except httpx.HTTPError:
        return None, None
    try:
        return answer.status_code, answer.json()
    except json.JSONDecodeError:
        return answer.status_code, None


def _summary(result: LoadResult) -> dict[str, Any]:
    return {
        "requests": result.requests,
        "answered_per_second": result.throughput,
        "latency_ms": result.latency_ms,
        "errors": dict(result.errors),
        "dropped": result.dropped,
        "rate": result.rate,
    }


def _run_both(
    clients: tuple[LoadClient, LoadClient], jobs: tuple[Job, Job]
) -> tuple[LoadResult, LoadResult]:
    """Run the two jobs at once, each in its own load-generator process."""
    results: list[LoadResult | BaseException | None] = [None, None]

    def run(position: int) -> None:
        try:
            results[position] = clients[position].run(jobs[position])
        except BaseException as error:  # handed to the caller below
            results[position] = error

    threads = [threading.Thread(target=run, args=(position,)) for position in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for item in results:
        if isinstance(item, BaseException):
            raise item
    first, second = results
    assert isinstance(first, LoadResult)
    assert isinstance(second, LoadResult)
    return first, second


def run_soak(
    config: SoakConfig,
    *,
    url: str,
    log_dir: Path,
    console: Console,
    outcome: SoakResult,
) -> None:
    """Server, experiment, peak, then the samples into ``outcome`` as they finish (so an
    interrupted run keeps them); the server is stopped whatever happens."""
    spec = tomllib.loads(SPEC_PATH.read_text())
    keys = prepare(url)
    server = Server(url, workers=config.workers, log_dir=log_dir)
    clients = (LoadClient(), LoadClient())
    try:
        server.start()
        create_experiment(server, keys["admin"], spec)
        base = Job(
            kind="decide",
            base_url=server.base_url,
            token=keys["decide"],
            experiment=spec["key"],
            duration=config.peak_seconds,
            warmup=1.0,
            connections=config.connections,
            max_requests=1_000_000,
        )
        console.print(f"[dim]peak: decisions, closed loop, {config.peak_seconds:g} s[/dim]")
        peak = clients[0].run(base)
        outcome.peak_per_second = peak.throughput
        if config.rate is None and not peak.throughput > 0:
            raise RuntimeError(f"no decision succeeded at peak: {peak.errors}")
        rate = config.rate or LOAD_FRACTION * peak.throughput
        outcome.rate = rate
        decide_rate = rate * (1.0 - config.outcome_share)
        outcome_rate = rate * config.outcome_share
        ids = tuple(peak.decision_ids)
        outcome.start_rss_mib, outcome.start_roles = memory(server)
        console.print(
            f"[bold]soak[/bold]: {rate:,.0f} requests/s ({decide_rate:,.0f} decisions,"
            f" {outcome_rate:,.0f} outcomes) for {config.minutes:g} min; peak was"
            f" {peak.throughput:,.0f} decisions/s"
        )
        for index, seconds in enumerate(config.samples()):
            common = {
                "duration": seconds,
                "warmup": 0.0,
                "connections": config.paced_connections,
                "seed": 1_000 + index,
            }
            decide_job = replace(
                base, **common, rate=decide_rate, max_requests=int(decide_rate * seconds) + 10
            )
            outcome_job = replace(
                base,
                **common,
                kind="outcomes",
                rate=max(outcome_rate, 0.1),
                max_requests=int(outcome_rate * seconds) + 10,
                decision_ids=ids,
            )
            decided, recorded = _run_both(clients, (decide_job, outcome_job))
            status, health = _health(server)
            sizes, roles = memory(server)
            sample = Sample(
                index=index,
                seconds=seconds,
                decide=_summary(decided),
                outcomes=_summary(recorded),
                health_status=status,
                health=health,
                rss_mib=sizes,
                roles=roles,
            )
            outcome.samples.append(sample)
            console.print(
                f"  [dim]sample {index + 1}: decide p99 {decided.latency_ms['p99']:.1f} ms,"
                f" {sample.errors} errors, RSS "
                + ", ".join(f"{roles.get(pid, '?')} {mib:.0f}" for pid, mib in sizes.items())
                + " MiB[/dim]"
            )
    finally:
        for client in clients:
            client.close()
        server.stop()


# ---------------------------------------------------------------------------- verdicts
def _median(values: Sequence[float]) -> float | None:
    finite = [value for value in values if math.isfinite(value)]
    return statistics.median(finite) if finite else None


def p99_drift(samples: Sequence[Sample]) -> float | None:
    """Median decision p99 of the second half of the samples over that of the first half."""
    if len(samples) < 2:
        return None
    values = [sample.decide["latency_ms"]["p99"] for sample in samples]
    half = len(values) // 2
    first, last = _median(values[:half]), _median(values[-half:])
    if first is None or last is None or first <= 0:
        return None
    return last / first


def rss_rows(result: SoakResult) -> list[dict[str, Any]]:
    """Each process's start and end RSS, growth, and slope (MiB per hour over the samples)."""
    rows = []
    end = result.samples[-1] if result.samples else None
    for pid, start in result.start_rss_mib.items():
        final = end.rss_mib.get(pid) if end is not None else None
        points = [
            (sum(s.seconds for s in result.samples[: i + 1]), s.rss_mib[pid])
            for i, s in enumerate(result.samples)
            if pid in s.rss_mib
        ]
        slope = None
        if len(points) >= 2:
            xs, ys = zip(*points, strict=True)
            slope = statistics.linear_regression(xs, ys).slope * 3600.0
        growth = None if final is None else final - start
        rows.append(
            {
                "pid": pid,
                "role": result.start_roles.get(pid, "?"),
                "start_mib": start,
                "end_mib": final,
                "growth_mib": growth,
                "growth_share": None if growth is None else growth / start,
                "slope_mib_per_hour": slope,
                "flat": None if growth is None else growth <= RSS_GROWTH_TARGET * start,
            }
        )
    return rows


def targets(result: SoakResult) -> dict[str, Any]:
    samples = result.samples
    start_pids = set(result.start_rss_mib)
    replaced = sorted({pid for s in samples for pid in s.rss_mib} - start_pids)
    lost = sorted(start_pids - set(samples[-1].rss_mib)) if samples else []
    errors = sum(sample.errors for sample in samples) + len(replaced) + len(lost)
    drift = p99_drift(samples)
    rows = rss_rows(result)
    flat = [row["flat"] for row in rows if row["flat"] is not None]
    return {
        "errors": errors,
        "errors_pass": errors == 0 if samples else None,
        "processes_replaced": replaced,
        "processes_lost": lost,
        "p99_drift": drift,
        "p99_pass": None if drift is None else drift <= P99_DRIFT_TARGET,
        "rss": rows,
        "rss_pass": all(flat) if flat and len(flat) == len(rows) else None,
    }


# ---------------------------------------------------------------------------- tables
def sample_table(result: SoakResult) -> Table:
    rate = fmt_rate(result.rate)
    table = Table(
        f"Soak: {rate} requests/s open loop ({100 * result.config.outcome_share:.0f}% outcome"
        f" posts), {result.config.workers} worker(s), {result.config.database}; one row per"
        f" {result.config.sample_seconds:g} s",
        [
            "sample",
            "decisions/s",
            "decide p50 ms",
            "decide p99 ms",
            "outcomes/s",
            "outcome p50 ms",
            "outcome p99 ms",
            "errors",
            "healthz",
            "RSS MiB (main / workers)",
        ],
    )
    for sample in result.samples:
        decide, record = sample.decide, sample.outcomes
        health = str(sample.health_status)
        if sample.health is not None and sample.health.get("status") != "ok":
            health += f" {sample.health.get('status')}"
        table.add(
            sample.index + 1,
            fmt_rate(decide["answered_per_second"]),
            fmt_ms(decide["latency_ms"]["p50"]),
            fmt_ms(decide["latency_ms"]["p99"]),
            fmt_rate(record["answered_per_second"]),
            fmt_ms(record["latency_ms"]["p50"]),
            fmt_ms(record["latency_ms"]["p99"]),
            sample.errors,
            health,
            " / ".join(
                f"{mib:.0f}"
                for pid, mib in sorted(sample.rss_mib.items())
                if sample.roles.get(pid) != "helper"
            ),
        )
    table.notes.append(
        "Latency from each request's scheduled start (open loop). errors: failed or dropped"
        " requests of both kinds, plus 1 when /healthz was not 200."
    )
    return table


def memory_table(found: dict[str, Any]) -> Table:
    table = Table(
        "Resident memory of each server process: after the peak (warm) and at the end",
        ["pid", "role", "start MiB", "end MiB", "growth MiB", "growth", "MiB/hour", "flat"],
    )
    for row in found["rss"]:
        table.add(
            row["pid"],
            row["role"],
            fmt(row["start_mib"], 1),
            fmt(row["end_mib"], 1),
            fmt(row["growth_mib"], 1),
            "-" if row["growth_share"] is None else f"{100 * row['growth_share']:+.1f}%",
            fmt(row["slope_mib_per_hour"], 1),
            verdict(row["flat"]),
        )
    table.notes.append(
        f"flat: end at most {100 * RSS_GROWTH_TARGET:.0f}% above start. MiB/hour: least-squares"
        " slope over the samples (noisy on short runs)."
    )
    return table


def target_table(result: SoakResult, found: dict[str, Any]) -> Table:
    table = Table("Targets", ["target", "measured", "verdict"])
    table.add("no errors", found["errors"], verdict(found["errors_pass"]))
    drift = found["p99_drift"]
    table.add(
        f"decision p99 stable (drift <= {P99_DRIFT_TARGET:g}x)",
        "-" if drift is None else f"{drift:.2f}x",
        verdict(found["p99_pass"]),
    )
    table.add(
        f"memory flat (each process <= +{100 * RSS_GROWTH_TARGET:.0f}%)",
        ", ".join(
            f"{row['role']} {fmt(row['growth_mib'], 1)} MiB"
            for row in found["rss"]
            if row["role"] != "helper"
        ),
        verdict(found["rss_pass"]),
    )
    if found["processes_replaced"] or found["processes_lost"]:
        table.notes.append(
            f"processes replaced during the run: {found['processes_replaced']}; gone:"
            f" {found['processes_lost']} (counted as errors)"
        )
    table.notes.append(
        f"rate: {fmt_rate(result.rate)} requests/s, "
        + (
            "given by --rate"
            if result.config.rate is not None
            else f"{100 * LOAD_FRACTION:.0f}% of the decide peak"
        )
        + f" ({fmt_rate(result.peak_per_second)} decisions/s, closed loop,"
        f" {result.config.connections} connections)."
    )
    return table


# ---------------------------------------------------------------------------- entry point
def _markdown_header(payload: dict[str, Any]) -> str:
    info = payload["environment"]
    git = info["git"]
    config = payload["config"]
    return "\n".join(
        [
            "# Service soak",
            "",
            f"- {payload['created']}, runtime {payload['runtime_seconds']:,.0f} s,"
            f" `{payload['command']}`" + (" (interrupted)" if payload["interrupted"] else ""),
            f"- git {git['commit']}" + (" with uncommitted changes" if git["dirty"] else ""),
            f"- {config['database']}, {config['workers']} worker(s), {config['minutes']:g} min;"
            f" python {info['python']}, {info['cpu_count']} CPUs,"
            f" {payload['idle_check_busy_cores']:.2f} cores busy before the run",
            "",
        ]
    )


def write_results(
    directory: Path, payload: dict[str, Any], tables: Sequence[Table]
) -> tuple[Path, Path]:
    """Write ``service_soak.json`` and ``service_soak.md``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "service_soak.json", directory / "service_soak.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path.write_text(_markdown_header(payload) + "\n" + "\n".join(t.markdown() for t in tables))
    return json_path, md_path


def soak(config: SoakConfig, *, out: Path, console: Console) -> tuple[SoakResult, dict[str, Any]]:
    """Run the soak and write its results; returns them and the targets."""
    kind = "postgresql" if config.database in ("postgres", "postgresql") else "sqlite"
    config = replace(config, database=kind)
    if kind == "postgresql":
        why = postgres_reachable(postgres_admin_url())
        if why is not None:
            raise typer.BadParameter(f"PostgreSQL is unreachable: {why}", param_hint="--database")
    began = time.perf_counter()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    idle = busy_cores()
    result = SoakResult(config)
    try:
        with (
            terminate_as_interrupt(),
            tempfile.TemporaryDirectory(prefix="engage-soak-") as logs,
            database(kind) as url,
        ):
            try:
                run_soak(config, url=url, log_dir=Path(logs), console=console, outcome=result)
            except (RuntimeError, TimeoutError, OSError) as error:
                result.failure = f"{type(error).__name__}: {error}"
                console.print(f"[red]soak failed: {result.failure}[/red]")
    except KeyboardInterrupt:
        result.interrupted = True
        console.print("[yellow]interrupted: server stopped; writing what was measured[/yellow]")
    found = targets(result)
    tables = [sample_table(result), memory_table(found), target_table(result, found)]
    if result.failure:
        tables[-1].notes.append(f"failed: {result.failure}")
    print_tables(console, tables)
    payload: dict[str, Any] = {
        "benchmark": "service_soak",
        "created": created,
        "runtime_seconds": time.perf_counter() - began,
        "command": " ".join(["python -m bench.service_soak", *sys.argv[1:]]),
        "interrupted": result.interrupted,
        "failure": result.failure,
        "config": asdict(config),
        "targets_fixed": {
            "errors": 0,
            "p99_drift": P99_DRIFT_TARGET,
            "rss_growth_share": RSS_GROWTH_TARGET,
        },
        "peak_decisions_per_second": result.peak_per_second,
        "rate": result.rate,
        "idle_check_busy_cores": idle,
        "environment": environment(ServiceBenchConfig()),
        "start_rss_mib": result.start_rss_mib,
        "samples": [asdict(sample) for sample in result.samples],
        "targets": found,
    }
    json_path, md_path = write_results(out, payload, tables)
    console.print(f"runtime {payload['runtime_seconds']:,.0f} s; wrote {json_path} and {md_path}")
    return result, found


app = typer.Typer(add_completion=False)


@app.command()
def main(
    minutes: Annotated[
        float, typer.Option("--minutes", min=0.05, max=24 * 60, help="Length of the soak.")
    ] = 10.0,
    workers: Annotated[int, typer.Option("--workers", min=1, max=16, help="Worker processes.")] = 2,
    database_kind: Annotated[
        str, typer.Option("--database", help="sqlite (a temporary file) or postgresql.")
    ] = "sqlite",
    rate: Annotated[
        float | None,
        typer.Option("--rate", min=1.0, help="Requests/s in all (default: half the peak)."),
    ] = None,
    outcome_share: Annotated[
        float, typer.Option("--outcome-share", min=0.0, max=0.9, help="Share of outcome posts.")
    ] = 0.2,
    sample_seconds: Annotated[
        float, typer.Option("--sample-seconds", min=1.0, max=3600.0, help="Seconds per sample.")
    ] = 60.0,
    peak_seconds: Annotated[
        float, typer.Option("--peak-seconds", min=1.0, max=120.0, help="Peak measurement.")
    ] = 10.0,
    out: Annotated[Path, typer.Option("--out", help="Directory for the results.")] = RESULTS,
) -> None:
    """Soak the HTTP decision service at half of its peak; report errors, p99 and memory."""
    if database_kind not in ("sqlite", "postgres", "postgresql"):
        raise typer.BadParameter(
            f"expected sqlite or postgresql; got {database_kind!r}", param_hint="--database"
        )
    config = SoakConfig(
        database=database_kind,
        workers=workers,
        minutes=minutes,
        sample_seconds=sample_seconds,
        peak_seconds=peak_seconds,
        outcome_share=outcome_share,
        rate=rate,
    )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped to a file: wide tables instead of 80 columns
    console.print(
        f"[bold]engage service soak[/bold]: {config.database}, {workers} worker(s),"
        f" {minutes:g} min; the load generator shares this machine's {os.cpu_count()} CPUs."
    )
    result, _ = soak(config, out=out, console=console)
    if result.interrupted:
        raise typer.Exit(code=130)
    if result.failure:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
