"""Guardrails and the sample-ratio check, measured over seeds: does a harmful experiment stop
itself, does a healthy one ever, and is a broken split flagged while a correct one is not?

Run ``python -m bench.guardrails [SEEDS] [CUSTOMERS] [DAYS]`` (defaults 20, 2,000, 30). It
prints one line per measurement and writes ``bench/results/guardrails.json``.

The world (:class:`ChurnWorld`) is small enough to check by hand. Customers visit with
probability ``visit`` a day until they churn; a decision sends one message, ``gentle`` or
``pushy``, and the customer churns that day with the message's probability (``CHURN``). The
holdout (share 10%) is served business as usual, ``gentle``. The **harmful** experiment's
policy only ever sends ``pushy`` (the most fatiguing message); the **healthy** one only
``gentle``, exactly what the holdout gets, so its true guardrail difference is 0 and any stop
is a false one. Both carry a retention guardrail with margin 0.02 at 95% (always-valid); the
healthy one runs again with margin 0, where any apparent harm stops it. The engine checks the
guardrail after every simulated day (:meth:`DecisionEngine.step`), as the learner
does on its interval.

The split check: decisions are made with the holdout hashed at 5% and the stored spec is then
changed to say 10% (**broken**), or left as it is at 10% (**correct**); the report of each is
read once, as every report (HTTP, CLI, MLflow) reads the same :class:`LiveReport`.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from experiments.analysis.report import build_live_report
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.store.database import open_database
from experiments.store.experiments import update_experiment
from experiments.store.schema import upgrade
from experiments.vocabulary import ExperimentStatus

START = datetime(2026, 1, 5, tzinfo=UTC)
#: Churn probability of a customer on the day of a decision, by message.
CHURN: Mapping[str, float] = {"gentle": 0.01, "pushy": 0.04}
RESULTS = Path(__file__).resolve().parent / "results" / "guardrails.json"

#: ``decide(customer ids) -> [(decision id, message or None)]``: the engine's or HTTP's.
Decide = Callable[[Sequence[str]], list[tuple[str, str | None]]]
#: ``record(outcomes)``: report outcome events (the engine's or HTTP's).
Record = Callable[[Sequence[OutcomeInput]], None]


def world_spec(
    key: str, *, harmful: bool, share: float = 0.1, margin: float = 0.02
) -> dict[str, Any]:
    """The experiment: treatment always ``pushy`` (harmful) or ``gentle`` (healthy), the
    holdout business as usual (``gentle``), and a retention guardrail on ``churn``."""
    message = "pushy" if harmful else "gentle"
    return {
        "key": key,
        "factors": {"message": ["gentle", "pushy"]},
        "policy": {"name": "fixed", "params": {"action": {"message": message}}},
        "reward": {"kind": "retained", "event": "churn", "window": "7d"},
        "holdout": {"share": share, "policy": "fixed", "action": {"message": "gentle"}},
        "exploration_floor": 0.0,
        "guardrails": {"kpi": [{"measure": "retention", "event": "churn", "margin": margin}]},
    }


@dataclass
class ChurnWorld:
    """Customers ``c0 .. c{n-1}`` who visit and churn as the module docstring says."""

    customers: int
    seed: int
    visit: float = 0.5
    churn: Mapping[str, float] = field(default_factory=lambda: dict(CHURN))

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.active = np.ones(self.customers, dtype=bool)

    def day(self, day: int, decide: Decide, record: Record) -> int:
        """One day: visitors are decided for, some churn; returns the number of decisions."""
        visiting = self.active & (self.rng.random(self.customers) < self.visit)
        visitors = np.flatnonzero(visiting)
        draws = self.rng.random(visitors.size)
        answers = decide([f"c{index}" for index in visitors])
        when = START + timedelta(days=day, hours=12)
        outcomes = []
        for customer, draw, (decision_id, message) in zip(visitors, draws, answers, strict=True):
            if message is not None and draw < self.churn[message]:
                self.active[customer] = False
                outcomes.append(
                    OutcomeInput(
                        outcome_id=f"{self.seed}-{day}-{customer}",
                        event="churn",
                        value=1.0,
                        occurred_at=when,
                        decision_id=decision_id,
                    )
                )
        if outcomes:
            record(outcomes)
        return int(visitors.size)


def engine_decide(engine: DecisionEngine, key: str) -> Decide:
    def decide(customers: Sequence[str]) -> list[tuple[str, str | None]]:
        results = engine.decide_many(
            key, [DecisionRequest(customer_id=customer, context={}) for customer in customers]
        )
        return [
            (result.decision_id, None if result.action is None else result.action["message"])
            for result in results
        ]

    return decide


@dataclass(frozen=True)
class StopRun:
    """One simulated experiment: the day it stopped itself (None: never) and why."""

    seed: int
    harmful: bool
    stopped_day: int | None
    reason: str | None


def run_experiment(
    url: str,
    *,
    seed: int,
    harmful: bool,
    customers: int,
    days: int,
    key: str = "guarded",
    margin: float = 0.02,
) -> StopRun:
    """Simulate one experiment through the engine for ``days`` days (see the module doc)."""
    upgrade(url)
    database = open_database(url)
    clock = ManualClock(START)
    engine = DecisionEngine(database, clock=clock, seed=seed)
    try:
        engine.create_experiment(world_spec(key, harmful=harmful, margin=margin))
        world = ChurnWorld(customers, seed)
        decide = engine_decide(engine, key)
        stopped = None
        for day in range(days):
            clock.set(START + timedelta(days=day, hours=12))
            world.day(day, decide, engine.record)
            clock.set(START + timedelta(days=day + 1))
            engine.step(key)
            if engine.get_experiment(key).status != ExperimentStatus.RUNNING:
                stopped = day
                break
        row = engine.get_experiment(key)
        return StopRun(seed, harmful, stopped, row.stop_reason)
    finally:
        database.dispose()


def split_log(
    url: str, *, seed: int, broken: bool, customers: int, action: str = "alert"
) -> tuple[bool, float]:
    """Decide once for every customer with the holdout at 5% (broken) or 10% (correct), the
    stored spec saying 10% with ``sample_ratio = action``; returns whether the report flags
    the split, and its p-value."""
    upgrade(url)
    database = open_database(url)
    engine = DecisionEngine(database, clock=ManualClock(START), seed=seed)
    key = f"split-{seed}"
    try:
        spec = world_spec(key, harmful=False, share=0.05 if broken else 0.1)
        spec["guardrails"] = {"sample_ratio": action}
        engine.create_experiment(spec)
        engine_decide(engine, key)([f"s{seed}-{index}" for index in range(customers)])
        with database.session() as session:
            update_experiment(
                session, key=key, spec={**spec, "holdout": {**spec["holdout"], "share": 0.1}}
            )
            session.commit()
        checks = build_live_report(database, key).checks
        ratio = None if checks is None else checks.sample_ratio
        if ratio is None:
            raise RuntimeError("the report of an experiment with a holdout has no split check")
        return ratio.mismatch, ratio.p_value
    finally:
        database.dispose()


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = list(sys.argv[1:] if argv is None else argv)
    seeds = int(args[0]) if args else 20
    customers = int(args[1]) if len(args) > 1 else 2_000
    days = int(args[2]) if len(args) > 2 else 30
    runs: list[StopRun] = []
    strict: list[StopRun] = []  # healthy with margin 0: any sign of harm would stop it
    splits: dict[str, list[float]] = {"broken": [], "correct": []}
    flagged: dict[str, int] = {"broken": 0, "correct": 0}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(seeds):
            for harmful in (True, False):
                url = f"sqlite:///{folder}/run-{seed}-{harmful}.db"
                runs.append(
                    run_experiment(url, seed=seed, harmful=harmful, customers=customers, days=days)
                )
            url = f"sqlite:///{folder}/strict-{seed}.db"
            strict.append(
                run_experiment(
                    url, seed=seed, harmful=False, customers=customers, days=days, margin=0.0
                )
            )
            for name in ("broken", "correct"):
                url = f"sqlite:///{folder}/split-{seed}-{name}.db"
                mismatch, p_value = split_log(
                    url, seed=seed, broken=name == "broken", customers=customers
                )
                flagged[name] += int(mismatch)
                splits[name].append(p_value)
    harmful_runs = [run for run in runs if run.harmful]
    healthy_runs = [run for run in runs if not run.harmful]
    stop_days = [run.stopped_day for run in harmful_runs if run.stopped_day is not None]
    result = {
        "seeds": seeds,
        "customers": customers,
        "days": days,
        "harmful_stopped": len(stop_days),
        "harmful_median_stop_day": statistics.median(stop_days) if stop_days else None,
        "harmful_stop_days": [run.stopped_day for run in harmful_runs],
        "healthy_stopped": sum(run.stopped_day is not None for run in healthy_runs),
        "healthy_margin0_stopped": sum(run.stopped_day is not None for run in strict),
        "split_broken_flagged": flagged["broken"],
        "split_correct_flagged": flagged["correct"],
        "split_broken_max_p": max(splits["broken"]),
        "split_correct_min_p": min(splits["correct"]),
        "example_reason": next((run.reason for run in harmful_runs if run.reason), None),
    }
    print(
        f"harmful: {result['harmful_stopped']}/{seeds} stopped themselves "
        f"(median day {result['harmful_median_stop_day']}); healthy: "
        f"{result['healthy_stopped']}/{seeds} stopped (false stops), {days} daily checks each; "
        f"healthy with margin 0: {result['healthy_margin0_stopped']}/{seeds} stopped"
    )
    print(
        f"split 5% vs 10%: flagged {flagged['broken']}/{seeds} (largest p "
        f"{result['split_broken_max_p']:.2g}); correct split: flagged "
        f"{flagged['correct']}/{seeds} (smallest p {result['split_correct_min_p']:.2g})"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
