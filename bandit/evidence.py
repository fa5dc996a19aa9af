"""Evidence, valid at any number of looks, that a factor's levels differ in an effect.

:mod:`bandit.credibility` shrinks per-level effects by how far they stand out of their noise,
but acts on them from the first look: where no level does harm, the policy still steers by
what is left of the noise. A test of "no level differs from its factor's mean" that may be
repeated after every batch, without its false-alarm rate growing with the number of looks,
lets a policy ignore the effects until the data have shown them.

The effects' contrasts within each factor, ``y = Q^T e`` (``Q`` an orthonormal basis of the
within-factor contrasts, ``r = L - F`` columns for ``L`` levels in ``F`` factors of two or more
levels), are approximately ``N(delta, V)`` with ``V = Q^T C Q`` for the estimates' covariance
``C``. Against ``H0: delta = 0`` the mixture of alternatives ``delta ~ N(0, rho^2 I)`` has the
likelihood ratio

    Lambda = N(y; 0, V + rho^2 I) / N(y; 0, V)
    log Lambda = sum_i [ log(v_i / (v_i + rho^2)) + z_i^2 rho^2 / (v_i (v_i + rho^2)) ] / 2

over the eigenvalues ``v_i`` of ``V`` and the coordinates ``z = U^T y`` in its eigenbasis.
When the estimates are sums of independent Gaussian increments (a linear model's score, also
under an adaptive design), ``Lambda`` taken at every look is a nonnegative martingale under
``H0``, so by Ville's inequality ``P(sup_t Lambda_t >= 1 / alpha) <= alpha``: the method of
mixtures (Robbins 1970, "Statistical methods related to the law of the iterated logarithm",
Ann. Math. Statist. 41; for adaptively collected regression data Abbasi-Yadkori, Pal &
Szepesvari 2011, "Improved algorithms for linear stochastic bandits", NeurIPS, Theorem 1; the
mixture sequential probability ratio test of Johari, Pekelis & Walsh 2017, "Always valid
inference"). With a plug-in noise variance and a ridge prior the guarantee is approximate.

``rho`` is the size of difference the test is built to find soonest: a much smaller ``rho``
rewards differences too small to matter (and, from a misspecified model, its slow drift), a
much larger one waits for differences larger than the world has.
"""

from __future__ import annotations

import math

import numpy as np

from bandit.credibility import centring

__all__ = ["contrast_basis", "contrast_log_evidence", "evidence_threshold"]

#: Eigenvalues of ``V`` below this share of the largest are directions the data do not
#: inform (a ridge prior's floor); they are left out rather than divided by.
_RELATIVE_EIGEN_FLOOR = 1e-12


def contrast_basis(factor_sizes: tuple[int, ...]) -> np.ndarray:
    """``Q`` ``(L, L - F)``: an orthonormal basis of the within-factor contrasts (vectors that
    sum to 0 over each factor's levels), ``F`` the factors of two or more levels."""
    left, singular, _ = np.linalg.svd(centring(factor_sizes))
    return left[:, singular > 0.5]  # centring's singular values are 0 or 1


def contrast_log_evidence(
    estimate: np.ndarray, covariance: np.ndarray, factor_sizes: tuple[int, ...], scale: float
) -> float:
    """``log Lambda`` (module docstring) for "no level differs from its factor's mean".

    Args:
        estimate: ``(L,)`` one estimate per level, in factor order.
        covariance: ``(L, L)`` their covariance.
        factor_sizes: how many levels each factor has.
        scale: ``rho`` (> 0), the spread of the alternatives, in the estimates' units.

    Returns 0 (no evidence either way) where no factor has two levels or the data inform no
    contrast.
    """
    basis = contrast_basis(factor_sizes)
    if basis.shape[1] == 0:
        return 0.0
    contrasts = basis.T @ estimate
    variance, vectors = np.linalg.eigh(basis.T @ covariance @ basis)
    informed = variance > _RELATIVE_EIGEN_FLOOR * max(float(variance.max()), 0.0)
    if not informed.any():
        return 0.0
    v = variance[informed]
    z = vectors[:, informed].T @ contrasts
    rho2 = scale * scale
    return 0.5 * float(np.sum(np.log(v / (v + rho2)) + z * z * rho2 / (v * (v + rho2))))


def evidence_threshold(level: float, tests: int) -> float:
    """``log(tests / level)``: the bar ``log Lambda`` must reach for a false alarm rate of at
    most ``level`` over ``tests`` such tests (Bonferroni) and any number of looks."""
    return math.log(tests / level)
