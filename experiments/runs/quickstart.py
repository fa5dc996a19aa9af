"""A short simulated bandit run on the synthetic logistic environment, for the quick demo.

Runs several policies on the same seeded stream of contexts and reports, per policy, the mean
true success probability of its choices against the optimal policy's, so the gap (regret)
is visible without noise from the Bernoulli draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bandit import DecisionSpace, make_policy
from bandit.synthetic import LogisticEnvironment

__all__ = ["PolicyResult", "run_quickstart"]


@dataclass(frozen=True)
class PolicyResult:
    """Summary of one policy over a simulated run."""

    policy: str
    mean_reward: float
    mean_expected: float
    last_expected: float
    optimal_expected: float


def run_quickstart(
    policies: Sequence[str] = ("uniform", "epsilon_greedy", "linucb", "linear_ts", "logistic_ts"),
    *,
    n_arms: int = 8,
    n_context: int = 10,
    rounds: int = 5_000,
    batch_size: int = 50,
    seed: int = 0,
    on_batch: Callable[[], None] | None = None,
) -> list[PolicyResult]:
    """Run each policy for ``rounds`` rounds in batches; same contexts for every policy."""
    space = DecisionSpace({"arm": [f"arm{i}" for i in range(n_arms)]})
    environment = LogisticEnvironment(space, n_context, seed=seed, horizon=rounds)
    results = []
    tail = max(1, rounds // 4)
    for name in policies:
        policy = make_policy(name, space=space, n_context=n_context, seed=seed)
        rng = np.random.default_rng(seed + 1)
        rewards, expected, optimal = [], [], []
        for start in range(0, rounds, batch_size):
            X = environment.contexts(min(batch_size, rounds - start), rng)
            decision = policy.select(X)
            reward, probability = environment.rewards(X, decision.actions, rng, start)
            policy.update(X, decision.actions, reward, decision.propensities)
            rewards.append(reward)
            expected.append(probability)
            optimal.append(environment.expected(X, start).max(axis=1))
            if on_batch is not None:
                on_batch()
        expected_all = np.concatenate(expected)
        results.append(
            PolicyResult(
                policy=name,
                mean_reward=float(np.concatenate(rewards).mean()),
                mean_expected=float(expected_all.mean()),
                last_expected=float(expected_all[-tail:].mean()),
                optimal_expected=float(np.concatenate(optimal)[-tail:].mean()),
            )
        )
    return results
