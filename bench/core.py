"""The benchmark loop and its measurements: reward, throughput, latency, memory.

Throughput counts only the time spent inside the agent's ``select`` and ``update`` (the
environment's bookkeeping is excluded): ``rounds / (select seconds + update seconds)``, in
wall-clock time (the target) and in this process's CPU time, which other work on a shared
machine disturbs much less.
Memory is the ``tracemalloc`` peak of building the agent and running it, with the stream's
arrays allocated before tracing starts; it sees numpy and Python allocations but not a C++
heap (Vowpal Wabbit), which is reported as not measured.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bandit.policies.base import Policy
from bench.agents import Agent
from bench.environments import Stream

#: Our policies' default exploration floor: the share of every decision spread uniformly.
FLOOR = Policy.default_floor


def floor_ceiling(optimal: np.ndarray, uniform: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """The most a policy mixing ``floor`` of uniform choice into its own can expect per round,
    ``(1 - floor) optimal + floor uniform``."""
    return (1.0 - floor) * optimal + floor * uniform


@dataclass(frozen=True)
class RunSummary:
    """What the tables and the JSON keep of a run: means, speed and the learning curve.

    ``*_all`` average over every round played, ``*_tail`` over the last ``tail_rounds``;
    ``expected`` is the true success probability of the chosen action and ``optimal`` the
    best action's; ``ceiling`` is the best a policy under our default exploration floor
    ``f`` can expect, ``(1 - f) optimal + f uniform`` (``uniform``: the mean over the eligible
    actions); ``curve`` is the mean expected reward per ``window`` rounds.
    """

    batch_size: int
    rounds: int
    planned_rounds: int
    truncated: bool
    tail_rounds: int
    reward_all: float
    expected_all: float
    optimal_all: float
    reward_tail: float
    expected_tail: float
    optimal_tail: float
    ceiling_tail: float
    rounds_per_second: float
    cpu_rounds_per_second: float
    select_seconds: float
    update_seconds: float
    cpu_seconds: float
    window: int
    curve: list[float]

    @property
    def regret_tail(self) -> float:
        """Mean expected regret per round over the tail against the optimum."""
        return self.optimal_tail - self.expected_tail

    @property
    def ceiling_regret_tail(self) -> float:
        """The same against the floor's ceiling (negative: above it, as without a floor)."""
        return self.ceiling_tail - self.expected_tail


