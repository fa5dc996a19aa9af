"""Policy benchmark: our policies against Vowpal Wabbit and MABWiser on known-truth worlds.

``python -m bench.policies`` (``make bench``) runs, on the same pre-drawn rounds for every
agent (same contexts, same reward draws):

- A, the K = 8, d = 10 logistic bandit, 20,000 rounds: reward at batch 1 (one
  ``select`` then one ``update`` per round, as the service sees it) and at batch 100, the
  throughput of both, tracemalloc memory, and our ratios to each reference;
- D, E, F, more stationary worlds (another K = 8, d = 10 world, K = 4 / d = 5, K = 16 /
  d = 20): reward at batch 1 and 100 against the references;
- on A, D, E, F, ``linear_ts floor 0`` beside the default ``linear_ts``: the same policy
  without the exploration floor, like for like with MABWiser's LinTS (which has none);
  ``python -m bench.ts_gap`` measures where the default row's gap to LinTS comes from;
- C, A with weights rotating over the horizon, and S, J, P, A with a slow drift, an abrupt
  change and a periodic drift: is drift_ts (which learns its drift rate) ahead of the
  stationary policies, and on A, D, E, F no more than a little behind them;
- B, the factored 1,200-action space with 20 context features: reward and learning curves
  against per-arm models (our linucb with one level per action, MABWiser LinUCB with 1,200
  arms), single-decision latency and throughput.

Targets are printed as PASS / MISS, never asserted (margins in :mod:`bench.summary`). The
drift targets alone, without the references, B or the slow policies (about 6 minutes)::

    python -m bench.policies --no-references --only drift_ts --only epsilon_greedy \
        --only linucb --only linear_ts --only logistic_ts \
        --env A --env D --env E --env F --env C --env S --env J --env P
Results go to ``bench/results/policies.json`` and ``policies.md``.
"""

from __future__ import annotations

import cProfile
import io
import math
import os
import pstats
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import summary
from bench.agents import (
    OUR_POLICIES,
    Agent,
    AgentSpec,
    like_for_like_agents,
    our_agents,
    per_arm_agents,
    reference_agents,
    references_available,
)
from bench.core import Latency, RunRecord, measure_latency, measure_memory, run_agent
from bench.environments import (
    DRIFT_KEYS,
    STATIONARY_KEYS,
    EnvSpec,
    Stream,
    environment_specs,
    make_stream,
)
from bench.lifetime_agents import LIFETIME_POLICIES, lifetime_agents
from bench.report import Table, machine, print_tables, write_results
from bench.summary import AgentResult, EnvResult

