"""Surrogate index: a long-term KPI predicted from short-term signals, with its uncertainty.

A decision's long-term effect (28-day revenue, retention at day 90) is known only when its
units mature, long after the learner needs it. Athey, Chetty, Imbens and Kang (2019), "The
Surrogate Index: Combining Short-Term Proxies to Estimate Long-Term Treatment Effects"
(NBER WP 26463), estimate it in two samples:

1. on *matured* units (an earlier cohort, or a historical sample), fit the conditional mean
   of the long-term outcome given the short-term signals ``s`` and pre-treatment covariates
   ``x``: ``h(s, x) = E[Y | s, x]``;
2. on *fresh* units, predict the index ``h(s_i, x_i)``; the mean index of a treated group
   minus that of its control estimates the long-term treatment effect, provided the
   surrogates capture every path from the treatment to ``Y`` (surrogacy) and the relation
   carries over from the matured sample (comparability).

Here ``h`` is linear, ``h(s, x) = z^T beta`` with ``z = [1, s, x]``, fitted by ridge
regression with an unpenalised intercept (``P = diag(0, 1, ..., 1)``)::

    A = G + ridge P,   G = sum_i z_i z_i^T,   m = sum_i z_i y_i,   beta = A^-1 m

solved through a Cholesky factor of ``A``. The fit needs only ``(n, G, m, sum y^2)``, sufficient
statistics that add up (:class:`SurrogateStats`), so matured units can arrive in batches and
a refit on the summed statistics equals a fit on all units at once. With homoscedastic noise,

    RSS    = sum y^2 - 2 beta^T m + beta^T G beta
    df     = tr(A^-1 G)                       (effective degrees of freedom of ridge; Hastie,
                                              Tibshirani & Friedman 2009, eq. 3.50)
    s2     = RSS / (n - df)
    Cov(beta) = s2 A^-1 G A^-1                (the ridge estimator's sampling covariance;
                                              Hoerl & Kennard 1970; s2 (Z^T Z)^-1 at ridge 0)

The mean index of a fresh group, ``zbar^T beta``, then has variance
``zbar^T Cov(beta) zbar + var_g(z^T beta) / n_g``: the fit's uncertainty plus the group's own
sampling spread, the two samples being independent (the plug-in two-sample variance; Athey
et al. 2019, sec. 5). For a treated-minus-control difference ``d = zbar_T - zbar_C`` the
intercept cancels and the variance is ``d^T Cov(beta) d + var_T / n_T + var_C / n_C``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import cho_factor, cho_solve

from bandit._validation import BanditValueError, check_int, check_matrix, check_real, check_vector

__all__ = [
    "IndexEstimate",
    "SurrogateIndex",
    "SurrogateStats",
    "fit_surrogate_index",
]

_OWNER = "SurrogateIndex"


def _design(surrogates: object, covariates: object | None, n_covariates: int | None) -> np.ndarray:
    """``z = [1, s, x]`` rows, ``(n, 1 + m + c)``."""
    S = check_matrix(surrogates, "surrogates")
    if covariates is None:
        if n_covariates:
            raise BanditValueError(
                "covariates", f"'covariates' must be given: the index uses {n_covariates}."
            )
        X = np.zeros((S.shape[0], 0))
    else:
        X = check_matrix(covariates, "covariates", n_columns=n_covariates)
        if X.shape[0] != S.shape[0]:
            raise BanditValueError(
                "covariates",
                f"'covariates' must have {S.shape[0]} rows, one per unit; got {X.shape[0]}.",
            )
    return np.concatenate([np.ones((S.shape[0], 1)), S, X], axis=1)


@dataclass(frozen=True, eq=False)
class SurrogateStats:
    """Sufficient statistics of matured units for the surrogate regression.

    ``n`` units, ``gram = sum z z^T`` (k, k), ``moment = sum z y`` (k,), ``sum_squares =
    sum y^2``, with ``z = [1, s (n_surrogates), x (n_covariates)]``. Statistics of disjoint
    batches add with ``+``; the sum is the statistics of the union.
    """

    n_surrogates: int
    n_covariates: int
    n: int
    gram: np.ndarray
    moment: np.ndarray
    sum_squares: float

    def __post_init__(self) -> None:
        m = check_int(self.n_surrogates, "n_surrogates", "SurrogateStats", low=1)
        c = check_int(self.n_covariates, "n_covariates", "SurrogateStats", low=0)
        k = 1 + m + c
        gram = check_matrix(self.gram, "gram", n_columns=k)
        if gram.shape != (k, k):
            raise BanditValueError("gram", f"'gram' must have shape ({k}, {k}); got {gram.shape}.")
        moment = check_vector(self.moment, "moment", length=k)
        object.__setattr__(self, "n_surrogates", m)
        object.__setattr__(self, "n_covariates", c)
        object.__setattr__(self, "n", check_int(self.n, "n", "SurrogateStats", low=0))
        object.__setattr__(self, "gram", gram.copy())
        object.__setattr__(self, "moment", moment.copy())
        object.__setattr__(
            self,
            "sum_squares",
            check_real(self.sum_squares, "sum_squares", "SurrogateStats", low=0.0),
        )
        for array in (self.gram, self.moment):
            array.flags.writeable = False

    @classmethod
    def empty(cls, n_surrogates: int, n_covariates: int = 0) -> SurrogateStats:
        k = 1 + int(n_surrogates) + int(n_covariates)
        return cls(n_surrogates, n_covariates, 0, np.zeros((k, k)), np.zeros(k), 0.0)

    @classmethod
    def from_units(
        cls, surrogates: ArrayLike, outcomes: ArrayLike, covariates: ArrayLike | None = None
    ) -> SurrogateStats:
        """Statistics of matured units: surrogates (n, m), long-term outcomes (n,), and
        optional pre-treatment covariates (n, c)."""
        S = check_matrix(surrogates, "surrogates")
        Z = _design(S, covariates, None)
        y = check_vector(outcomes, "outcomes", length=Z.shape[0])
        return cls(
            n_surrogates=S.shape[1],
            n_covariates=Z.shape[1] - 1 - S.shape[1],
            n=Z.shape[0],
            gram=Z.T @ Z,
            moment=Z.T @ y,
            sum_squares=float(y @ y),
        )

    def __add__(self, other: object) -> SurrogateStats:
        if not isinstance(other, SurrogateStats):
            return NotImplemented
        if (other.n_surrogates, other.n_covariates) != (self.n_surrogates, self.n_covariates):
            raise BanditValueError(
                "stats",
                f"Cannot add statistics of {other.n_surrogates} surrogates and "
                f"{other.n_covariates} covariates to statistics of {self.n_surrogates} and "
                f"{self.n_covariates}.",
            )
        return SurrogateStats(
            self.n_surrogates,
            self.n_covariates,
            self.n + other.n,
            self.gram + other.gram,
            self.moment + other.moment,
            self.sum_squares + other.sum_squares,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays: ``n`` and the layout as int64 scalars, the sums as float64."""
        return {
            "n_surrogates": np.array(self.n_surrogates, dtype=np.int64),
            "n_covariates": np.array(self.n_covariates, dtype=np.int64),
            "n": np.array(self.n, dtype=np.int64),
            "gram": self.gram.copy(),
            "moment": self.moment.copy(),
            "sum_squares": np.array(self.sum_squares),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, ArrayLike]) -> SurrogateStats:
        """Inverse of :meth:`to_arrays`; the round trip is exact."""
        keys = ("n_surrogates", "n_covariates", "n", "gram", "moment", "sum_squares")
        for key in keys:
            if key not in arrays:
                raise BanditValueError(key, f"'{key}' is missing from the arrays.")
        scalars = {
            key: np.asarray(arrays[key]).item() for key in keys if key not in ("gram", "moment")
        }
        return cls(gram=np.asarray(arrays["gram"]), moment=np.asarray(arrays["moment"]), **scalars)


