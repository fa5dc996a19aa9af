"""Shared base of the linear policies: a Gaussian belief over action-feature weights.

Prior ``w ~ N(0, I / ridge)``; each reward ``r = phi(x, a) . w + e``, ``e ~ N(0, noise_variance)``.
The posterior mean is the ridge solution ``(ridge I + X^T X / s2)^-1 X^T r / s2`` and the
posterior covariance is kept directly and updated incrementally (:mod:`bandit.linalg`).
Subclasses decide how to turn the belief into choice probabilities, and may override the
likelihood (logistic) or add a predict step (Kalman).
"""

from __future__ import annotations

import numpy as np

from bandit._validation import check_int, check_matrix, check_real
from bandit.belief import BlockBelief, JointBelief
from bandit.features import ActionFeatures
from bandit.policies.base import MAX_DRAW_CELLS, Policy, winner_frequencies
from bandit.space import DecisionSpace


class LinearPolicy(Policy):
    """Bayesian linear model over :class:`~bandit.features.ActionFeatures`.

    A one-factor space without interactions keeps one independent block per arm
    (:class:`~bandit.belief.BlockBelief`); any other space keeps a joint belief so that
    actions sharing a level share what was learned.

    Args:
        ridge: prior precision of every weight (> 0); the ridge penalty.
        noise_variance: reward noise variance ``s2`` (> 0).
        fit_intercept: add a constant context feature.
        interactions: add factor-pair bias features.
    """

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        ridge: float = 1.0,
        noise_variance: float = 1.0,
        fit_intercept: bool = True,
        interactions: bool = False,
        seed: int | np.random.Generator | None = None,
        exploration_floor: float | None = None,
    ) -> None:
        super().__init__(space, n_context, seed=seed, exploration_floor=exploration_floor)
        owner = type(self).__name__
        self.ridge = check_real(ridge, "ridge", owner, low=0.0, closed="right")
        self.noise_variance = check_real(
            noise_variance, "noise_variance", owner, low=0.0, closed="right"
        )
        self.fit_intercept = bool(fit_intercept)
        self.interactions = bool(interactions)
        self.features = ActionFeatures(
            space, n_context, fit_intercept=self.fit_intercept, interactions=self.interactions
        )
        self.belief_: JointBelief | BlockBelief
        if len(space.factor_sizes) == 1 and not self.interactions:
            self.belief_ = BlockBelief(space.n_actions, self.features.width, 1.0 / self.ridge)
        else:
            self.belief_ = JointBelief(self.features, 1.0 / self.ridge)

    # The belief's arrays are the learned state: expose them under the generic names.
    @property
    def mean_(self) -> np.ndarray:
        return self.belief_.mean

    @mean_.setter
    def mean_(self, value: np.ndarray) -> None:
        self.belief_.mean = value

    @property
    def cov_(self) -> np.ndarray:
        return self.belief_.cov

    @cov_.setter
    def cov_(self, value: np.ndarray) -> None:
        self.belief_.cov = value

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.belief_.state_shapes()

    def expected_rewards(self, X: object) -> np.ndarray:
        """Posterior mean score of every action, ``(n, A)`` (a reward model for DM/DR)."""
        contexts = check_matrix(X, "X", n_columns=self.n_context)
        return self.belief_.mean_scores(self.features.augment(contexts))

    def _likelihood_terms(
        self, predictor: np.ndarray, rewards: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-row curvature and score of the log-likelihood at the linear predictor."""
        precision = 1.0 / self.noise_variance
        return np.full(rewards.shape[0], precision), (rewards - predictor) * precision

    def _before_update(self, n_rows: int) -> None:
        """Hook for a predict step (state-space models); stationary models do nothing."""

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        self._before_update(X.shape[0])
        Z = self.features.augment(X)
        predictor = self.belief_.linear_predictor(Z, actions)
        curvature, score = self._likelihood_terms(predictor, rewards)
        self.belief_.update(Z, actions, curvature, score)


class ThompsonLinearPolicy(LinearPolicy):
    """Thompson sampling on the linear belief, with Monte Carlo choice probabilities.

    Each row draws ``n_samples`` score vectors from the posterior (standard deviation times
    ``scale``); the policy's distribution is the share of draws each eligible action wins,
    and the action is sampled from that distribution, so the logged propensity is exactly the
    probability with which the action was chosen (Agrawal & Goyal 2013, "Thompson Sampling
    for Contextual Bandits with Linear Payoffs"). Joint draws go through a Cholesky factor,
    which is reproducible across BLAS builds.

    Args:
        scale: multiplier on the posterior standard deviation (``v`` in Agrawal & Goyal).
        n_samples: Monte Carlo draws per row for the choice probabilities.
    """

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        scale: float = 1.0,
        n_samples: int = 100,
        **kwargs: object,
    ) -> None:
        super().__init__(space, n_context, **kwargs)  # type: ignore[arg-type]
        owner = type(self).__name__
        self.scale = check_real(scale, "scale", owner, low=0.0)
        self.n_samples = check_int(n_samples, "n_samples", owner, low=1)

    def _policy_probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        rows_per_chunk = max(1, MAX_DRAW_CELLS // (self.n_samples * self.n_actions))
        parts = []
        for start in range(0, X.shape[0], rows_per_chunk):
            Z = self.features.augment(X[start : start + rows_per_chunk])
            draws = self.belief_.draw_scores(Z, self.n_samples, self.scale, self.rng_)
            parts.append(winner_frequencies(draws, mask[start : start + rows_per_chunk]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