T = TypeVar("T")
#: Every environment, in the order the run measures them.
ALL_KEYS = (*STATIONARY_KEYS, *DRIFT_KEYS, "B")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of one benchmark run.

    ``max_seconds`` caps the agent time of each reward run (a capped run is starred in the
    tables); ``latency_seconds`` caps each latency measurement, and twice it each batch-1
    speed measurement on B.
    """

    rounds: int = 20_000
    factored_rounds: int = 10_000
    tail: int = 5_000
    window: int = 1_000
    small_batch: int = 1
    large_batch: int = 100
    drift_angle: float = 2 * math.pi
    drift_batch: int = 1
    factored_batch: int = 100
    latency_calls: int = 2_000
    latency_seconds: float = 5.0
    factored_speed_rounds: int = 1_000
    memory_rounds: int = 1_000
    max_seconds: float = 45.0
    seed: int = 0

    @classmethod
    def quick(cls) -> BenchConfig:
        """A smoke run of a minute or two."""
        return cls(
            rounds=2_000,
            factored_rounds=1_000,
            tail=500,
            window=100,
            latency_calls=200,
            latency_seconds=2.0,
            factored_speed_rounds=200,
            memory_rounds=300,
            max_seconds=10.0,
        )


@dataclass
class BenchOutcome:
    """What one run produced: per-environment results, verdicts, JSON payload and tables."""

    results: dict[str, EnvResult]
    targets: list[summary.TargetResult]
    payload: dict[str, object]
    tables: list[Table]


class _Runner:
    """Runs agents under a progress display; one transient bar per measurement."""

    def __init__(self, config: BenchConfig, progress: Progress) -> None:
        self.config = config
        self.progress = progress
        self.overall = progress.add_task("measurements done", total=None)

    def _measure(self, label: str, total: int, work: Callable[[Callable[[int], None]], T]) -> T:
        task = self.progress.add_task(label, total=total)
        try:
            return work(lambda n: self.progress.advance(task, n))
        finally:
            self.progress.remove_task(task)
            self.progress.advance(self.overall, 1)

    def reward(
        self, env: EnvSpec, stream: Stream, spec: AgentSpec, batch_size: int
    ) -> tuple[Agent, RunRecord]:
        agent = spec.build(env)
        record = self._measure(
            f"{env.key} {spec.name} batch {batch_size}",
            stream.n_rounds,
            lambda advance: run_agent(
                agent,
                stream,
                batch_size=batch_size,
                max_seconds=self.config.max_seconds,
                on_batch=advance,
            ),
        )
        return agent, record

    def memory(self, env: EnvSpec, stream: Stream, spec: AgentSpec, result: AgentResult) -> None:
        if not spec.traceable:
            result.memory_note = "native heap, not visible to tracemalloc"
            return
        result.memory = self._measure(
            f"{env.key} {spec.name} memory",
            1,
            lambda advance: measure_memory(
                lambda: spec.build(env),
                stream,
                batch_size=self.config.large_batch,
                max_seconds=self.config.max_seconds / 4,
            ),
        )

    def latency(self, env: EnvSpec, spec: AgentSpec, agent: Agent, stream: Stream) -> Latency:
        contexts = stream.contexts[: self.config.latency_calls]
        return self._measure(
            f"{env.key} {spec.name} latency",
            contexts.shape[0],
            lambda advance: measure_latency(
                agent, contexts, max_seconds=self.config.latency_seconds, on_call=advance
            ),
        )

    def speed(self, env: EnvSpec, spec: AgentSpec, agent: Agent, stream: Stream) -> RunRecord:
        return self._measure(
            f"{env.key} {spec.name} batch 1 speed",
            stream.n_rounds,
            lambda advance: run_agent(
                agent,
                stream,
                batch_size=1,
                max_seconds=2 * self.config.latency_seconds,
                on_batch=advance,
            ),
        )


def _result(spec: AgentSpec) -> AgentResult:
    return AgentResult(name=spec.name, kind=spec.kind, policy=spec.policy, note=spec.note)


def _stationary(
    runner: _Runner, env: EnvSpec, agents: Sequence[AgentSpec], batches: Sequence[int]
) -> tuple[EnvResult, Stream]:
    """Reward runs of every agent at every batch size on one stream (A and C)."""
    config = runner.config
    stream = make_stream(env, config.rounds)
    result = EnvResult(env, config.rounds, {spec.name: _result(spec) for spec in agents})
    for batch_size in batches:
        for spec in agents:
            _, record = runner.reward(env, stream, spec, batch_size)
            result.agents[spec.name].runs[batch_size] = record.summary(config.tail, config.window)
    return result, stream


def _run_a(
    runner: _Runner, env: EnvSpec, agents: Sequence[AgentSpec]
) -> tuple[EnvResult, list[Table]]:
    config = runner.config
    small, large = config.small_batch, config.large_batch
    result, stream = _stationary(runner, env, agents, (small, large))
    memory_stream = stream.head(min(config.memory_rounds, config.rounds))
    for spec in agents:
        runner.memory(env, memory_stream, spec, result.agents[spec.name])
    result.ratios = summary.ratios(result, small, large)
    reward = summary.reward_table(
        f"A: {env.title}, {config.rounds:,} rounds, batch {small}",
        result,
        small,
        config.tail,
        target=True,
    )
    summary.add_batch_column(reward, result, large, config.tail)
    tables = [reward, summary.speed_table(result, small, large, config.memory_rounds)]
    ratio = summary.ratio_table(result, small, large, config.tail)
    if ratio is not None:
        tables.append(ratio)
    return result, tables


def _run_more(
    runner: _Runner, env: EnvSpec, agents: Sequence[AgentSpec]
) -> tuple[EnvResult, list[Table]]:
    """Another stationary world: reward at both batch sizes, no speed or memory."""
    config = runner.config
    small, large = config.small_batch, config.large_batch
    result, _ = _stationary(runner, env, agents, (small, large))
    reward = summary.reward_table(
        f"{env.key}: {env.title}, {config.rounds:,} rounds, batch {small}",
        result,
        small,
        config.tail,
        target=False,
    )
    summary.add_batch_column(reward, result, large, config.tail)
    return result, [reward]


def _run_c(
    runner: _Runner, env: EnvSpec, agents: Sequence[AgentSpec]
) -> tuple[EnvResult, list[Table]]:
    config = runner.config
    result, stream = _stationary(runner, env, agents, (config.drift_batch,))
    result.drift = summary.drift_verdict(result, config.drift_batch)
    table = summary.reward_table(
        f"{env.key}: {env.title}, {config.rounds:,} rounds, batch {config.drift_batch}",
        result,
        config.drift_batch,
        config.tail,
        target=False,
    )
    summary.drift_notes(table, result.drift, config.tail)
    return result, [table, summary.curve_table(result, config.drift_batch, stream.optimal)]


def _run_b(
    runner: _Runner, env: EnvSpec, agents: Sequence[AgentSpec]
) -> tuple[EnvResult, list[Table]]:
    config = runner.config
    batch = config.factored_batch
    stream = make_stream(env, config.factored_rounds)
    fresh = make_stream(env, max(config.latency_calls, config.factored_speed_rounds), seed_offset=1)
    speed_stream = fresh.head(config.factored_speed_rounds)
    memory_stream = stream.head(min(config.memory_rounds, config.factored_rounds))
    result = EnvResult(env, config.factored_rounds, {spec.name: _result(spec) for spec in agents})
    for spec in agents:
        entry = result.agents[spec.name]
        agent, record = runner.reward(env, stream, spec, batch)
        entry.runs[batch] = record.summary(config.tail, config.window)
        entry.latency = runner.latency(env, spec, agent, fresh)
        entry.speed_small = runner.speed(env, spec, agent, speed_stream).summary(
            config.tail, config.window
        )
        runner.memory(env, memory_stream, spec, entry)
    summary.rounds_to_level(result, batch, "linucb per-arm")
    reward = summary.reward_table(
        f"B: {env.title}, {config.factored_rounds:,} rounds, batch {batch}",
        result,
        batch,
        config.tail,
        target=False,
    )
    summary.add_per_arm_column(reward, result, config.tail)
    return result, [
        reward,
        summary.curve_table(result, batch, stream.optimal),
        summary.latency_table(result, batch, config.latency_calls, config.latency_seconds),
    ]


def run_benchmark(
    config: BenchConfig,
    *,
    policies: Sequence[str] = (*OUR_POLICIES, *LIFETIME_POLICIES),
    environments: Sequence[str] = ALL_KEYS,
    references: bool = True,
    console: Console | None = None,
    show_progress: bool = True,
) -> BenchOutcome:
    """Run the benchmark; print each environment's tables as it finishes; write nothing."""
    console = console or Console()
    began = time.perf_counter()
    specs = environment_specs(config.drift_angle)
    ours = our_agents(tuple(name for name in policies if name in OUR_POLICIES), config.seed)
    lifetime = lifetime_agents(tuple(policies), config.seed)  # B only: they need a customer
    alike = like_for_like_agents(tuple(policies), config.seed)
    refs = reference_agents(config.seed) if references else []
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_at_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    results: dict[str, EnvResult] = {}
    tables: list[Table] = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
        transient=True,
    )
    with progress:
        runner = _Runner(config, progress)
        for key in ALL_KEYS:
            if key not in environments:
                continue
            env = specs[key]
            if key == "A":
                results[key], new = _run_a(runner, env, [*ours, *alike, *refs])
            elif key in STATIONARY_KEYS:
                results[key], new = _run_more(runner, env, [*ours, *alike, *refs])
            elif key in DRIFT_KEYS:
                results[key], new = _run_c(runner, env, [*ours, *refs])
            else:
                baselines = per_arm_agents(config.seed, references=references)
                results[key], new = _run_b(runner, env, [*ours, *lifetime, *baselines])
            print_tables(console, new)
            tables.extend(new)
    found = summary.targets(results, config.small_batch, config.large_batch, config.tail)
    tables.append(summary.target_table(found))
    runtime = time.perf_counter() - began
    payload: dict[str, object] = {
        "benchmark": "policies",
        "created": started,
        "runtime_seconds": runtime,
        "command": " ".join(["python -m bench.policies", *sys.argv[1:]]),
        "config": asdict(config),
        "targets_fixed": {
            "reward_expected_tail": summary.REWARD_TARGET,
            "rounds_per_second_batch_small": summary.SPEED_TARGET_SMALL,
            "rounds_per_second_batch_large": summary.SPEED_TARGET_LARGE,
            "latency_p99_ms": summary.LATENCY_TARGET_MS,
            "drift_margin": summary.DRIFT_MARGIN,
            "thompson_margin": summary.TS_MARGIN,
            "drift_policy_at_rest_margin": summary.REST_MARGIN,
        },
        "targets": [asdict(item) for item in found],
        "references_available": references_available(),
        "references_run": [spec.name for spec in refs],
        "machine": {**machine(ROOT), "load_average_at_start": load_at_start},
        "environments": {key: asdict(result) for key, result in results.items()},
    }
    return BenchOutcome(results, found, payload, tables)


