"""Logistic Thompson sampling for binary rewards, by an online Laplace approximation."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from bandit.policies.linear import ThompsonLinearPolicy


class LogisticTSPolicy(ThompsonLinearPolicy):
    """Thompson sampling under ``P(r = 1 | x, a) = sigmoid(phi(x, a) . w)``.

    The posterior is kept Gaussian (Laplace approximation). Each batch takes one Newton step
    from the prior mode: curvature ``p (1 - p)``, score ``r - p`` at ``p = sigmoid(X mu)``,
    ``Sigma' = (Sigma^-1 + X^T diag(p(1-p)) X)^-1`` and ``mu' = mu + Sigma' X^T (r - p)``
    (Chapelle & Li 2011, "An Empirical Evaluation of Thompson Sampling", algorithm 3, with the
    full rather than diagonal covariance). Sampling compares logits, which has the same argmax
    as comparing probabilities. Rewards must lie in [0, 1].
    """

    name = "logistic_ts"
    binary_rewards = True
    gaussian_likelihood = False
    default_noise_variance = 1.0

    def _likelihood_terms(
        self, predictor: np.ndarray, rewards: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        probability = expit(predictor)
        return probability * (1.0 - probability), rewards - probability
