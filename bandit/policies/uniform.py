"""Uniform random choice among eligible actions: the plainest holdout policy."""

from __future__ import annotations

import numpy as np

from bandit.policies.base import Policy, uniform_probabilities


class UniformPolicy(Policy):
    """Choose uniformly among eligible actions; learns nothing. Propensity ``1 / |eligible|``."""

    name = "uniform"
    default_floor = 0.0

    def _policy_probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return uniform_probabilities(mask)

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Uniform choice ignores feedback."""
