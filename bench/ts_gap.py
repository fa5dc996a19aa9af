"""Why linear_ts trailed MABWiser's LinTS, measured: ``python -m bench.ts_gap``.

Environment A's generator (K = 8 arms, d = 10, Bernoulli-logistic, stationary) over several
worlds (world 0 is the benchmark's A; world ``w`` adds ``w`` to its truth and stream seeds),
at batch 1 and 100, expected reward over the last quarter of the rounds, every agent on the
same pre-drawn rounds. The agents:

- ``linear_ts noise 1``: the old default, a known noise variance of 1, four times the
  largest variance of a 0/1 reward, so every posterior draw is twice as wide as it should be;
- ``linear_ts``: today's default, the noise variance learned (``noise_variance="auto"``);
- ``linear_ts floor 0``: the same without the exploration floor (0.01 by default), which the
  references do not have;
- ``linear_ts bench``: the benchmark's configuration (:data:`bench.agents.BENCH_PARAMS`);
- ``MABWiser LinTS``: as the benchmark runs it (alpha 1, l2_lambda 1, a constant feature);
- ``MABWiser LinTS indep.``: the same with one generator per arm.

MABWiser's per-arm models each hold a deep copy of one generator, copied when the arm is
fitted (``_Linear._fit_arm``). When a first batch fits every arm at once (batch 100) the copies
share one state, so every arm draws the same standard normals in every round: the arms' draws
are perfectly coupled, and the score of arm ``k`` is ``mean_k + eta * sd_k`` with ``eta``
shared, a randomized UCB (Vaswani, Mehrabian, Durand & Kveton 2020, "Old Dog Learns New
Tricks: Randomized UCB for Bandit Problems") rather than Thompson sampling, which draws the
arms' independent posteriors independently. At batch 1 arms are fitted one at a time, their
copies differ, and MABWiser's LinTS is textbook Thompson sampling.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any

import numpy as np
import typer

from bench.agents import BENCH_PARAMS, Agent, MabwiserAgent, PolicyAgent
from bench.core import run_agent
from bench.environments import EnvSpec, environment_specs, make_stream

#: Our agents: label -> linear_ts hyper-parameters.
OURS: dict[str, dict[str, Any]] = {
    "linear_ts noise 1": {"noise_variance": 1.0},
    "linear_ts": {},
    "linear_ts floor 0": {"exploration_floor": 0.0},
    "linear_ts bench": dict(BENCH_PARAMS["linear_ts"]),
}
REFERENCES = ("MABWiser LinTS", "MABWiser LinTS indep.")


class _Ours(PolicyAgent):
    def __init__(self, params: dict[str, Any], spec: EnvSpec, seed: int) -> None:
        from bandit import make_policy

        self.policy = make_policy(
            "linear_ts", space=spec.space(), n_context=spec.n_context, seed=seed, **params
        )


class IndependentLinTS(MabwiserAgent):
    """MABWiser LinTS with one generator per arm (a diagnostic: private attributes)."""

    def update(
        self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray
    ) -> None:
        first = not self.fitted
        super().update(X, actions, rewards, propensities)
        if first:
            from mabwiser.utils import _NumpyRNG  # type: ignore[import-untyped]

            for arm, model in self.mab._imp.arm_to_model.items():
                model.rng = _NumpyRNG(1_000 * int(self.rng.integers(1 << 30)) + int(arm))


def build(label: str, spec: EnvSpec, seed: int) -> Agent:
    if label in OURS:
        return _Ours(OURS[label], spec, seed)
    if label == "MABWiser LinTS":
        return MabwiserAgent("LinTS", spec.n_actions, seed, intercept=True)
    return IndependentLinTS("LinTS", spec.n_actions, seed, intercept=True)


def main(
    rounds: Annotated[int, typer.Option(help="rounds per world")] = 20_000,
    worlds: Annotated[int, typer.Option(help="worlds of A's generator")] = 6,
    batches: Annotated[str, typer.Option(help="comma-separated batch sizes")] = "1,100",
    seed: Annotated[int, typer.Option(help="agents' seed")] = 0,
) -> None:
    """Print expected reward over the last quarter, per world, batch and agent."""
    base = environment_specs(2 * math.pi)["A"]
    labels = [*OURS, *REFERENCES]
    tail = rounds // 4
    for batch in (int(b) for b in batches.split(",")):
        table = np.empty((worlds, len(labels)))
        for world in range(worlds):
            spec = dataclasses.replace(
                base, truth_seed=base.truth_seed + world, stream_seed=base.stream_seed + world
            )
            stream = make_stream(spec, rounds)
            for column, label in enumerate(labels):
                record = run_agent(build(label, spec, seed), stream, batch_size=batch)
                table[world, column] = record.expected[-tail:].mean()
        print(f"\nbatch {batch}: expected reward, last {tail:,} of {rounds:,} rounds")
        width = max(len(label) for label in labels)
        print(" " * width + "".join(f"{'w' + str(w):>8}" for w in range(worlds)) + "    mean")
        for column, label in enumerate(labels):
            values = "".join(f"{v:8.4f}" for v in table[:, column])
            print(f"{label:<{width}}{values}{table[:, column].mean():8.4f}")
        reference = table[:, labels.index("MABWiser LinTS")]
        for label in OURS:
            gap = table[:, labels.index(label)] - reference
            print(
                f"{label + ' - MABWiser LinTS':<{width + 18}} worst {gap.min():+.4f} "
                f"mean {gap.mean():+.4f}"
            )


if __name__ == "__main__":
    typer.run(main)