@dataclass
class RunRecord:
    """One agent's pass over the first ``rounds`` rounds of a stream at one batch size.

    ``rewards`` and ``expected`` hold the realised and expected (true ``p``) reward of each
    round played, ``optimal`` and ``uniform`` the best action's and the eligible actions' mean;
    ``truncated`` says the run hit its time budget before ``planned`` rounds.
    """

    batch_size: int
    planned: int
    rewards: np.ndarray
    expected: np.ndarray
    optimal: np.ndarray
    select_seconds: float
    update_seconds: float
    cpu_seconds: float
    uniform: np.ndarray

    @property
    def rounds(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def truncated(self) -> bool:
        return self.rounds < self.planned

    @property
    def rounds_per_second(self) -> float:
        seconds = self.select_seconds + self.update_seconds
        return self.rounds / seconds if seconds > 0 else float("inf")

    @property
    def cpu_rounds_per_second(self) -> float:
        return self.rounds / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")

    def summary(self, tail: int, window: int) -> RunSummary:
        """Means over all rounds played and over the last ``tail`` of them, and the curve."""
        last = slice(max(0, self.rounds - tail), self.rounds)
        return RunSummary(
            batch_size=self.batch_size,
            rounds=self.rounds,
            planned_rounds=self.planned,
            truncated=self.truncated,
            tail_rounds=last.stop - last.start,
            reward_all=float(self.rewards.mean()),
            expected_all=float(self.expected.mean()),
            optimal_all=float(self.optimal.mean()),
            reward_tail=float(self.rewards[last].mean()),
            expected_tail=float(self.expected[last].mean()),
            optimal_tail=float(self.optimal[last].mean()),
            ceiling_tail=float(floor_ceiling(self.optimal[last], self.uniform[last]).mean()),
            rounds_per_second=self.rounds_per_second,
            cpu_rounds_per_second=self.cpu_rounds_per_second,
            select_seconds=self.select_seconds,
            update_seconds=self.update_seconds,
            cpu_seconds=self.cpu_seconds,
            window=window,
            curve=self.curve(window),
        )

    def curve(self, window: int) -> list[float]:
        """Mean expected reward per consecutive window of rounds (the learning curve)."""
        return [
            float(self.expected[start : start + window].mean())
            for start in range(0, self.rounds, window)
        ]


def run_agent(
    agent: Agent,
    stream: Stream,
    *,
    batch_size: int,
    rounds: int | None = None,
    max_seconds: float | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> RunRecord:
    """Play ``rounds`` rounds of ``stream`` in batches: select, observe, update.

    Stops early (``truncated``) once the agent's own time exceeds ``max_seconds``.
    """
    planned = stream.n_rounds if rounds is None else min(rounds, stream.n_rounds)
    rewards = np.empty(planned)
    expected = np.empty(planned)
    select_seconds = update_seconds = cpu_seconds = 0.0
    done = 0
    clock, cpu = time.perf_counter, time.process_time
    for start in range(0, planned, batch_size):
        stop = min(start + batch_size, planned)
        X = stream.contexts[start:stop]
        began, began_cpu = clock(), cpu()
        actions, propensities = agent.select(X)
        select_seconds += clock() - began
        cpu_seconds += cpu() - began_cpu
        reward, probability = stream.outcomes(start, stop, actions)
        began, began_cpu = clock(), cpu()
        agent.update(X, actions, reward, propensities)
        update_seconds += clock() - began
        cpu_seconds += cpu() - began_cpu
        rewards[start:stop] = reward
        expected[start:stop] = probability
        done = stop
        if on_batch is not None:
            on_batch(stop - start)
        if max_seconds is not None and select_seconds + update_seconds > max_seconds:
            break
    return RunRecord(
        batch_size=batch_size,
        planned=planned,
        rewards=rewards[:done],
        expected=expected[:done],
        optimal=stream.optimal[:done].copy(),
        select_seconds=select_seconds,
        update_seconds=update_seconds,
        cpu_seconds=cpu_seconds,
        uniform=stream.uniform[:done].copy(),
    )


@dataclass(frozen=True)
class Latency:
    """Distribution of single-decision times in milliseconds over ``calls`` calls."""

    calls: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class Memory:
    """``tracemalloc`` peak and what is still held at the end, in MiB, over a short run."""

    peak_mib: float
    retained_mib: float
    rounds: int
    batch_size: int


def measure_latency(
    agent: Agent,
    contexts: np.ndarray,
    *,
    max_seconds: float | None = None,
    on_call: Callable[[int], None] | None = None,
) -> Latency:
    """Time single decisions: ``select`` on a batch of one for each row of ``contexts``.

    No update between calls (a served model between publications). Returns the count and
    the p50 / p90 / p99 / max latency in milliseconds.
    """
    timings = []
    total = 0.0
    clock = time.perf_counter_ns
    for i in range(contexts.shape[0]):
        row = contexts[i : i + 1]
        began = clock()
        agent.select(row)
        elapsed = (clock() - began) / 1e6
        timings.append(elapsed)
        total += elapsed / 1e3
        if on_call is not None:
            on_call(1)
        if max_seconds is not None and total > max_seconds:
            break
    values = np.asarray(timings)
    return Latency(
        calls=int(values.size),
        p50_ms=float(np.percentile(values, 50)),
        p90_ms=float(np.percentile(values, 90)),
        p99_ms=float(np.percentile(values, 99)),
        max_ms=float(values.max()),
    )


def measure_memory(
    build: Callable[[], Agent],
    stream: Stream,
    *,
    batch_size: int,
    max_seconds: float | None = None,
) -> Memory:
    """``tracemalloc`` peak (MiB) of building an agent and playing ``stream`` with it.

    ``stream`` should carry its truth table (:meth:`Stream.head`) so that no environment
    arrays are allocated while tracing. ``retained_mib`` is what the agent still holds at the
    end (its learned state plus anything it caches).
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline, _ = tracemalloc.get_traced_memory()
    agent = build()
    record = run_agent(agent, stream, batch_size=batch_size, max_seconds=max_seconds)
    current, peak = tracemalloc.get_traced_memory()
    if not was_tracing:
        tracemalloc.stop()
    del agent
    return Memory(
        peak_mib=(peak - baseline) / 2**20,
        retained_mib=(current - baseline) / 2**20,
        rounds=record.rounds,
        batch_size=batch_size,
    )


def first_round_reaching(curve: list[float], window: int, level: float) -> int | None:
    """Rounds played by the end of the first window whose mean reaches ``level`` (or None)."""
    for index, value in enumerate(curve):
        if value >= level:
            return (index + 1) * window
    return None
