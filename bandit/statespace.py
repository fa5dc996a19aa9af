"""Per-customer level and trend of a KPI series, as context features for decisions.

Each customer's KPI series (usage, spend, activity) is read through a local linear trend
model (Harvey 1989, ch. 2; Durbin & Koopman 2012, ch. 3 "Linear state space models",
local linear trend model) and filtered with the Kalman filter (Durbin & Koopman, ch. 4):

    level_t = level_{t-1} + trend_{t-1} + xi_t,    xi_t   ~ N(0, level_noise)
    trend_t = trend_{t-1} + zeta_t,                zeta_t ~ N(0, trend_noise)
    y_t     = level_t + eps_t,                     eps_t  ~ N(0, obs_noise)

that is, with state ``alpha_t = [level_t, trend_t]``::

    alpha_t = F alpha_{t-1} + eta_t,   F = [[1, 1], [0, 1]],   Q = diag(level_noise, trend_noise)
    y_t     = Z alpha_t + eps_t,       Z = [1, 0],             H = obs_noise

The filter runs on a batch of customers at once: arrays carry the customer on axis 0 and
only the time steps are looped over. A missing observation (NaN) skips the update and keeps
the prediction (Durbin & Koopman, ch. 4, "Missing observations": set K_t = 0), so a customer
with a silent day drifts by its trend and grows more uncertain instead of breaking the batch.

References
----------
J. Durbin and S. J. Koopman, *Time Series Analysis by State Space Methods*, 2nd ed.,
Oxford University Press, 2012.
A. C. Harvey, *Forecasting, Structural Time Series Models and the Kalman Filter*,
Cambridge University Press, 1989.
R. S. Bucy and P. D. Joseph, *Filtering for Stochastic Processes with Applications to
Guidance*, Interscience, 1968 (the Joseph form of the covariance update).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from bandit._validation import BanditValueError, check_int, check_real, check_vector

__all__ = ["FEATURE_NAMES", "LocalLinearTrend", "TrendPath", "TrendState"]

#: Column names of :meth:`TrendState.features`, in order.
FEATURE_NAMES: tuple[str, ...] = ("level", "trend", "level_sd", "trend_sd")

_OWNER = "LocalLinearTrend"


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _as_float_array(value: object, name: str) -> np.ndarray:
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BanditValueError(name, f"'{name}' must be an array of real numbers.") from exc


def _check_observations(value: object, name: str, *, ndim: int, rows: int | None) -> np.ndarray:
    """Return observations as float64; NaN means missing, infinity is refused.

    ``check_matrix``/``check_vector`` refuse NaN, but here NaN is data (a missing day).
    """
    array = _as_float_array(value, name)
    if array.ndim != ndim:
        raise BanditValueError(name, f"'{name}' must be a {ndim}-D array; got shape {array.shape}.")
    if rows is not None and array.shape[0] != rows:
        raise BanditValueError(
            name,
            f"'{name}' must have {rows} rows (one per customer in the state); "
            f"got shape {array.shape}.",
        )
    if np.isinf(array).any():
        raise BanditValueError(
            name, f"'{name}' must not contain infinity; use NaN for a missing observation."
        )
    return array


def _predict(
    mean: np.ndarray, cov: np.ndarray, level_noise: float, trend_noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Time update ``a = F m``, ``P- = F P F' + Q``; shapes (n, 2) and (n, 2, 2).

    Written out for ``P = [[p00, c], [c, p11]]`` (``TrendState`` checks the symmetry; 2x2
    stacks are slow through ``matmul``)::

        a   = [level + trend, trend]
        P-  = [[p00 + 2 c + p11 + level_noise, c + p11], [c + p11, p11 + trend_noise]]
    """
    p00, c, p11 = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    predicted_mean = np.column_stack([mean[:, 0] + mean[:, 1], mean[:, 1]])
    return predicted_mean, _stack_cov(p00 + 2.0 * c + p11 + level_noise, c + p11, p11 + trend_noise)


