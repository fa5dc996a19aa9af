"""How fast the customer simulator runs at scale: the command line of
:func:`experiments.simulate.benchmark.time_world`.

Run ``python -m bench.world [SPEC.toml] [N_CUSTOMERS] [N_DAYS]`` (defaults:
``examples/engagement.toml``, 100,000 customers, 90 days); it prints one line of timings.
The spec is loaded here, so the simulator itself needs nothing of ``experiments.spec``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from experiments.simulate.benchmark import time_world
from experiments.spec import load_spec


def main(argv: Sequence[str] | None = None) -> None:
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
