"""Epsilon-greedy over a ridge regression of rewards on action features."""

from __future__ import annotations

from typing import Unpack

import numpy as np

from bandit._validation import check_real
from bandit.policies.base import greedy_probabilities, uniform_probabilities
from bandit.policies.linear import LinearOptions, LinearPolicy
from bandit.space import DecisionSpace


class EpsilonGreedyPolicy(LinearPolicy):
    """With probability ``epsilon`` a uniform eligible action, else the ridge-greedy one.

    ``pi(a|x) = (1 - epsilon) 1[a in argmax] / |argmax| + epsilon / |eligible|`` exactly,
    ties included (Sutton & Barto 2018, sec. 2.2).
    """

    name = "epsilon_greedy"

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        epsilon: float = 0.05,
        **kwargs: Unpack[LinearOptions],
    ) -> None:
        super().__init__(space, n_context, **kwargs)
        self.epsilon = check_real(epsilon, "epsilon", type(self).__name__, low=0.0, high=1.0)

    def _policy_probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        greedy = greedy_probabilities(self.belief_.mean_scores(self.features.augment(X)), mask)
        return (1.0 - self.epsilon) * greedy + self.epsilon * uniform_probabilities(mask)
