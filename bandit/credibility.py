"""Shrink per-level effects to 0 unless they stand out of their noise.

Two terms of :mod:`bandit.policies.lookahead_ts`'s value are per-level constants estimated
from data: the churn charge (:mod:`bandit.churn`) and the later contacts' change ``M g``. Where
no level does harm their true differences are 0, but the estimates are not, and the policy
steers by that noise. Each factor's levels are compared with each other (every action holds
one level of each factor, so a constant common to a factor's levels moves every action alike
and changes no choice): ``d_l = e_l - mean_{l' in f(l)} e_{l'}``, with variance
``(K C K^T)_{ll}`` for the centring ``K`` and the estimates' covariance ``C``, and each is
soft-thresholded at ``z`` standard errors,

    d_l' = sign(d_l) max(|d_l| - z se(d_l), 0),

the lasso's shrinkage (Tibshirani 1996; Donoho & Johnstone 1994, soft thresholding of a
Gaussian estimate): an effect is kept, less its noise allowance, only where the data show it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["centring", "soft_threshold_levels"]


def centring(factor_sizes: tuple[int, ...]) -> np.ndarray:
    """``K`` ``(L, L)``: each level minus the mean of its factor's levels (levels in factor
    order, ``L = sum(factor_sizes)``)."""
    levels = sum(factor_sizes)
    K = np.eye(levels)
    start = 0
    for size in factor_sizes:
        K[start : start + size, start : start + size] -= 1.0 / size
        start += size
    return K


def soft_threshold_levels(
    estimate: np.ndarray, covariance: np.ndarray, factor_sizes: tuple[int, ...], z: float
) -> np.ndarray:
    """``(L,)``: the levels' estimates relative to their factor's mean, soft-thresholded at
    ``z`` standard errors (module docstring).

    Args:
        estimate: ``(L,)`` one estimate per level, in factor order.
        covariance: ``(L, L)`` their covariance.
        factor_sizes: how many levels each factor has.
        z: the threshold in standard errors (>= 0).
    """
    K = centring(factor_sizes)
    centred = K @ estimate
    variance = np.einsum("lk,km,lm->l", K, covariance, K)
    error = np.sqrt(np.maximum(variance, 0.0))
    return np.sign(centred) * np.maximum(np.abs(centred) - z * error, 0.0)
