"""Results of a benchmark run as values, the verdicts on the targets, and the tables.

Targets and margins are fixed here, before any run, and reported as PASS / MISS; nothing is
asserted (statistical and speed claims belong in the benchmark, not in flaky tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.agents import CONTEXTUAL, DRIFT_POLICY, LIKE_FOR_LIKE_TS, STATIONARY
from bench.core import FLOOR, Latency, Memory, RunSummary, first_round_reaching
from bench.environments import EnvSpec
from bench.report import Table, fmt, fmt_rate, fmt_ratio, verdict

REWARD_TARGET = 0.775  # expected reward over the last 5,000 rounds of A
SPEED_TARGET_SMALL = 10_000.0  # rounds/s at batch 1 on A
SPEED_TARGET_LARGE = 300_000.0  # rounds/s at batch 100 on A
LATENCY_TARGET_MS = 2.0  # p99 of one select (batch of one) on the 1,200-action space
DRIFT_MARGIN = (
    0.01  # drift_ts ahead of the best stationary policy of ours, drift worlds, last 5,000
)
TS_MARGIN = 0.003  # linear_ts at most this far behind MABWiser's LinTS, stationary worlds
REST_MARGIN = 0.005  # drift_ts at most this far behind the best stationary policy, stationary


@dataclass
class AgentResult:
    """Everything measured for one agent in one environment; ``runs`` keyed by batch size."""

    name: str
    kind: str
    policy: str | None
    note: str
    runs: dict[int, RunSummary] = field(default_factory=dict)
    memory: Memory | None = None
    memory_note: str = ""
    latency: Latency | None = None
    speed_small: RunSummary | None = None

    @property
    def ours(self) -> bool:
        return self.kind == "ours"


@dataclass(frozen=True)
class Ratio:
    """Ours divided by a reference: expected reward (last rounds) and throughput."""

    reward: float
    speed_small: float
    speed_large: float


@dataclass(frozen=True)
class DriftVerdict:
    """The drift policy (:data:`bench.agents.DRIFT_POLICY`) against the best stationary policy
    of ours (and the best reference) in a drifting environment."""

    drift_tail: float
    best_stationary: str
    stationary_tail: float
    lead: float
    passed: bool
    best_reference: str | None
    reference_lead: float | None


@dataclass(frozen=True)
class TargetResult:
    target: str
    passed: bool | None
    detail: str


@dataclass
class EnvResult:
    """One environment's agents and derived comparisons."""

    spec: EnvSpec
    rounds: int
    agents: dict[str, AgentResult] = field(default_factory=dict)
    ratios: dict[str, dict[str, Ratio]] = field(default_factory=dict)
    drift: DriftVerdict | None = None
    per_arm_level: float | None = None
    rounds_to_per_arm: dict[str, int | None] = field(default_factory=dict)

    def ours(self) -> dict[str, AgentResult]:
        return {name: agent for name, agent in self.agents.items() if agent.ours}


# ----------------------------------------------------------------------------- derived


def ratios(result: EnvResult, small: int, large: int) -> dict[str, dict[str, Ratio]]:
    """Ours / each reference on expected reward (last rounds, ``small`` batch) and speed."""
    references = [agent for agent in result.agents.values() if agent.kind == "reference"]
    table: dict[str, dict[str, Ratio]] = {}
    for name, mine in result.ours().items():
        table[name] = {
            other.name: Ratio(
                reward=mine.runs[small].expected_tail / other.runs[small].expected_tail,
                speed_small=mine.runs[small].rounds_per_second
                / other.runs[small].rounds_per_second,
                speed_large=mine.runs[large].rounds_per_second
                / other.runs[large].rounds_per_second,
            )
            for other in references
        }
    return table


