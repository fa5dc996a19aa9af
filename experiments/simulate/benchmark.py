"""How fast the world runs at scale, with no decisions and contexts built for visitors only.

Run ``python -m experiments.simulate.benchmark [SPEC.toml] [N_CUSTOMERS] [N_DAYS]``
(defaults: ``examples/engagement.toml``, 100,000 customers, 90 days); it prints one line of
timings. The issue's budget is 10 minutes for 100,000 x 90 on a 2-core machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence

import numpy as np

from bandit import DecisionSpace
from experiments.simulate.config import WorldConfig
from experiments.simulate.fields import ContextFieldLike
from experiments.simulate.world import CustomerWorld


def time_world(
    space: DecisionSpace,
    context_fields: Mapping[str, ContextFieldLike],
    *,
    n_customers: int = 100_000,
    n_days: int = 90,
    seed: int = 0,
) -> dict[str, float]:
    """Seconds spent building the world, building visitors' contexts and ending days, and
    the counts of visitors and events, over ``n_days`` days without a single contact."""
    started = time.perf_counter()
    world = CustomerWorld(
        WorldConfig(n_customers=n_customers, n_days=n_days, seed=seed), space, context_fields
    )
    built = time.perf_counter()
    contexts = days = 0.0
    visitors = events = 0
    for _ in range(n_days):
        ids = world.visitors()
        visitors += ids.shape[0]
        tick = time.perf_counter()
        world.contexts(ids)
        contexts += time.perf_counter() - tick
        world.act(ids, np.full(ids.shape[0], -1))
        tick = time.perf_counter()
        events += len(world.end_day())
        days += time.perf_counter() - tick
    return {
        "build_seconds": built - started,
        "context_seconds": contexts,
        "end_day_seconds": days,
        "total_seconds": time.perf_counter() - started,
        "visitors": float(visitors),
        "events": float(events),
        "retained": float(world.kpis()["retained"].mean()),
    }


def main(argv: Sequence[str] | None = None) -> None:
    from experiments.spec import load_spec

    args = list(sys.argv[1:] if argv is None else argv)
    spec = load_spec(args[0] if args else "examples/engagement.toml")
    n_customers = int(args[1]) if len(args) > 1 else 100_000
    n_days = int(args[2]) if len(args) > 2 else 90
    result = time_world(spec.decision_space(), spec.context, n_customers=n_customers, n_days=n_days)
    print(
        f"{n_customers:,} customers x {n_days} days: {result['total_seconds']:.1f} s "
        f"(build {result['build_seconds']:.1f} s, contexts {result['context_seconds']:.1f} s, "
        f"end_day {result['end_day_seconds']:.1f} s); {int(result['visitors']):,} visitors, "
        f"{int(result['events']):,} events, {result['retained']:.1%} retained"
    )


if __name__ == "__main__":
    main()