@dataclass(frozen=True)
class IndexEstimate:
    """A mean index (or a difference of two), its standard error and a normal interval.

    ``stderr**2 = model_stderr**2 + sampling_stderr**2``: the fitted coefficients'
    uncertainty and the fresh group's own sampling spread.
    """

    estimate: float
    stderr: float
    ci: tuple[float, float]
    model_stderr: float
    sampling_stderr: float
    confidence: float


@dataclass(frozen=True, eq=False)
class SurrogateIndex:
    """A fitted surrogate index ``h(s, x) = [1, s, x] . coef`` (module docstring).

    ``coef`` (k,) is ``[intercept, surrogate coefficients, covariate coefficients]``,
    ``coef_cov`` (k, k) its sampling covariance, ``residual_variance`` the ``s2`` it uses.
    """

    coef: np.ndarray
    coef_cov: np.ndarray
    residual_variance: float
    n_units: int
    n_surrogates: int
    n_covariates: int
    ridge: float

    def predict(self, surrogates: ArrayLike, covariates: ArrayLike | None = None) -> np.ndarray:
        """The index of fresh units, ``(n,)``: surrogates (n, m), covariates (n, c)."""
        return self._design(surrogates, covariates) @ self.coef

    def mean_index(
        self,
        surrogates: ArrayLike,
        covariates: ArrayLike | None = None,
        *,
        confidence: float = 0.95,
    ) -> IndexEstimate:
        """Mean index of one fresh group (>= 2 units) with its standard error."""
        Z = self._design(surrogates, covariates)
        return self._estimate(Z.mean(axis=0), [Z], confidence)

    def effect(
        self,
        treated_surrogates: ArrayLike,
        control_surrogates: ArrayLike,
        treated_covariates: ArrayLike | None = None,
        control_covariates: ArrayLike | None = None,
        *,
        confidence: float = 0.95,
    ) -> IndexEstimate:
        """Treated mean index minus control mean index: the long-term effect under surrogacy."""
        treated = self._design(treated_surrogates, treated_covariates)
        control = self._design(control_surrogates, control_covariates)
        difference = treated.mean(axis=0) - control.mean(axis=0)
        return self._estimate(difference, [treated, control], confidence)

    def _design(self, surrogates: object, covariates: object | None) -> np.ndarray:
        Z = _design(surrogates, covariates, self.n_covariates)
        if Z.shape[1] != self.coef.shape[0]:
            raise BanditValueError(
                "surrogates",
                f"'surrogates' must have {self.n_surrogates} columns; "
                f"got {Z.shape[1] - 1 - self.n_covariates}.",
            )
        return Z

    def _estimate(
        self, direction: np.ndarray, groups: list[np.ndarray], confidence: float
    ) -> IndexEstimate:
        level = check_real(confidence, "confidence", _OWNER, low=0.0, high=1.0, closed="neither")
        sampling_variance = 0.0
        for Z in groups:
            if Z.shape[0] < 2:
                raise BanditValueError(
                    "surrogates", "Each group needs at least 2 units for its sampling variance."
                )
            sampling_variance += float(np.var(Z @ self.coef, ddof=1)) / Z.shape[0]
        model_variance = float(max(direction @ self.coef_cov @ direction, 0.0))
        stderr = float(np.sqrt(model_variance + sampling_variance))
        estimate = float(direction @ self.coef)
        half = NormalDist().inv_cdf(0.5 + level / 2.0) * stderr
        return IndexEstimate(
            estimate=estimate,
            stderr=stderr,
            ci=(estimate - half, estimate + half),
            model_stderr=float(np.sqrt(model_variance)),
            sampling_stderr=float(np.sqrt(sampling_variance)),
            confidence=level,
        )


