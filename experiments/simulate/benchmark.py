"""How fast the world runs at scale, with no decisions and contexts built for visitors only.

:func:`time_world` takes a decision space and a context schema, so the simulator needs no
spec loader; the command line (``python -m bench.world [SPEC.toml] [N_CUSTOMERS] [N_DAYS]``)
lives with the other benchmarks in :mod:`bench.world`. The budget is 10 minutes for
100,000 customers x 90 days on a 2-core machine.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

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