def _update(
    mean: np.ndarray, cov: np.ndarray, y: np.ndarray, obs_noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Measurement update of the prediction ``(a, P-)`` by ``y`` (n,), NaN = missing.

    ``v = y - Z a``, ``S = Z P- Z' + H``, ``K = P- Z' / S``, ``m = a + K v`` and, in Joseph
    form, ``P = (I - K Z) P- (I - K Z)' + H K K'``, which stays symmetric positive
    semi-definite under rounding where the short form ``(I - K Z) P-`` may not. Written out
    for ``P- = [[a00, a01], [a01, a11]]``, ``K = [k0, k1]`` and ``1 - k0 = H / S``::

        P00 = (1 - k0)^2 a00 + H k0^2
        P01 = (1 - k0) (a01 - k1 a00) + H k0 k1
        P11 = a11 - 2 k1 a01 + k1^2 (a00 + H)

    Missing rows get ``K = 0`` and so keep ``(a, P-)`` exactly.
    """
    observed = ~np.isnan(y)
    a00, a01, a11 = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    s = a00 + obs_noise
    innovation = np.where(observed, y - mean[:, 0], 0.0)
    k0 = np.where(observed, a00 / s, 0.0)
    k1 = np.where(observed, a01 / s, 0.0)
    # H / S rather than 1 - k0: no cancellation when the prior is diffuse and k0 is near 1.
    rest = np.where(observed, obs_noise / s, 1.0)
    new_mean = np.column_stack([mean[:, 0] + k0 * innovation, mean[:, 1] + k1 * innovation])
    p00 = rest * rest * a00 + obs_noise * k0 * k0
    p01 = rest * (a01 - k1 * a00) + obs_noise * k0 * k1
    p11 = a11 - 2.0 * k1 * a01 + k1 * k1 * s
    return new_mean, _stack_cov(p00, p01, p11)


def _stack_cov(p00: np.ndarray, p01: np.ndarray, p11: np.ndarray) -> np.ndarray:
    """Stack (n,) entries into (n, 2, 2) symmetric matrices; symmetric by construction."""
    cov = np.empty((p00.shape[0], 2, 2))
    cov[:, 0, 0] = p00
    cov[:, 0, 1] = cov[:, 1, 0] = p01
    cov[:, 1, 1] = p11
    return cov


def _step(
    mean: np.ndarray, cov: np.ndarray, y: np.ndarray, model: LocalLinearTrend
) -> tuple[np.ndarray, np.ndarray]:
    predicted_mean, predicted_cov = _predict(mean, cov, model.level_noise, model.trend_noise)
    return _update(predicted_mean, predicted_cov, y, model.obs_noise)


@dataclass(frozen=True, eq=False)
class TrendState:
    """Filtered belief about ``[level, trend]`` for a batch of customers.

    ``mean`` has shape (n, 2) (columns level, trend); ``cov`` has shape (n, 2, 2), each a
    symmetric covariance matrix. Arrays are stored as read-only float64 copies.
    """

    mean: np.ndarray
    cov: np.ndarray

    def __post_init__(self) -> None:
        mean = _as_float_array(self.mean, "mean")
        cov = _as_float_array(self.cov, "cov")
        if mean.ndim != 2 or mean.shape[1] != 2:
            raise BanditValueError("mean", f"'mean' must have shape (n, 2); got {mean.shape}.")
        if cov.shape != (mean.shape[0], 2, 2):
            raise BanditValueError(
                "cov", f"'cov' must have shape ({mean.shape[0]}, 2, 2); got {cov.shape}."
            )
        if not np.isfinite(mean).all():
            raise BanditValueError("mean", "'mean' must be finite; it contains NaN or infinity.")
        if not np.isfinite(cov).all():
            raise BanditValueError("cov", "'cov' must be finite; it contains NaN or infinity.")
        if (np.diagonal(cov, axis1=1, axis2=2) < 0).any():
            raise BanditValueError("cov", "'cov' must have non-negative variances.")
        if not np.allclose(cov, cov.swapaxes(1, 2), rtol=1e-9, atol=0.0):
            raise BanditValueError("cov", "'cov' must hold symmetric matrices.")
        object.__setattr__(self, "mean", _readonly(mean))
        object.__setattr__(self, "cov", _readonly(cov))

    @property
    def n_customers(self) -> int:
        return int(self.mean.shape[0])

    def features(self) -> np.ndarray:
        """Context features, shape (n, 4): ``[level, trend, level_sd, trend_sd]``.

        Column names are :data:`FEATURE_NAMES`; ``*_sd`` is the square root of the filtered
        variance, so a customer seen rarely has wide, honest uncertainty.
        """
        variances = np.diagonal(self.cov, axis1=1, axis2=2)
        return np.column_stack([self.mean, np.sqrt(variances)])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain writable copies ``{"mean": (n, 2), "cov": (n, 2, 2)}``, e.g. for ``np.savez``."""
        return {"mean": self.mean.copy(), "cov": self.cov.copy()}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, ArrayLike]) -> TrendState:
        """Inverse of :meth:`to_arrays`; the round trip is exact."""
        for key in ("mean", "cov"):
            if key not in arrays:
                raise BanditValueError(key, f"'{key}' is missing from the arrays.")
        return cls(mean=np.asarray(arrays["mean"]), cov=np.asarray(arrays["cov"]))


@dataclass(frozen=True, eq=False)
class TrendPath:
    """Filtered values after every step, each of shape (n_customers, n_steps).

    ``final`` is the state after the last step (with the level/trend covariance the
    per-step arrays leave out), ready to continue with :meth:`LocalLinearTrend.step`.
    """

    level: np.ndarray
    trend: np.ndarray
    level_var: np.ndarray
    trend_var: np.ndarray
    final: TrendState = field(repr=False)