def drift_verdict(result: EnvResult, batch: int) -> DriftVerdict | None:
    """Lead of the drift policy over the best stationary policy of ours, with the fixed margin."""
    agents = result.agents
    if DRIFT_POLICY not in agents:
        return None
    drifting = agents[DRIFT_POLICY].runs[batch].expected_tail
    stationary = {
        name: agent.runs[batch].expected_tail
        for name, agent in result.ours().items()
        if agent.policy in STATIONARY
    }
    if not stationary:
        return None
    references = {
        name: agent.runs[batch].expected_tail
        for name, agent in agents.items()
        if agent.kind == "reference"
    }
    best = max(stationary, key=stationary.__getitem__)
    best_reference = max(references, key=references.__getitem__) if references else None
    return DriftVerdict(
        drift_tail=drifting,
        best_stationary=best,
        stationary_tail=stationary[best],
        lead=drifting - stationary[best],
        passed=drifting - stationary[best] >= DRIFT_MARGIN,
        best_reference=best_reference,
        reference_lead=None if best_reference is None else drifting - references[best_reference],
    )


def rounds_to_level(result: EnvResult, batch: int, baseline: str) -> None:
    """How many rounds each agent needs to reach ``baseline``'s final level (in place)."""
    if baseline not in result.agents:
        return
    level = result.agents[baseline].runs[batch].expected_tail
    result.per_arm_level = level
    result.rounds_to_per_arm = {
        name: first_round_reaching(agent.runs[batch].curve, agent.runs[batch].window, level)
        for name, agent in result.agents.items()
    }


def targets(results: dict[str, EnvResult], small: int, large: int, tail: int) -> list[TargetResult]:
    """The benchmark's targets, one verdict each, with the evidence."""
    found: list[TargetResult] = []
    if "A" in results and results["A"].ours():
        ours = results["A"].ours()
        contextual = {
            n: a.runs[small].expected_tail for n, a in ours.items() if a.policy in CONTEXTUAL
        }
        if contextual:
            passing = sorted(n for n, v in contextual.items() if v >= REWARD_TARGET)
            best = max(contextual, key=contextual.__getitem__)
            optimal = ours[best].runs[small].optimal_tail
            found.append(
                TargetResult(
                    f"A: expected reward last {tail:,} >= {REWARD_TARGET}",
                    bool(passing),
                    f"best {best} {contextual[best]:.3f} (optimal {optimal:.3f}); passing: "
                    + (", ".join(passing) or "none"),
                )
            )
        for batch, threshold in ((small, SPEED_TARGET_SMALL), (large, SPEED_TARGET_LARGE)):
            rates = {n: a.runs[batch].rounds_per_second for n, a in ours.items()}
            slow = sorted((n for n, v in rates.items() if v < threshold), key=rates.__getitem__)
            found.append(
                TargetResult(
                    f"A: >= {threshold:,.0f} rounds/s at batch {batch}",
                    not slow,
                    ("below: " + ", ".join(f"{n} {rates[n]:,.0f}" for n in slow))
                    if slow
                    else "all pass",
                )
            )
    found.extend(thompson_targets(results, small, large))
    for key, result in results.items():
        drift = result.drift
        if drift is None:
            continue
        found.append(
            TargetResult(
                f"{key}: {DRIFT_POLICY} ahead of the stationary policies by >= {DRIFT_MARGIN}",
                drift.passed,
                f"{DRIFT_POLICY} {drift.drift_tail:.3f} vs {drift.best_stationary}"
                f" {drift.stationary_tail:.3f} ({drift.lead:+.3f})",
            )
        )
    found.extend(drift_policy_at_rest(results, small))
    if "B" in results and results["B"].ours():
        p99 = {n: a.latency.p99_ms for n, a in results["B"].ours().items() if a.latency}
        slow = sorted((n for n, v in p99.items() if v >= LATENCY_TARGET_MS), key=p99.__getitem__)
        found.append(
            TargetResult(
                f"B: one decision p99 < {LATENCY_TARGET_MS:g} ms",
                not slow,
                ("above: " + ", ".join(f"{n} {p99[n]:.2f} ms" for n in slow))
                if slow
                else "all pass",
            )
        )
    return found