def profile_policies(
    policies: Sequence[str], console: Console, *, rounds: int = 2_000, top: int = 12
) -> str:
    """cProfile of our policies' select + update on A (batch 1) and B (batch 100)."""
    specs = environment_specs(0.0)
    report = io.StringIO()
    for key, batch_size in (("A", 1), ("B", 100)):
        stream = make_stream(specs[key], rounds)
        for spec in our_agents(tuple(policies), 0):
            agent = spec.build(specs[key])
            profiler = cProfile.Profile()
            profiler.enable()
            record = run_agent(agent, stream, batch_size=batch_size, max_seconds=30.0)
            profiler.disable()
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats("tottime").print_stats(
                top
            )
            lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
            text = (
                f"== {key} {spec.name} batch {batch_size}: {record.rounds:,} rounds,"
                f" {record.rounds_per_second:,.0f} rounds/s under the profiler\n"
                + "\n".join(lines[2:])
            )
            console.print(text, markup=False, highlight=False)
            report.write(text + "\n\n")
    return report.getvalue()


def _markdown_header(outcome: BenchOutcome, *, quick: bool) -> str:
    payload = outcome.payload
    info = payload["machine"]
    assert isinstance(info, dict)
    git, packages, blas = info["git"], info["packages"], info["blas"]
    blas_text = (
        ", ".join(
            f"{b['prefix']}: {b['internal_api']} {b['version']} ({b['num_threads']} threads)"
            for b in blas
        )
        if isinstance(blas, list)
        else str(blas)
    )
    references = ", ".join(payload["references_run"]) or "none"  # type: ignore[arg-type]
    return "\n".join(
        [
            "# Policy benchmark" + (" (quick run)" if quick else ""),
            "",
            f"- {payload['created']}, runtime {payload['runtime_seconds']:,.0f} s,"
            f" `{payload['command']}`",
            f"- git {git['commit']}" + (" with uncommitted changes" if git["dirty"] else ""),
            f"- python {info['python']}, numpy {packages['numpy']}, BLAS {blas_text},"
            f" {info['cpu_count']} CPUs, load average (1, 5, 15 min) at the start"
            f" {_load(info['load_average_at_start'])} and the end {_load(info['load_average'])}"
            " (other work on the machine slows the timings)",
            f"- references: {references}; vowpalwabbit {packages['vowpalwabbit']},"
            f" mabwiser {packages['mabwiser']}",
            "- targets are reported, never asserted; thresholds and margins are fixed in"
            " `bench/summary.py`",
            "",
        ]
    )