def fit_surrogate_index(stats: SurrogateStats, *, ridge: float = 1.0) -> SurrogateIndex:
    """Ridge fit of the long-term outcome on ``[1, s, x]`` from sufficient statistics.

    ``beta = (G + ridge P)^-1 m`` through a Cholesky factor, ``s2 = RSS / (n - tr(A^-1 G))``,
    ``Cov(beta) = s2 A^-1 G A^-1`` (module docstring). Needs more units than the effective
    degrees of freedom (at ``ridge = 0``: more units than coefficients).
    """
    if not isinstance(stats, SurrogateStats):
        raise BanditValueError(
            "stats", f"'stats' must be a SurrogateStats; got {type(stats).__name__}."
        )
    penalty = check_real(ridge, "ridge", _OWNER, low=0.0)
    k = stats.gram.shape[0]
    A = stats.gram.copy()
    A[np.arange(1, k), np.arange(1, k)] += penalty
    try:
        factor = cho_factor(A, lower=True)
    except np.linalg.LinAlgError:
        raise BanditValueError(
            "stats",
            "The surrogate regression is singular: too few matured units or collinear "
            "surrogates; add units or use ridge > 0.",
        ) from None
    coef = cho_solve(factor, stats.moment)
    hat = cho_solve(factor, stats.gram)  # A^-1 G
    dof = float(np.trace(hat))
    residual_dof = stats.n - dof
    if residual_dof <= 1e-9 * max(stats.n, 1):
        raise BanditValueError(
            "stats",
            f"The surrogate regression needs more matured units ({stats.n}) than its effective "
            f"degrees of freedom ({dof:.3g}).",
        )
    rss = stats.sum_squares - 2.0 * coef @ stats.moment + coef @ stats.gram @ coef
    residual_variance = max(float(rss), 0.0) / residual_dof
    # A^-1 G A^-1 = A^-1 (A^-1 G)^T, as A and G are symmetric; symmetrised against rounding.
    sandwich = cho_solve(factor, hat.T)
    coef_cov = residual_variance * 0.5 * (sandwich + sandwich.T)
    return SurrogateIndex(
        coef=coef,
        coef_cov=coef_cov,
        residual_variance=residual_variance,
        n_units=stats.n,
        n_surrogates=stats.n_surrogates,
        n_covariates=stats.n_covariates,
        ridge=penalty,
    )
