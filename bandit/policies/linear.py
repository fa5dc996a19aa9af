"""Shared base of the linear policies: a Gaussian belief over action-feature weights.

Prior ``w ~ N(0, I / ridge)``; each reward ``r = phi(x, a) . w + e``, ``e ~ N(0, noise_variance)``.
The posterior mean is the ridge solution ``(ridge I + X^T X / s2)^-1 X^T r / s2`` and the
posterior covariance is kept directly and updated incrementally (:mod:`bandit.linalg`).
Subclasses decide how to turn the belief into choice probabilities, and may override the
likelihood (logistic) or add a predict step (Kalman).

With ``noise_variance="auto"`` the noise variance is learned instead of given: the
Normal-inverse-gamma model (O'Hagan & Forster 2004, *Kendall's Advanced Theory of
Statistics* 2B, sec. 9.7-9.14; Murphy 2012, *Machine Learning: A Probabilistic Perspective*,
sec. 7.6.3; used for linear Thompson sampling by Riquelme, Tucker & Snoek 2018, "Deep
Bayesian Bandits Showdown", LinFullPost)::

    sigma^2 ~ InvGamma(a0, b0),   w | sigma^2 ~ N(0, sigma^2 I / ridge),
    r = phi(x, a) . w + e,        e ~ N(0, sigma^2)

The belief then holds ``w | sigma^2 ~ N(mu, sigma^2 V)``: ``mu`` and ``V`` follow the same
incremental update with unit noise (so ``mu`` is the ridge solution with penalty ``ridge``,
as with ``noise_variance = 1``), and each batch adds ``a += n / 2`` and
``b += e^T (r - X mu') / 2`` with ``e = r - X mu`` the residual before the update. By the
Woodbury identity ``r - X mu' = (I + X V X^T)^-1 e``, so this is the conjugate
``b_n = b_0 + (r^T r - mu_n^T V_n^-1 mu_n) / 2`` accumulated batch by batch (for the
Kalman model, the unknown-variance dynamic linear model of West & Harrison 1997, sec. 4.5,
where ``V`` is the predicted covariance and the process noise is in units of ``sigma^2``).
Thompson sampling draws ``sigma^2`` from ``InvGamma(a, b)`` for every Monte Carlo draw and
then ``w``, so the draws follow the multivariate Student t marginal; LinUCB uses the plug-in
``sigma^2 = b / a`` (the reciprocal of the posterior mean precision), which tends to the
residual variance of the rewards. An explicit number keeps the known-variance model exactly.

``"auto"`` is the default of every policy with a Gaussian likelihood: a fixed guess sets the
width of every posterior draw, and the old default of 1 is four times the largest variance of
a 0/1 reward, so Thompson sampling explored as if rewards were four to five times noisier
than they are (the posterior spread ``sqrt(sigma^2 V)`` two to two and a half times too
wide). Riquelme, Tucker & Snoek (2018) found learning the noise variance with the weights
(LinFullPost) the most reliable linear Thompson sampler of their comparison. On six K = 8,
d = 10 logistic bandits (``python -m bench.ts_gap``) it takes linear_ts from 0.751 to 0.767
(expected reward, last 5,000 of 20,000 rounds, batch 100). A policy that cannot learn it
(logistic, fitted Q) keeps 1.0.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal, Unpack

import numpy as np

from bandit._validation import BanditValueError, check_int, check_matrix, check_real
from bandit.belief import BlockBelief, JointBelief
from bandit.features import ActionFeatures
from bandit.policies.base import Policy, PolicyOptions
from bandit.space import DecisionSpace

#: Prior ``sigma^2 ~ InvGamma(a0, b0)`` under ``noise_variance="auto"``: worth ``2 a0 = 2``
#: pseudo-observations of variance ``b0 / a0 = 1``, so a few dozen rewards outweigh it.
NOISE_PRIOR_SHAPE = 1.0
NOISE_PRIOR_SCALE = 1.0

#: The ``noise_variance`` value that learns the noise variance from the rewards.
AUTO_NOISE: Final = "auto"


class LinearOptions(PolicyOptions, total=False):
    """The keyword arguments of :class:`LinearPolicy` that its subclasses pass on to it."""

    ridge: float
    noise_variance: float | Literal["auto"] | None
    fit_intercept: bool
    interactions: bool


class ThompsonLinearOptions(LinearOptions, total=False):
    """The keyword arguments of :class:`ThompsonLinearPolicy` that its subclasses pass on."""

    scale: float
    n_samples: int


class LinearPolicy(Policy):
    """Bayesian linear model over :class:`~bandit.features.ActionFeatures`.

    A one-factor space without interactions keeps one independent block per arm
    (:class:`~bandit.belief.BlockBelief`); any other space keeps a joint belief so that
    actions sharing a level share what was learned.

    Args:
        ridge: prior precision of every weight (> 0); the ridge penalty.
        noise_variance: reward noise variance ``s2`` (> 0), or ``"auto"`` to learn it under
            the Normal-inverse-gamma model of the module docstring (state then also holds
            ``noise_shape`` and ``noise_scale``, the posterior ``a`` and ``b``). ``None``
            (the default) is the class's ``default_noise_variance``: ``"auto"``, or 1.0 for
            a policy that cannot learn it.
        fit_intercept: add a constant context feature.
        interactions: add factor-pair bias features.
    """

    #: The likelihood is Gaussian, so ``noise_variance="auto"`` applies.
    gaussian_likelihood: ClassVar[bool] = True
    #: What ``noise_variance=None`` means: learned, unless a subclass cannot learn it.
    default_noise_variance: ClassVar[float | Literal["auto"]] = AUTO_NOISE

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        ridge: float = 1.0,
        noise_variance: float | Literal["auto"] | None = None,
        fit_intercept: bool = True,
        interactions: bool = False,
        seed: int | np.random.Generator | None = None,
        exploration_floor: float | None = None,
    ) -> None:
        super().__init__(space, n_context, seed=seed, exploration_floor=exploration_floor)
        owner = type(self).__name__
        self.ridge = check_real(ridge, "ridge", owner, low=0.0, closed="right")
        self.noise_variance: float | str
        if noise_variance is None:
            noise_variance = self.default_noise_variance
        if isinstance(noise_variance, str) and noise_variance == AUTO_NOISE:
            if not self.gaussian_likelihood:
                raise BanditValueError(
                    "noise_variance",
                    f"The 'noise_variance' parameter of {owner} cannot be 'auto': its "
                    "likelihood is not Gaussian.",
                )
            self.noise_variance = AUTO_NOISE
            self.noise_shape_ = np.array(NOISE_PRIOR_SHAPE)
            self.noise_scale_ = np.array(NOISE_PRIOR_SCALE)
        elif isinstance(noise_variance, str):
            raise BanditValueError(
                "noise_variance",
                f"The 'noise_variance' parameter of {owner} must be a float in (0, inf) or "
                f"'auto'. Got {noise_variance!r}.",
            )
        else:
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

    @property
    def learns_noise(self) -> bool:
        """Whether the noise variance is learned (``noise_variance="auto"``)."""
        return self.noise_variance == AUTO_NOISE

    @property
    def noise_variance_(self) -> float:
        """The noise variance in use: the given number, or ``b / a`` when learned."""
        if self.learns_noise:
            return float(self.noise_scale_) / float(self.noise_shape_)
        return float(self.noise_variance)

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = self.belief_.state_shapes()
        if self.learns_noise:
            shapes.update(noise_shape=(), noise_scale=())
        return shapes

    def _score_variance(self, Z: np.ndarray) -> np.ndarray:
        """Posterior variance of every action's score, ``(n, A)``, clipped at zero."""
        variance = np.clip(self.belief_.score_variance(Z), 0.0, None)
        if self.learns_noise:
            return variance * self.noise_variance_
        return variance

    def expected_rewards(self, X: object) -> np.ndarray:
        """Posterior mean score of every action, ``(n, A)`` (a reward model for DM/DR)."""
        contexts = check_matrix(X, "X", n_columns=self.n_context)
        return self.belief_.mean_scores(self.features.augment(contexts))

    def _likelihood_terms(
        self, predictor: np.ndarray, rewards: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-row curvature and score of the log-likelihood at the linear predictor."""
        # Under "auto" the belief is kept in units of sigma^2 (V rather than sigma^2 V).
        precision = 1.0 if self.learns_noise else 1.0 / float(self.noise_variance)
        return np.full(rewards.shape[0], precision), (rewards - predictor) * precision

    def _before_update(self, n_rows: int) -> None:
        """Hook for a predict step (state-space models); stationary models do nothing."""

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        self._before_update(X.shape[0])
        Z = self.features.augment(X)
        if self.learns_noise:
            self._measure(Z, actions, rewards)
        else:
            # A known noise variance needs no residual quadratic: skip the second predictor.
            self._fold_in(Z, actions, rewards)

    def _fold_in(self, Z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """Fold augmented contexts ``Z`` (n, w) into the belief; return the linear predictor
        ``X mu`` of the chosen actions before the update, ``(n,)``."""
        predictor = self.belief_.linear_predictor(Z, actions)
        curvature, score = self._likelihood_terms(predictor, rewards)
        self.belief_.update(Z, actions, curvature, score)
        return predictor

    def _measure(self, Z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> float:
        """Fold augmented contexts ``Z`` (n, w) into the belief (the measurement update).

        Returns ``e^T (r - X mu')``, with ``e = r - X mu`` the residual before the update and
        ``mu'`` the mean after it. For a Gaussian likelihood (``H = h I``) it equals
        ``e^T (I + h X Sigma X^T)^-1 e`` (Woodbury), the quadratic form of the batch's
        predictive density.
        """
        predictor = self._fold_in(Z, actions, rewards)
        after = self.belief_.linear_predictor(Z, actions)
        quadratic = float((rewards - predictor) @ (rewards - after))
        if self.learns_noise:
            self.noise_shape_ = self.noise_shape_ + 0.5 * rewards.shape[0]
            self.noise_scale_ = self.noise_scale_ + 0.5 * quadratic
        return quadratic


class ThompsonLinearPolicy(LinearPolicy):
    """Thompson sampling on the linear belief, with Monte Carlo choice probabilities.

    Each row draws ``n_samples`` score vectors from the posterior (standard deviation times
    ``scale``); the policy's distribution is the share of draws each eligible action wins,
    and the action is sampled from that distribution, so the logged propensity is exactly the
    probability with which the action was chosen (Agrawal & Goyal 2013, "Thompson Sampling
    for Contextual Bandits with Linear Payoffs"). The rows of a batch share the standard
    normal draws and rows with a clear winner skip the comparison (:mod:`bandit.montecarlo`).
    Joint draws go through a Cholesky factor, which is reproducible across BLAS builds.

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
        **kwargs: Unpack[LinearOptions],
    ) -> None:
        super().__init__(space, n_context, **kwargs)
        owner = type(self).__name__
        self.scale = check_real(scale, "scale", owner, low=0.0)
        self.n_samples = check_int(n_samples, "n_samples", owner, low=1)

    def _policy_probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        draw_scale = self._draw_noise_sd() if self.learns_noise else None
        return self.belief_.choice_probabilities(
            self.features.augment(X), mask, self.n_samples, self.scale, self.rng_, draw_scale
        )

    def _draw_noise_sd(self) -> np.ndarray:
        """``sigma`` for every Monte Carlo draw, ``(M,)``, shared by a batch's rows like the
        normal draws: ``sigma^2 = b / G``, ``G ~ Gamma(a, 1)``, so ``sigma^2 ~ InvGamma(a, b)``.
        """
        precision = self.rng_.gamma(float(self.noise_shape_), size=self.n_samples)
        return np.sqrt(float(self.noise_scale_) / precision)
