"""LinUCB: optimism in the face of uncertainty for linear payoffs."""

from __future__ import annotations

from typing import Unpack

import numpy as np

from bandit._validation import check_matrix, check_real
from bandit.policies.base import greedy_probabilities
from bandit.policies.linear import LinearOptions, LinearPolicy
from bandit.space import DecisionSpace


class LinUCBPolicy(LinearPolicy):
    """Choose ``argmax_a phi(x,a) . mu + alpha sqrt(phi(x,a)^T Sigma phi(x,a))``.

    ``mu`` and ``Sigma = (ridge I + X^T X / s2)^-1`` are the ridge estimate and its inverse
    Gram matrix (Li, Chu, Langford, Schapire 2010, "A Contextual-Bandit Approach to
    Personalized News Article Recommendation", algorithm 1, with shared features). With
    ``alpha = 0`` it is the greedy ridge policy. Ties are split uniformly, so the propensity is
    exact.
    """

    name = "linucb"

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        alpha: float = 1.0,
        **kwargs: Unpack[LinearOptions],
    ) -> None:
        super().__init__(space, n_context, **kwargs)
        self.alpha = check_real(alpha, "alpha", type(self).__name__, low=0.0)

    def upper_bounds(self, X: object) -> np.ndarray:
        """The optimistic score of every action, ``(n, A)``."""
        return self._upper_bounds(check_matrix(X, "X", n_columns=self.n_context))

    def _upper_bounds(self, X: np.ndarray) -> np.ndarray:
        Z = self.features.augment(X)
        return self.belief_.mean_scores(Z) + self.alpha * np.sqrt(self._score_variance(Z))

    def _policy_probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return greedy_probabilities(self._upper_bounds(X), mask)
