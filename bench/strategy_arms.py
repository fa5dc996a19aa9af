"""The strategy arm against the interaction arm, customer by customer, with intervals.

``engage run`` reports each arm against its own holdout; this measures the difference between
two arms. Both arms live on copies of the same seeded world (common random numbers), so the
customers treated in both arms are compared pairwise: the per-customer difference of revenue
(and of being retained) has a much smaller spread than either arm's, and its mean comes with a
95% normal interval. Each arm runs in its own process through the same runner as ``engage run``
(the runner's ``_ArmRunner``, which keeps the simulated world; the run's public result keeps
only means).

Run ``python -m bench.strategy_arms SPEC.toml [--customers N] [--days D] [--seeds 0,1,2]
[--arms interaction,strategy] [--out results.json] [--cache DIR]``; it prints one block per
seed. With ``--cache`` each arm's per-customer results are kept under DIR, keyed by the arm's
spec, the seed and the size, so comparing variants of the strategies reruns only the strategy
arm.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from experiments.runs.arms import arm_spec
from experiments.runs.simulation import RunOptions, _ArmRunner
from experiments.spec import load_spec, parse_spec
from experiments.store.schema import upgrade

Z95 = 1.959963984540054


def _arm(spec_data: dict[str, Any], arm: str, options: RunOptions, url: str) -> dict[str, Any]:
    """One arm in a worker: its per-customer revenue and retention, holdout mask and report."""
    runner = _ArmRunner(parse_spec(spec_data), arm, options, url, None)
    result = runner.run()
    kpis = runner.world.kpis()
    return {
        "revenue": kpis["revenue"],
        "retained": kpis["retained"].astype(np.float64),
        "holdout": runner.holdout,
        "strategies": None if result.strategies is None else result.strategies.to_json(),
        "policy_version": result.policy_version,
    }


def paired(first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    """Mean of ``first - second`` per customer, with its standard error and 95% interval."""
    difference = first - second
    stderr = float(difference.std(ddof=1) / math.sqrt(difference.size))
    mean = float(difference.mean())
    return {
        "difference": mean,
        "stderr": stderr,
        "low": mean - Z95 * stderr,
        "high": mean + Z95 * stderr,
    }


def _cache_file(cache: Path, spec_data: dict[str, Any], arm: str, options: RunOptions) -> Path:
    """Where an arm's results are kept: a hash of what determines them."""
    key = json.dumps(
        [arm_spec(parse_spec(spec_data), arm).to_json_dict(), arm, repr(options.__dict__)],
        sort_keys=True,
        default=str,
    )
    return cache / f"{arm}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def compare(
    spec_path: str, options: RunOptions, jobs: int, cache: Path | None = None
) -> dict[str, Any]:
    """Run ``options.arms`` on one seed; every arm's treated means and the pairwise differences
    of the later arms from the first, on the customers treated in both."""
    spec = load_spec(spec_path)
    data = spec.to_json_dict()
    arms: dict[str, dict[str, Any]] = {}
    files = {}
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for arm in options.arms:
            files[arm] = _cache_file(cache, data, arm, options)
            if files[arm].exists():
                stored = json.loads(files[arm].read_text())
                arms[arm] = {
                    **stored,
                    **{name: np.array(stored[name]) for name in ("revenue", "retained", "holdout")},
                }
    missing = [arm for arm in options.arms if arm not in arms]
    if missing:
        with tempfile.TemporaryDirectory(prefix="engage-arms-") as scratch:
            url = f"sqlite:///{Path(scratch) / 'run.db'}"
            upgrade(url)
            with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
                futures = {arm: pool.submit(_arm, data, arm, options, url) for arm in missing}
                for arm, future in futures.items():
                    arms[arm] = future.result()
                    if arm in files:
                        files[arm].write_text(
                            json.dumps(
                                {
                                    name: value.tolist() if isinstance(value, np.ndarray) else value
                                    for name, value in arms[arm].items()
                                }
                            )
                        )
    base = options.arms[0]
    summary: dict[str, Any] = {"seed": options.seed, "arms": {}, "differences": {}}
    for arm, data in arms.items():
        treated = ~data["holdout"]
        summary["arms"][arm] = {
            "revenue": float(data["revenue"][treated].mean()),
            "retained": float(data["retained"][treated].mean()),
            "treated": int(treated.sum()),
            "policy_version": data["policy_version"],
            "strategies": data["strategies"],
        }
    for arm in options.arms[1:]:
        both = ~arms[arm]["holdout"] & ~arms[base]["holdout"]
        summary["differences"][f"{arm} - {base}"] = {
            "customers": int(both.sum()),
            "revenue": paired(arms[arm]["revenue"][both], arms[base]["revenue"][both]),
            "retained": paired(arms[arm]["retained"][both], arms[base]["retained"][both]),
        }
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--arms", default="interaction,strategy")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=None)
    parser.add_argument("--cache", default=None, help="Folder keeping each arm's results.")
    args = parser.parse_args(argv)
    results = []
    for seed in [int(item) for item in args.seeds.split(",")]:
        options = RunOptions(
            customers=args.customers,
            days=args.days,
            seed=seed,
            arms=tuple(item.strip() for item in args.arms.split(",")),
        )
        summary = compare(args.spec, options, args.jobs, Path(args.cache) if args.cache else None)
        results.append(summary)
        print(f"seed {seed}: {args.customers:,} customers x {args.days} days")
        for arm, row in summary["arms"].items():
            print(f"  {arm:12s} revenue {row['revenue']:.3f}  retained {row['retained']:.4f}")
        for label, row in summary["differences"].items():
            for kpi in ("revenue", "retained"):
                cell = row[kpi]
                print(
                    f"  {label} {kpi}: {cell['difference']:+.4f} "
                    f"[{cell['low']:+.4f}, {cell['high']:+.4f}] on {row['customers']:,} customers"
                )
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