def _stationary_results(results: dict[str, EnvResult]) -> dict[str, EnvResult]:
    return {key: r for key, r in results.items() if r.spec.stationary and key != "B"}


def thompson_targets(results: dict[str, EnvResult], small: int, large: int) -> list[TargetResult]:
    """linear_ts within :data:`TS_MARGIN` of MABWiser's LinTS (or ahead) on every stationary
    environment, at each batch size, when both ran; then the same for the like-for-like row
    (:data:`bench.agents.LIKE_FOR_LIKE_TS`, no exploration floor, as the reference), reported
    beside the default row's verdict and never instead of it."""
    found = []
    for ours in ("linear_ts", LIKE_FOR_LIKE_TS):
        for batch in (small, large):
            gaps = {
                key: r.agents[ours].runs[batch].expected_tail
                - r.agents["MABWiser LinTS"].runs[batch].expected_tail
                for key, r in _stationary_results(results).items()
                if {ours, "MABWiser LinTS"} <= set(r.agents)
            }
            if gaps:
                found.append(
                    TargetResult(
                        f"stationary: {ours} >= MABWiser LinTS - {TS_MARGIN} at batch {batch}",
                        min(gaps.values()) >= -TS_MARGIN,
                        ", ".join(f"{key} {gap:+.4f}" for key, gap in gaps.items()),
                    )
                )
    return found


def drift_policy_at_rest(results: dict[str, EnvResult], batch: int) -> list[TargetResult]:
    """The drift policy within :data:`REST_MARGIN` of the best stationary policy of ours on
    every stationary environment (a drift policy should cost little when nothing drifts)."""
    gaps = {}
    for key, r in _stationary_results(results).items():
        ours = r.ours()
        stationary = [a.runs[batch].expected_tail for a in ours.values() if a.policy in STATIONARY]
        if DRIFT_POLICY in ours and stationary:
            gaps[key] = ours[DRIFT_POLICY].runs[batch].expected_tail - max(stationary)
    if not gaps:
        return []
    return [
        TargetResult(
            f"stationary: {DRIFT_POLICY} >= best stationary of ours - {REST_MARGIN}"
            f" at batch {batch}",
            min(gaps.values()) >= -REST_MARGIN,
            ", ".join(f"{key} {gap:+.4f}" for key, gap in gaps.items()),
        )
    ]


# ----------------------------------------------------------------------------- tables


def _star(run: RunSummary) -> str:
    return " *" if run.truncated else ""


def reward_table(title: str, result: EnvResult, batch: int, tail: int, *, target: bool) -> Table:
    """Realised and expected reward, all rounds and the last ``tail``, against the optimum."""
    columns = [
        "agent",
        "reward all",
        "expected all",
        "optimal all",
        f"reward last {tail:,}",
        f"expected last {tail:,}",
        f"optimal last {tail:,}",
        f"regret last {tail:,}",
        "vs ceiling",
    ]
    if target:
        columns.append(f">= {REWARD_TARGET}")
    table = Table(title, columns)
    truncated = []
    for name, agent in result.agents.items():
        run = agent.runs[batch]
        cells = [
            name + _star(run),
            fmt(run.reward_all),
            fmt(run.expected_all),
            fmt(run.optimal_all),
            fmt(run.reward_tail),
            fmt(run.expected_tail),
            fmt(run.optimal_tail),
            fmt(run.regret_tail),
            fmt(run.ceiling_regret_tail),
        ]
        if target:
            applies = agent.ours and agent.policy in CONTEXTUAL
            cells.append(verdict(run.expected_tail >= REWARD_TARGET) if applies else "-")
        table.add(*cells)
        if run.truncated:
            truncated.append(f"{name} ({run.rounds:,} of {run.planned_rounds:,} rounds)")
    table.notes.append(
        "expected = true success probability of the chosen action, optimal = the best action's;"
        " every agent plays the same contexts and the same reward draws."
    )
    table.notes.append(
        "regret = optimal - expected per round; vs ceiling = the regret against the best our"
        f" policies can expect under their default exploration floor f = {FLOOR:g},"
        " (1 - f) optimal + f uniform (negative: above it; the references have no floor)."
    )
    if LIKE_FOR_LIKE_TS in result.agents:
        table.notes.append(
            f"{LIKE_FOR_LIKE_TS} = linear_ts with exploration_floor = 0, like for like with"
            " MABWiser's LinTS (no floor either); its ceiling is the optimum, so compare its"
            " regret, not its vs ceiling."
        )
    if truncated:
        table.notes.append(
            "* stopped at the time budget: "
            + ", ".join(truncated)
            + "; its 'last' columns cover the last rounds it played."
        )
    return table