def _load(values: object) -> str:
    if not isinstance(values, list | tuple):
        return "n/a"
    return "/".join(f"{value:.1f}" for value in values)


class EnvKey(StrEnum):
    A = "A"
    D = "D"
    E = "E"
    F = "F"
    C = "C"
    S = "S"
    J = "J"
    P = "P"
    B = "B"


app = typer.Typer(add_completion=False)


@app.command()
def main(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer rounds and calls.")] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Only this policy of ours (repeatable).")
    ] = None,
    env: Annotated[
        list[EnvKey] | None, typer.Option("--env", help="Only this environment (repeatable).")
    ] = None,
    references: Annotated[
        bool, typer.Option("--references/--no-references", help="Run VW and MABWiser.")
    ] = True,
    profile: Annotated[
        bool, typer.Option("--profile", help="Profile our policies instead of benchmarking.")
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="Directory for the results.")] = RESULTS,
) -> None:
    """Benchmark engage's policies against Vowpal Wabbit and MABWiser."""
    known = (*OUR_POLICIES, *LIFETIME_POLICIES)
    names = tuple(only) if only else known
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise typer.BadParameter(
            f"unknown policy {unknown}; expected some of {list(known)}.",
            param_hint="--only",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=170)  # piped to a file: wide tables instead of 80 columns
    if profile:
        plain = tuple(name for name in names if name in OUR_POLICIES)  # on A, with no customer
        text = profile_policies(plain, console, rounds=500 if quick else 2_000)
        out.mkdir(parents=True, exist_ok=True)
        (out / "profile.txt").write_text(text)
        return
    missing = [name for name, ok in references_available().items() if not ok]
    if references and missing:
        console.print(
            f"[yellow]not installed: {', '.join(missing)} (pip install -e '.[bench]');"
            " running without them[/yellow]"
        )
    config = BenchConfig.quick() if quick else BenchConfig()
    keys = tuple(item.value for item in env) if env else ALL_KEYS
    outcome = run_benchmark(
        config, policies=names, environments=keys, references=references, console=console
    )
    console.print(outcome.tables[-1].rich())
    json_path, md_path = write_results(
        out, outcome.payload, outcome.tables, _markdown_header(outcome, quick=quick)
    )
    console.print(
        f"runtime {outcome.payload['runtime_seconds']:,.0f} s; wrote {json_path} and {md_path}"
    )


if __name__ == "__main__":
    app()
