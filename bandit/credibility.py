"""Shrink per-level effects toward 0 by how far they stand out of their noise.

Two terms of :mod:`bandit.policies.lookahead_ts`'s value are per-level constants estimated
from data: the churn charge (:mod:`bandit.churn`) and the later contacts' change ``M g``.
Where no level does harm their true differences are 0, but the estimates are not, and a policy
that acts on them steers by noise: measured on the simulator without its mechanisms, the
plain churn charge cost 0.74 revenue per customer and ``M g`` about 0.05.

Each factor's levels are compared with each other (every action holds one level of each
factor, so a constant common to a factor's levels moves every action alike and changes no
choice): ``d_l = e_l - mean_{l' in f(l)} e_{l'}``, with variance ``v_l = (K C K^T)_{ll}`` for
the centring ``K`` and the estimates' covariance ``C``. Under the prior ``true d_l ~ N(0,
tau^2)`` the posterior mean is

    d_l' = d_l tau^2 / (tau^2 + v_l),
    tau^2 = max(0, mean_l (d_l^2 - v_l)),

with ``tau^2`` estimated from the levels themselves by moments (``E[d_l^2] = true d_l^2 +
v_l``), over the levels of factors with more than one level: the empirical Bayes estimator of
Efron & Morris (1973, "Stein's estimation rule and its competitors", JASA 68), the credibility
weight ``tau^2 / (tau^2 + v_l)`` of Buhlmann (1967). Where the levels' spread is no more than
their noise, ``tau^2 = 0`` and every effect is 0; where real effects dominate, they are kept
almost whole. Unlike a fixed threshold, it needs no tuning constant.
"""

from __future__ import annotations

import numpy as np

__all__ = ["centring", "credible_levels"]


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


def credible_levels(
    estimate: np.ndarray, covariance: np.ndarray, factor_sizes: tuple[int, ...]
) -> np.ndarray:
    """``(L,)``: the levels' estimates relative to their factor's mean, shrunk by their
    empirical Bayes credibility (module docstring).

    Args:
        estimate: ``(L,)`` one estimate per level, in factor order.
        covariance: ``(L, L)`` their covariance.
        factor_sizes: how many levels each factor has.
    """
    K = centring(factor_sizes)
    centred = K @ estimate
    variance = np.maximum(np.einsum("lk,km,lm->l", K, covariance, K), 0.0)
    compared = np.repeat(np.array(factor_sizes), factor_sizes) > 1
    if not compared.any():
        return np.zeros_like(centred)
    spread = max(0.0, float(np.mean(centred[compared] ** 2 - variance[compared])))
    if spread == 0.0:
        return np.zeros_like(centred)
    return centred * (spread / (spread + variance))
