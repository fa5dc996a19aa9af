"""Why linear_ts trailed MABWiser's LinTS, measured: ``python -m bench.ts_gap``.

Stationary worlds of the benchmark's generators (Bernoulli-logistic; ``--env A`` is K = 8,
d = 10, ``E`` K = 4, d = 5, ``F`` K = 16, d = 20): world ``w`` adds ``w`` to the environment's
truth and stream seeds, so with the default ``--first-world 0`` world 0 is the benchmark's
own and ``--first-world 10`` gives worlds the benchmark never plays (A's world 2 is D). At
batch 1 and 100, expected reward over the last quarter of the rounds, every agent on the same
pre-drawn rounds. The agents:

- ``linear_ts noise 1``: the old default, a known noise variance of 1, four times the
  largest variance of a 0/1 reward, so every posterior draw is twice as wide as it should be;
- ``linear_ts``: today's default, the noise variance learned (``noise_variance="auto"``);
- ``linear_ts floor 0``: the same without the exploration floor (0.01 by default), which the
  references do not have;
- ``linear_ts bench``: the benchmark's configuration (:data:`bench.agents.BENCH_PARAMS`), the
  row the Thompson target judges; ``linear_ts bench floor 0`` the benchmark's like-for-like
  row (:data:`bench.agents.LIKE_FOR_LIKE_TS`);
- ``... indep. rows``: a diagnostic of the common random numbers of :mod:`bandit.montecarlo`:
  every row of a batch draws its own normals instead of sharing the batch's, so no two rows'
  choices are coupled through the draws;
- ``MABWiser LinTS``: as the benchmark runs it (alpha 1, l2_lambda 1, a constant feature);
- ``MABWiser LinTS indep.``: the same with one generator per arm.

After each table: every agent minus MABWiser's LinTS, and the paired contrasts that isolate
one cause (floor 0 minus floor 0.01, independent minus shared draws), each as the mean over
worlds with a 95% interval (normal, over worlds) and the worst world.

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

from bandit.belief import BlockBelief
from bandit.montecarlo import winner_frequencies
from bench.agents import BENCH_PARAMS, Agent, MabwiserAgent, PolicyAgent
from bench.core import run_agent
from bench.environments import EnvSpec, environment_specs, make_stream

BENCH = dict(BENCH_PARAMS["linear_ts"])
#: Our agents: label -> (linear_ts hyper-parameters, independent draws per row).
OURS: dict[str, tuple[dict[str, Any], bool]] = {
    "linear_ts noise 1": ({"noise_variance": 1.0}, False),
    "linear_ts": ({}, False),
    "linear_ts floor 0": ({"exploration_floor": 0.0}, False),
    "linear_ts bench": (BENCH, False),
    "linear_ts bench floor 0": ({**BENCH, "exploration_floor": 0.0}, False),
    "linear_ts bench indep. rows": (BENCH, True),
    "linear_ts bench floor 0 indep. rows": ({**BENCH, "exploration_floor": 0.0}, True),
}
REFERENCES = ("MABWiser LinTS", "MABWiser LinTS indep.")
#: Paired contrasts (label minus label) that isolate one cause each.
CONTRASTS = (
    ("linear_ts bench floor 0", "linear_ts bench"),
    ("linear_ts floor 0", "linear_ts"),
    ("linear_ts bench indep. rows", "linear_ts bench"),
    ("linear_ts bench floor 0 indep. rows", "linear_ts bench floor 0"),
    ("linear_ts", "linear_ts bench"),
)


class _Ours(PolicyAgent):
    def __init__(self, params: dict[str, Any], spec: EnvSpec, seed: int, rows: bool) -> None:
        from bandit import make_policy

        self.policy = make_policy(
            "linear_ts", space=spec.space(), n_context=spec.n_context, seed=seed, **params
        )
        if rows:
            _independent_rows(self.policy)


def _independent_rows(policy: Any) -> None:
    """Give every row of a batch its own normals (a diagnostic: patches one instance).

    Same law per row as the shared draws, ``mean + spread * eps`` with ``eps`` (n, M, K)
    instead of (M, K); under a learned noise variance each row also draws its own ``sigma``.
    """
    belief = policy.belief_
    if not isinstance(belief, BlockBelief):
        raise TypeError("independent rows are implemented for one-factor spaces only")

    def choice_probabilities(
        Z: np.ndarray,
        mask: np.ndarray,
        n_samples: int,
        scale: float,
        rng: np.random.Generator,
        draw_scale: np.ndarray | None = None,
    ) -> np.ndarray:
        noise = rng.standard_normal((Z.shape[0], n_samples, belief.mean.shape[0]))
        if draw_scale is not None:
            sd = [draw_scale] + [policy._draw_noise_sd() for _ in range(Z.shape[0] - 1)]
            noise *= np.stack(sd)[:, :, None]
        spread = belief.score_spread(Z, scale)[:, None, :]
        return winner_frequencies(belief.mean_scores(Z)[:, None, :] + spread * noise, mask)

    belief.choice_probabilities = choice_probabilities


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
        params, rows = OURS[label]
        return _Ours(params, spec, seed, rows)
    if label == "MABWiser LinTS":
        return MabwiserAgent("LinTS", spec.n_actions, seed, intercept=True)
    return IndependentLinTS("LinTS", spec.n_actions, seed, intercept=True)


def _paired(label: str, gap: np.ndarray, width: int) -> str:
    half = 1.96 * gap.std(ddof=1) / math.sqrt(gap.size) if gap.size > 1 else math.nan
    return (
        f"{label:<{width}} mean {gap.mean():+.4f} [{gap.mean() - half:+.4f},"
        f" {gap.mean() + half:+.4f}]  worst {gap.min():+.4f}"
    )


def main(
    rounds: Annotated[int, typer.Option(help="rounds per world")] = 20_000,
    worlds: Annotated[int, typer.Option(help="worlds per generator")] = 6,
    first_world: Annotated[int, typer.Option(help="offset of the first world's seeds")] = 0,
    env: Annotated[str, typer.Option(help="comma-separated generators: A, E, F")] = "A",
    batches: Annotated[str, typer.Option(help="comma-separated batch sizes")] = "1,100",
    seed: Annotated[int, typer.Option(help="agents' seed")] = 0,
) -> None:
    """Print expected reward over the last quarter, per world, batch and agent."""
    specs = environment_specs(2 * math.pi)
    labels = [*OURS, *REFERENCES]
    tail = rounds // 4
    names, spaces = [], []
    for key in env.split(","):
        base = specs[key.strip()]
        for world in range(first_world, first_world + worlds):
            names.append(f"{base.key}{world}")
            spaces.append(
                dataclasses.replace(
                    base, truth_seed=base.truth_seed + world, stream_seed=base.stream_seed + world
                )
            )
    for batch in (int(b) for b in batches.split(",")):
        table = np.empty((len(spaces), len(labels)))
        for row, spec in enumerate(spaces):
            stream = make_stream(spec, rounds)
            for column, label in enumerate(labels):
                record = run_agent(build(label, spec, seed), stream, batch_size=batch)
                table[row, column] = record.expected[-tail:].mean()
        print(f"\nbatch {batch}: expected reward, last {tail:,} of {rounds:,} rounds")
        width = max(len(label) for label in labels)
        print(" " * width + "".join(f"{name:>8}" for name in names) + "    mean")
        for column, label in enumerate(labels):
            values = "".join(f"{v:8.4f}" for v in table[:, column])
            print(f"{label:<{width}}{values}{table[:, column].mean():8.4f}")
        print("\nminus MABWiser LinTS, mean over worlds [95% interval], worst world")
        reference = table[:, labels.index("MABWiser LinTS")]
        for label in OURS:
            print(_paired(label, table[:, labels.index(label)] - reference, width + 4))
        print("\npaired contrasts")
        for first, second in CONTRASTS:
            gap = table[:, labels.index(first)] - table[:, labels.index(second)]
            print(_paired(f"{first} - {second}", gap, 2 * width))


if __name__ == "__main__":
    typer.run(main)