@dataclass(frozen=True)
class LocalLinearTrend:
    """Local linear trend Kalman filter, vectorised over customers.

    Hyper-parameters are variances in squared KPI units per time step:

    - ``level_noise`` (>= 0): variance of the level's own random walk, Q[0, 0].
    - ``trend_noise`` (>= 0): variance of the trend's random walk, Q[1, 1]; 0 gives a fixed
      slope per customer, larger values let the slope turn faster.
    - ``obs_noise`` (> 0): observation noise variance H.
    - ``initial_level_var``, ``initial_trend_var`` (> 0): prior variances of the initial
      state. The defaults (1e6, i.e. a standard deviation of 1000 KPI units) are
      approximately diffuse for KPIs of order up to hundreds: after two observations
      the prior has almost no influence. Rescale the KPI, or raise them, for larger units.

    The prior state describes the step *before* the first observation; :meth:`step` predicts
    one step ahead and then updates with the observation.

    Example (by hand, with ``level_noise = trend_noise = obs_noise = 1`` and a unit prior
    at zero): a first observation y = 2 gives predicted covariance [[3, 1], [1, 2]],
    S = 4, K = [3/4, 1/4], so level 1.5 and trend 0.5.
    """

    level_noise: float = 1.0
    trend_noise: float = 0.01
    obs_noise: float = 1.0
    initial_level_var: float = 1e6
    initial_trend_var: float = 1e6

    def __post_init__(self) -> None:
        for name, low_closed in (
            ("level_noise", True),
            ("trend_noise", True),
            ("obs_noise", False),
            ("initial_level_var", False),
            ("initial_trend_var", False),
        ):
            # +inf is outside every interval here: an infinite variance turns the filter to NaN.
            value = check_real(
                getattr(self, name),
                name,
                _OWNER,
                low=0.0,
                high=math.inf,
                closed="left" if low_closed else "neither",
            )
            object.__setattr__(self, name, value)

    def initial_state(self, n_customers: int, first_level: ArrayLike | None = None) -> TrendState:
        """Prior for ``n_customers`` customers: mean ``[first_level, 0]`` (level 0 if None),
        covariance ``diag(initial_level_var, initial_trend_var)``; ``first_level`` is (n,)."""
        n = check_int(n_customers, "n_customers", _OWNER, low=0)
        mean = np.zeros((n, 2))
        if first_level is not None:
            mean[:, 0] = check_vector(first_level, "first_level", length=n)
        cov = np.zeros((n, 2, 2))
        cov[:, 0, 0] = self.initial_level_var
        cov[:, 1, 1] = self.initial_trend_var
        return TrendState(mean=mean, cov=cov)

    def step(self, state: TrendState, y: ArrayLike) -> TrendState:
        """One predict + update for every customer; ``y`` has shape (n,), NaN = missing.

        predict: ``a = F m``, ``P- = F P F' + Q``;
        update:  ``v = y - a[0]``, ``S = P-[0, 0] + H``, ``K = P-[:, 0] / S``,
                 ``m = a + K v``, ``P = (I - K Z) P- (I - K Z)' + H K K'`` (Joseph form).
        A missing ``y`` keeps ``(a, P-)``: the level moves by the trend and both variances grow.
        """
        state = self._check_state(state)
        observations = _check_observations(y, "y", ndim=1, rows=state.n_customers)
        mean, cov = _step(state.mean, state.cov, observations, self)
        return TrendState(mean=mean, cov=cov)

    def filter(self, Y: ArrayLike, state: TrendState | None = None) -> TrendPath:
        """Run :meth:`step` over the columns of ``Y`` (n_customers, n_steps), NaN = missing.

        Starts from ``state`` or, if None, from :meth:`initial_state`. Returns the filtered
        level, trend and their variances after every step, each (n_customers, n_steps).
        """
        rows = None if state is None else self._check_state(state).n_customers
        observations = _check_observations(Y, "Y", ndim=2, rows=rows)
        n, n_steps = observations.shape
        if state is None:
            state = self.initial_state(n)
        mean, cov = state.mean, state.cov
        # Time-major buffers: a contiguous row per step is cheaper to write than a strided
        # column of an (n, n_steps) array; one transpose at the end restores the layout.
        path = np.empty((4, n_steps, n))
        for t in range(n_steps):
            mean, cov = _step(mean, cov, observations[:, t], self)
            path[0, t], path[1, t] = mean[:, 0], mean[:, 1]
            path[2, t], path[3, t] = cov[:, 0, 0], cov[:, 1, 1]
        level, trend, level_var, trend_var = (np.ascontiguousarray(p.T) for p in path)
        return TrendPath(
            level=level,
            trend=trend,
            level_var=level_var,
            trend_var=trend_var,
            final=TrendState(mean=mean, cov=cov),
        )

    @staticmethod
    def _check_state(state: object) -> TrendState:
        if not isinstance(state, TrendState):
            raise BanditValueError(
                "state", f"'state' must be a TrendState; got {type(state).__name__}."
            )
        return state
