"""Non-contextual Thompson sampling baselines: Beta-Bernoulli and Gaussian."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Unpack

import numpy as np

from bandit._validation import check_int, check_real
from bandit.montecarlo import winner_frequencies
from bandit.policies.base import Policy, PolicyOptions
from bandit.space import DecisionSpace


class _PerActionOptions(PolicyOptions, total=False):
    n_samples: int


class _PerActionThompson(Policy):
    """Independent per-action posteriors; contexts are validated and then ignored.

    The posterior does not depend on the context, so the ``n_samples`` draws of every
    action's value are made once per learned state and reused by every row and call until
    the next update or :meth:`set_state`: each decision's action is sampled from the share of
    those draws each eligible action wins, which is then its exact propensity
    (:mod:`bandit.montecarlo`). Fresh draws per call would only redraw the Monte Carlo error,
    at ``n_samples x A`` variates a decision (7 ms of Beta draws on 1,200 actions).
    """

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        n_samples: int = 100,
        seed: int | np.random.Generator | None = None,
        exploration_floor: float | None = None,
    ) -> None:
        super().__init__(space, n_context, seed=seed, exploration_floor=exploration_floor)
        self.n_samples = check_int(n_samples, "n_samples", type(self).__name__, low=1)
        self._draws: np.ndarray | None = None

    def _draw(self, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def _posterior_draws(self) -> np.ndarray:
        """The current state's draws ``(M, A)``, made on first use after a change of state."""
        if self._draws is None:
            self._draws = self._draw((self.n_samples, self.n_actions))
        return self._draws

    def _policy_probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        draws = self._posterior_draws()[None]
        if (mask == mask[0]).all():
            shares = winner_frequencies(draws, mask[:1])
            return np.broadcast_to(shares, mask.shape).copy()
        masks, inverse = np.unique(mask, axis=0, return_inverse=True)
        shares = np.concatenate([winner_frequencies(draws, row[None]) for row in masks])
        return shares[inverse.ravel()]

    def update(
        self,
        X: object,
        actions: object,
        rewards: object,
        propensities: object | None = None,
    ) -> None:
        self._draws = None
        super().update(X, actions, rewards, propensities)

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self._draws = None
        super().set_state(state)


class BetaTSPolicy(_PerActionThompson):
    """Beta-Bernoulli Thompson sampling: ``theta_a ~ Beta(a0 + successes, b0 + failures)``.

    Rewards in [0, 1]; a fractional reward counts as that share of a success (Agrawal & Goyal
    2012, "Analysis of Thompson Sampling for the Multi-armed Bandit Problem"). A Beta(2, 3)
    prior observing rewards [1, 0, 1] on one action becomes Beta(4, 4).
    """

    name = "beta_ts"
    binary_rewards = True

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        **kwargs: Unpack[_PerActionOptions],
    ) -> None:
        super().__init__(space, n_context, **kwargs)
        owner = type(self).__name__
        self.prior_alpha = check_real(prior_alpha, "prior_alpha", owner, low=0.0, closed="right")
        self.prior_beta = check_real(prior_beta, "prior_beta", owner, low=0.0, closed="right")
        self.alpha_ = np.full(space.n_actions, self.prior_alpha)
        self.beta_ = np.full(space.n_actions, self.prior_beta)

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"alpha": (self.n_actions,), "beta": (self.n_actions,)}

    def _draw(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng_.beta(self.alpha_, self.beta_, size=shape)

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        np.add.at(self.alpha_, actions, rewards)
        np.add.at(self.beta_, actions, 1.0 - rewards)


class GaussianTSPolicy(_PerActionThompson):
    """Gaussian Thompson sampling with known noise variance and a normal prior per action.

    Posterior precision ``tau_a = 1/v0 + n_a/s2``, mean ``(m0/v0 + sum_a r / s2) / tau_a``
    (conjugate normal-normal model; Russo et al. 2018, "A Tutorial on Thompson Sampling").
    """

    name = "gaussian_ts"

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        prior_mean: float = 0.0,
        prior_variance: float = 1.0,
        noise_variance: float = 1.0,
        **kwargs: Unpack[_PerActionOptions],
    ) -> None:
        super().__init__(space, n_context, **kwargs)
        owner = type(self).__name__
        self.prior_mean = check_real(prior_mean, "prior_mean", owner)
        self.prior_variance = check_real(
            prior_variance, "prior_variance", owner, low=0.0, closed="right"
        )
        self.noise_variance = check_real(
            noise_variance, "noise_variance", owner, low=0.0, closed="right"
        )
        self.counts_ = np.zeros(space.n_actions)
        self.sums_ = np.zeros(space.n_actions)

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"counts": (self.n_actions,), "sums": (self.n_actions,)}

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of every action's expected reward."""
        precision = 1.0 / self.prior_variance + self.counts_ / self.noise_variance
        mean = (
            self.prior_mean / self.prior_variance + self.sums_ / self.noise_variance
        ) / precision
        return mean, 1.0 / precision

    def _draw(self, shape: tuple[int, ...]) -> np.ndarray:
        mean, variance = self.posterior()
        return mean + np.sqrt(variance) * self.rng_.standard_normal(shape)

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        np.add.at(self.counts_, actions, 1.0)
        np.add.at(self.sums_, actions, rewards)
