"""Thompson sampling that learns how fast the world drifts: dynamic model averaging.

:class:`~bandit.policies.kalman_ts.KalmanTSPolicy` needs its process noise ``q`` in advance:
too small and it lags behind a drifting world, too large and it forgets what a stationary
world taught it. The user cannot know the drift rate, so this policy runs one Kalman filter
per rate of a ladder ``q_1 < ... < q_M`` (``0`` included: the stationary model) and weighs
them by how well each predicted the rewards, before it saw them: dynamic model averaging
(Raftery, Karny & Ettler 2010, "Online Prediction Under Model Uncertainty via Dynamic Model
Averaging: Application to a Cold Rolling Mill", Technometrics 52(1), eq. 2.3-2.5)::

    log pi_m <- alpha^n log pi_m + log p_m(r | X, past),     then normalise,

with ``p_m`` the one-step (one-batch) predictive density of model ``m`` and ``alpha`` in
(0, 1] the forgetting of the model weights (``alpha = 1`` is Bayesian model averaging over a
constant but unknown drift rate; ``alpha < 1`` lets the rate itself change). The predictive
density of a batch is exact, from quantities the Kalman update computes anyway
(:func:`bandit.linalg.log_det_gain`, the quadratic of
:meth:`~bandit.policies.linear.LinearPolicy._measure`):

- known noise variance ``s2``: ``N(r; X mu, X Sigma X^T + s2 I)``,
  ``log p = -(n log(2 pi s2) + log det(I + X Sigma X^T / s2) + e^T (r - X mu') / s2) / 2``;
- learned noise variance (``sigma^2 ~ InvGamma(a, b)``, West & Harrison 1997, sec. 4.5): the
  multivariate Student t, ``log p = lgamma(a') - lgamma(a) + a log b - a' log b'
  - n log(2 pi) / 2 - log det(I + X V X^T) / 2`` with ``a' = a + n / 2`` and
  ``b' = b + e^T (r - X mu') / 2``.

Thompson sampling on the mixture posterior draws a model from the weights and then the scores
from that model: each row's ``n_samples`` draws are split over the models by one multinomial
draw, and the choice probabilities are the share of draws each action wins, as in
:class:`~bandit.policies.linear.ThompsonLinearPolicy`, so the logged propensity is exactly
the probability the action was drawn with. Drift rates are in units of the noise variance
(signal-to-noise ratios), so one ladder fits clicks and revenue alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Unpack

import numpy as np

from bandit._validation import BanditValueError, check_real
from bandit.belief import BlockBelief
from bandit.linalg import block_log_det_gain, log_det_gain
from bandit.montecarlo import MAX_DRAW_CELLS, winner_frequencies
from bandit.policies.base import Policy
from bandit.policies.kalman_ts import KalmanTSPolicy
from bandit.policies.linear import ThompsonLinearOptions
from bandit.space import DecisionSpace

#: The default ladder of drift rates: process noise per observed reward, in units of the
#: noise variance. 0 is the stationary model; the others let each weight wander by a standard
#: deviation of ``sqrt(q T)`` noise units over ``T`` rewards.
DEFAULT_DRIFT_RATES: tuple[float, ...] = (0.0, 1e-6, 1e-5, 1e-4)


class DriftTSPolicy(Policy):
    """Kalman Thompson sampling averaged over a ladder of drift rates (see module docstring).

    Args:
        drift_rates: the process noise of each model, per observed reward, in units of the
            noise variance; distinct, finite, >= 0.
        weight_forgetting: ``alpha`` of dynamic model averaging, in (0, 1], applied per
            observed reward.
        ridge, noise_variance, fit_intercept, interactions, scale, n_samples: as for
            :class:`~bandit.policies.linear.ThompsonLinearPolicy`, shared by every model.
    """

    name = "drift_ts"
    #: The likelihood is Gaussian, so ``noise_variance="auto"`` applies.
    gaussian_likelihood = True

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        drift_rates: Sequence[float] = DEFAULT_DRIFT_RATES,
        weight_forgetting: float = 1.0,
        **kwargs: Unpack[ThompsonLinearOptions],
    ) -> None:
        super().__init__(
            space,
            n_context,
            seed=kwargs.get("seed"),
            exploration_floor=kwargs.get("exploration_floor"),
        )
        owner = type(self).__name__
        self.drift_rates = _check_rates(drift_rates, owner)
        self.weight_forgetting = check_real(
            weight_forgetting, "weight_forgetting", owner, low=0.0, high=1.0, closed="right"
        )
        # The models share this policy's generator; their own floor is 0 (it is mixed in once).
        shared: ThompsonLinearOptions = {**kwargs, "seed": self.rng_, "exploration_floor": 0.0}
        self.models = tuple(
            KalmanTSPolicy(space, n_context, process_noise=0.0, **shared) for _ in self.drift_rates
        )
        first = self.models[0]
        unit = 1.0 if first.learns_noise else float(first.noise_variance)
        for model, rate in zip(self.models, self.drift_rates, strict=True):
            model.process_noise = rate * unit
        self.features = first.features
        self.scale = first.scale
        self.n_samples = first.n_samples
        self.log_weights_ = np.full(len(self.models), -math.log(len(self.models)))

    # ----------------------------------------------------------------- state
    @property
    def learns_noise(self) -> bool:
        """Whether the noise variance is learned (``noise_variance="auto"``)."""
        return self.models[0].learns_noise

    @property
    def weights_(self) -> np.ndarray:
        """The models' posterior weights ``(M,)``, in the order of ``drift_rates``."""
        weights = np.exp(self.log_weights_ - self.log_weights_.max())
        return weights / weights.sum()

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        count = len(self.models)
        shapes = {key: (count, *shape) for key, shape in self.models[0]._state_shapes().items()}
        shapes["log_weights"] = (count,)
        return shapes

    def _stacked(self, key: str) -> np.ndarray:
        return np.stack([np.asarray(getattr(model, key)) for model in self.models])

    def _spread(self, key: str, value: np.ndarray) -> None:
        for model, part in zip(self.models, np.asarray(value), strict=True):
            setattr(model, key, np.array(part, dtype=np.float64))

    @property
    def mean_(self) -> np.ndarray:
        return self._stacked("mean_")

    @mean_.setter
    def mean_(self, value: np.ndarray) -> None:
        self._spread("mean_", value)

    @property
    def cov_(self) -> np.ndarray:
        return self._stacked("cov_")

    @cov_.setter
    def cov_(self, value: np.ndarray) -> None:
        self._spread("cov_", value)

    @property
    def noise_shape_(self) -> np.ndarray:
        return self._stacked("noise_shape_")

    @noise_shape_.setter
    def noise_shape_(self, value: np.ndarray) -> None:
        self._spread("noise_shape_", value)

    @property
    def noise_scale_(self) -> np.ndarray:
        return self._stacked("noise_scale_")

    @noise_scale_.setter
    def noise_scale_(self, value: np.ndarray) -> None:
        self._spread("noise_scale_", value)

    # ----------------------------------------------------------------- choosing
    def expected_rewards(self, X: object) -> np.ndarray:
        """Posterior mean score of every action under the mixture, ``(n, A)``."""
        weights = self.weights_
        return sum(
            (w * model.expected_rewards(X) for w, model in zip(weights, self.models, strict=True)),
            start=np.zeros((np.asarray(X).shape[0], self.n_actions)),
        )

    def _policy_probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Win shares of ``n_samples`` draws split over the models by one multinomial draw of
        their weights, the draws shared by every row of the call (as
        :mod:`bandit.montecarlo`): each model's draws come from a generator seeded once per
        call, so row chunks see the same draws and one context logs one propensity."""
        rows_per_chunk = max(1, MAX_DRAW_CELLS // (self.n_samples * self.n_actions))
        counts = self.rng_.multinomial(self.n_samples, self.weights_)
        seeds = self.rng_.integers(0, 2**63, size=len(self.models))
        parts = []
        for start in range(0, X.shape[0], rows_per_chunk):
            Z = self.features.augment(X[start : start + rows_per_chunk])
            draws = [
                self._draw(model, Z, int(count), np.random.default_rng(int(seed)))
                for model, count, seed in zip(self.models, counts, seeds, strict=True)
                if count
            ]
            scores = draws[0] if len(draws) == 1 else np.concatenate(draws, axis=1)
            parts.append(winner_frequencies(scores, mask[start : start + rows_per_chunk]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def _draw(
        self, model: KalmanTSPolicy, Z: np.ndarray, count: int, rng: np.random.Generator
    ) -> np.ndarray:
        """``count`` posterior draws of every action's score per row from one model."""
        if not model.learns_noise:
            return model.belief_.draw_scores(Z, count, self.scale, rng)
        # sigma^2 ~ InvGamma(a, b) per draw, shared by the rows like the normal draws
        # (bandit.montecarlo): each row's scores are Student t.
        precision = rng.gamma(float(model.noise_shape_), size=count)
        sigma = np.sqrt(float(model.noise_scale_) / precision)
        return model.belief_.draw_scores(Z, count, self.scale, rng, sigma)

    # ----------------------------------------------------------------- learning
    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        n = X.shape[0]
        Z = self.features.augment(X)
        evidence = np.array([self._fold(model, Z, actions, rewards) for model in self.models])
        log_weights = self.weight_forgetting**n * self.log_weights_ + evidence
        self.log_weights_ = log_weights - _log_sum_exp(log_weights)

    def _fold(
        self, model: KalmanTSPolicy, Z: np.ndarray, actions: np.ndarray, rewards: np.ndarray
    ) -> float:
        """Predict, measure, and return the log predictive density of the batch (module
        docstring) under ``model``."""
        n = Z.shape[0]
        if model.process_noise:
            model._before_update(n)
        # The Gaussian likelihood's curvature does not depend on the predictor.
        curvature, _ = model._likelihood_terms(rewards, rewards)
        if isinstance(model.belief_, BlockBelief):
            gain = block_log_det_gain(model.belief_.cov, Z, actions, curvature)
        else:
            gain = log_det_gain(model.belief_.cov, self.features.design(Z, actions), curvature)
        if not model.learns_noise:
            s2 = float(model.noise_variance)
            quadratic = model._measure(Z, actions, rewards)
            return -0.5 * (n * math.log(2.0 * math.pi * s2) + gain + quadratic / s2)
        shape, scale = float(model.noise_shape_), float(model.noise_scale_)
        model._measure(Z, actions, rewards)
        after_shape, after_scale = float(model.noise_shape_), float(model.noise_scale_)
        return (
            math.lgamma(after_shape)
            - math.lgamma(shape)
            + shape * math.log(scale)
            - after_shape * math.log(after_scale)
            - 0.5 * n * math.log(2.0 * math.pi)
            - 0.5 * gain
        )


def _log_sum_exp(values: np.ndarray) -> float:
    top = float(values.max())
    return top + math.log(float(np.exp(values - top).sum()))


def _check_rates(rates: object, owner: str) -> tuple[float, ...]:
    message = (
        f"The 'drift_rates' parameter of {owner} must be a non-empty list of distinct finite "
        f"floats >= 0. Got {rates!r}."
    )
    if isinstance(rates, str | bytes) or not isinstance(rates, Sequence) or not rates:
        raise BanditValueError("drift_rates", message)
    checked = []
    for rate in rates:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < math.inf:
            raise BanditValueError("drift_rates", message)
        checked.append(float(rate))
    if len(set(checked)) != len(checked):
        raise BanditValueError("drift_rates", message)
    return tuple(checked)