def speed_table(result: EnvResult, small: int, large: int, memory_rounds: int) -> Table:
    table = Table(
        f"{result.spec.key}: speed and memory",
        [
            "agent",
            f"rounds/s batch {small}",
            f">= {SPEED_TARGET_SMALL:,.0f}",
            f"rounds/s batch {large}",
            f">= {SPEED_TARGET_LARGE:,.0f}",
            f"CPU-time rounds/s batch {small} / {large}",
            "peak MiB",
            "retained MiB",
        ],
    )
    for name, agent in result.agents.items():
        fast, slow = agent.runs[small].rounds_per_second, agent.runs[large].rounds_per_second
        memory = agent.memory
        table.add(
            name,
            fmt_rate(fast),
            verdict(fast >= SPEED_TARGET_SMALL) if agent.ours else "-",
            fmt_rate(slow),
            verdict(slow >= SPEED_TARGET_LARGE) if agent.ours else "-",
            f"{fmt_rate(agent.runs[small].cpu_rounds_per_second)}"
            f" / {fmt_rate(agent.runs[large].cpu_rounds_per_second)}",
            fmt(memory.peak_mib, 2) if memory else "n/a",
            fmt(memory.retained_mib, 2) if memory else "n/a",
        )
    table.notes.append(
        f"rounds/s = {result.rounds:,} rounds / time inside select + update (the environment's"
        " bookkeeping excluded; VW's includes formatting its text examples), wall clock; the"
        " CPU-time column divides by this process's CPU time instead, which other work on the"
        " machine disturbs less."
    )
    table.notes.append(
        f"memory = tracemalloc peak over building the agent and {memory_rounds:,} rounds at"
        f" batch {large}; retained = still held at the end (learned state); numpy + Python heap"
        " only, so n/a for VW (C++ heap)."
    )
    return table


def ratio_table(result: EnvResult, small: int, large: int, tail: int) -> Table | None:
    if not result.ratios:
        return None
    references = list(next(iter(result.ratios.values())))
    if not references:
        return None
    table = Table(
        f"{result.spec.key}: ours ÷ reference — expected reward last {tail:,} (batch {small})"
        f" / speed batch {small} / speed batch {large}",
        ["agent", *references],
    )
    for name, row in result.ratios.items():
        table.add(
            name,
            *[
                f"{r.reward:.3f} / {fmt_ratio(r.speed_small)} / {fmt_ratio(r.speed_large)}"
                for r in row.values()
            ],
        )
    table.notes.append("above 1 = ours better (more reward, more rounds per second).")
    return table


def add_batch_column(table: Table, result: EnvResult, batch: int, tail: int) -> None:
    """Append the expected reward of the last ``tail`` rounds at another batch size."""
    table.columns = [*table.columns, f"expected last {tail:,} @ batch {batch}"]
    for row, agent in zip(table.rows, result.agents.values(), strict=True):
        run = agent.runs.get(batch)
        row.append(fmt(run.expected_tail) + _star(run) if run else "-")


