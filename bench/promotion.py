"""Safe promotion on a poisoned and on a clean reward stream: ``python -m bench.promotion``.

The world: two offers, "good" clicked with probability 0.6 and "bad" with 0.2, no context,
an exploration floor of 0.4 and ``[promotion] enabled`` with ``min_rows = 200``; each step
serves ``count`` decisions through the engine (SQLite in a temporary folder), reports the
clicks, closes the windows and runs one learning step.

- **poisoned**: 400 and 400 true rewards, then 3,000 reported inverted (a click recorded for
  every customer who did not click, none for those who did), then 400 true ones again; per
  seed, the verdicts on v1 (learned from true rewards), v2 (judged on the inverted ones) and
  v3 (learned from them, judged on true ones) and the version serving at the end.
- **stationary**: seven steps of 300 true rewards for each of ``linear_ts``, ``beta_ts`` and
  ``epsilon_greedy``; how many of the six verdicts per seed rejected a candidate.

The margins are fixed in advance: safe promotion should promote v1 and reject v3 in every
seed, and reject no more than 5% of the stationary candidates. Results go to
``bench/results/promotion.json``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.store.connection import make_engine
from experiments.store.database import Database
from experiments.store.promotions import list_promotions
from experiments.store.schema import upgrade

KEY = "gate"
START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
#: True click probabilities of the two offers: "good" is the better one.
CLICK = {"good": 0.6, "bad": 0.2}
FLOOR = 0.4
POISONED_STEPS = ((400, False), (400, False), (3000, True), (400, False))
STATIONARY_POLICIES = ("linear_ts", "beta_ts", "epsilon_greedy")
RESULTS = Path(__file__).resolve().parent / "results"


def gated_spec(policy: str = "epsilon_greedy", **promotion: object) -> dict[str, Any]:
    """The world's spec: two offers, the floor, safe promotion on 200 fresh rewards."""
    params = {"epsilon": 0.0} if policy == "epsilon_greedy" else {}
    return {
        "key": KEY,
        "factors": {"offer": ["good", "bad"]},
        "policy": {"name": policy, "params": params},
        "reward": {"kind": "event", "event": "click", "window": "1h"},
        "holdout": {"share": 0.0},
        "exploration_floor": FLOOR,
        "promotion": {"enabled": True, "min_rows": 200, **promotion},
    }


def serve_and_learn(
    core: DecisionEngine, rng: np.random.Generator, count: int, *, inverted: bool = False
) -> tuple[set[int], int | None]:
    """``count`` decisions, clicks drawn from :data:`CLICK` (reported the other way round when
    ``inverted``), the windows closed, the rewards joined and one learning step. Returns the
    versions that served the decisions and the version learned (None: none)."""
    clock = core.clock
    if not isinstance(clock, ManualClock):
        raise TypeError("the world's engine runs on a ManualClock")
    results = core.decide_many(KEY, [DecisionRequest(f"c{i}", {}) for i in range(count)])
    offers = [result.action["offer"] if result.action else "none" for result in results]
    clicks = rng.random(count) < np.array([CLICK.get(offer, 0.0) for offer in offers])
    if inverted:
        clicks = ~clicks
    core.record(
        OutcomeInput(f"o-{r.decision_id}", "click", 1.0, clock.now(), decision_id=r.decision_id)
        for r, clicked in zip(results, clicks, strict=True)
        if clicked
    )
    clock.advance(timedelta(hours=1, seconds=1))
    core.join_rewards(KEY)
    return {result.policy_version for result in results}, core.learn(KEY)


@contextmanager
def world_engine(spec: dict[str, Any], seed: int) -> Iterator[DecisionEngine]:
    """An engine on a fresh, migrated SQLite file with the world's experiment in it."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'world.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            core = DecisionEngine(Database(engine), clock=ManualClock(START), seed=seed)
            core.create_experiment(spec)
            yield core
        finally:
            engine.dispose()


def verdicts(core: DecisionEngine) -> dict[int, dict[str, Any]]:
    """Each candidate's status and paired difference, by version."""
    with core.database.session() as session:
        rows = list_promotions(session, experiment_key=KEY)
        return {
            row.version: {
                "status": row.status,
                "difference": row.difference,
                "difference_low": row.difference_low,
                "difference_high": row.difference_high,
            }
            for row in rows
        }


def poisoned(seed: int) -> dict[str, Any]:
    with world_engine(gated_spec(), seed) as core:
        rng = np.random.default_rng(1000 + seed)
        for count, inverted in POISONED_STEPS:
            serve_and_learn(core, rng, count, inverted=inverted)
        return {
            "seed": seed,
            "verdicts": verdicts(core),
            "serving": core.loaded_policy(KEY).version,
        }


def stationary(policy: str, seed: int, steps: int = 7, count: int = 300) -> list[str]:
    with world_engine(gated_spec(policy), seed) as core:
        rng = np.random.default_rng(2000 + seed)
        for _ in range(steps):
            serve_and_learn(core, rng, count)
        return [v["status"] for v in verdicts(core).values() if v["status"] != "pending"]


def main(
    seeds: Annotated[int, typer.Option(min=1, help="Seeds of the poisoned stream.")] = 20,
    stationary_seeds: Annotated[int, typer.Option(min=1, help="Seeds per policy.")] = 10,
    out: Annotated[Path, typer.Option(help="Folder of promotion.json.")] = RESULTS,
) -> None:
    """Run both streams, print the counts and write ``promotion.json``."""
    runs = [poisoned(seed) for seed in range(seeds)]
    first = sum(run["verdicts"][1]["status"] == "promoted" for run in runs)
    third = sum(run["verdicts"][3]["status"] == "rejected" for run in runs)
    highs = [run["verdicts"][3]["difference_high"] for run in runs]
    print(f"poisoned: v1 promoted in {first}/{seeds} seeds, v3 rejected in {third}/{seeds}")
    print(f"  v3's difference upper bound at most {max(highs):.4g}")
    clean: dict[str, dict[str, int]] = {}
    for policy in STATIONARY_POLICIES:
        statuses = [s for seed in range(stationary_seeds) for s in stationary(policy, seed)]
        clean[policy] = {"rejected": statuses.count("rejected"), "verdicts": len(statuses)}
        print(f"stationary {policy}: {clean[policy]['rejected']}/{len(statuses)} rejected")
    out.mkdir(parents=True, exist_ok=True)
    payload = {"poisoned": runs, "stationary": clean}
    (out / "promotion.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
