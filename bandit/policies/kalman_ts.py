"""State-space Thompson sampling: a dynamic linear model whose weights drift."""

from __future__ import annotations

from typing import Unpack

from bandit._validation import check_real
from bandit.policies.linear import ThompsonLinearOptions, ThompsonLinearPolicy
from bandit.space import DecisionSpace


class KalmanTSPolicy(ThompsonLinearPolicy):
    """Thompson sampling on a dynamic linear model ``w_t = w_{t-1} + eta_t``.

    Before each batch of ``n`` rewards the belief is propagated ``n`` steps (Kalman predict:
    ``Sigma <- Sigma / forgetting^n + n q I``), then the batch is folded in with the Kalman
    measurement update. Old evidence therefore fades and the policy keeps up when customer
    behaviour drifts: state-space modelling of the weights (West & Harrison 1997, "Bayesian
    Forecasting and Dynamic Models"). With ``process_noise = 0`` and ``forgetting = 1`` it
    equals linear Thompson sampling. With ``noise_variance="auto"`` the belief is kept in units
    of the unknown noise variance, so ``process_noise`` is a signal-to-noise ratio (West &
    Harrison 1997, sec. 4.5, "unknown observational variance"). The right ``process_noise``
    depends on how fast the world drifts, which is rarely known:
    :class:`~bandit.policies.drift_ts.DriftTSPolicy` learns it.

    Args:
        process_noise: variance ``q`` added to every weight per observed reward.
        forgetting: discount factor in (0, 1] applied per observed reward.
    """

    name = "kalman_ts"

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        process_noise: float = 1e-6,
        forgetting: float = 1.0,
        **kwargs: Unpack[ThompsonLinearOptions],
    ) -> None:
        super().__init__(space, n_context, **kwargs)
        owner = type(self).__name__
        self.process_noise = check_real(process_noise, "process_noise", owner, low=0.0)
        self.forgetting = check_real(
            forgetting, "forgetting", owner, low=0.0, high=1.0, closed="right"
        )

    def _before_update(self, n_rows: int) -> None:
        self.belief_.diffuse(self.process_noise, self.forgetting, n_rows)