def add_per_arm_column(table: Table, result: EnvResult, tail: int) -> None:
    if result.per_arm_level is None:
        return
    table.columns = [*table.columns, f"rounds to per-arm final {result.per_arm_level:.3f}"]
    for row, name in zip(table.rows, result.agents, strict=True):
        rounds = result.rounds_to_per_arm.get(name)
        row.append("never" if rounds is None else f"{rounds:,}")
    window = next(iter(result.agents.values()))
    first = next(iter(window.runs.values()))
    table.notes.append(
        f"rounds to per-arm final = end of the first window of {first.window:,} rounds whose"
        " mean expected reward reaches what our per-arm linucb (one independent model per"
        f" action, nothing shared) averages over its last {tail:,} rounds"
        f" ({first.window:,} = already in the first window)."
    )


def curve_table(result: EnvResult, batch: int, optimal: np.ndarray, points: int = 10) -> Table:
    """Mean expected reward per span of rounds: the learning curves side by side."""
    window = next(iter(result.agents.values())).runs[batch].window
    span = window * max(1, result.rounds // window // points)
    starts = list(range(0, result.rounds, span))
    step = span // window
    table = Table(
        f"{result.spec.key}: mean expected reward per {span:,} rounds (learning curves)",
        [
            "agent",
            *[
                f"{start / 1000:g}k-{min(start + span, result.rounds) / 1000:g}k"
                for start in starts
            ],
        ],
    )
    for name, agent in result.agents.items():
        run = agent.runs[batch]
        cells = [
            fmt(float(np.mean(run.curve[i * step : (i + 1) * step])))
            if i * step < len(run.curve)
            else "-"
            for i in range(len(starts))
        ]
        table.add(name + _star(run), *cells)
    table.add("optimal", *[fmt(float(optimal[s : s + span].mean())) for s in starts])
    return table


def latency_table(result: EnvResult, batch: int, calls: int, seconds: float) -> Table:
    table = Table(
        f"{result.spec.key}: one decision on {result.spec.n_actions:,} actions"
        " (select on a batch of one, after learning)",
        [
            "agent",
            "calls",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            f"p99 < {LATENCY_TARGET_MS:g} ms",
            "rounds/s batch 1",
            f"rounds/s batch {batch}",
            "peak MiB",
        ],
    )
    speed_rounds = 0
    for name, agent in result.agents.items():
        timing = agent.latency
        if timing is None:
            continue
        fast = agent.speed_small
        speed_rounds = max(speed_rounds, fast.rounds if fast else 0)
        table.add(
            name,
            timing.calls,
            fmt(timing.p50_ms),
            fmt(timing.p90_ms),
            fmt(timing.p99_ms),
            verdict(timing.p99_ms < LATENCY_TARGET_MS) if agent.ours else "-",
            fmt_rate(fast.rounds_per_second) if fast else "-",
            fmt_rate(agent.runs[batch].rounds_per_second),
            fmt(agent.memory.peak_mib, 2) if agent.memory else "n/a",
        )
    table.notes.append(
        f"latency: up to {calls:,} calls (or {seconds:g} s) per agent on fresh contexts, no"
        " update between calls; rounds/s batch 1 = select + update on up to"
        f" {speed_rounds:,} further fresh rounds, fewer than the reward run to keep the run"
        " short; memory as for A."
    )
    return table


def drift_notes(table: Table, drift: DriftVerdict | None, tail: int) -> None:
    if drift is None:
        return
    table.notes.append(
        f"{DRIFT_POLICY} expected last {tail:,} = {drift.drift_tail:.3f}; best stationary of ours"
        f" ({drift.best_stationary}) = {drift.stationary_tail:.3f}; lead {drift.lead:+.3f}"
        f" (margin {DRIFT_MARGIN}) -> {verdict(drift.passed)}"
    )
    if drift.best_reference is not None and drift.reference_lead is not None:
        table.notes.append(
            f"best reference: {drift.best_reference}; {DRIFT_POLICY} lead"
            f" {drift.reference_lead:+.3f}"
        )


def target_table(found: list[TargetResult]) -> Table:
    table = Table("Targets (reported, not asserted)", ["target", "result", "detail"])
    for item in found:
        table.add(item.target, verdict(item.passed), item.detail)
    return table
