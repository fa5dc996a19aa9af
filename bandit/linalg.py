"""Incremental Gaussian-belief updates as pure functions.

Every linear policy holds a Gaussian belief ``w ~ N(mu, Sigma)`` over its weights and folds in
a batch of design rows ``X`` (n, p) with per-row curvature ``h`` (n,) and score ``g`` (n,)
(the first and negative second derivative of the log-likelihood in the linear predictor):

    Sigma' = (Sigma^-1 + X^T diag(h) X)^-1
    mu'    = mu + Sigma' X^T g

For a Gaussian likelihood with noise variance ``s2``, ``h = 1/s2`` and ``g = (r - X mu)/s2``
and this is the exact conjugate (recursive least squares / Kalman measurement) update.
For a Bernoulli-logit likelihood, ``h = p(1 - p)`` and ``g = y - p`` with ``p = sigmoid(X mu)``
and it is one Newton step from the prior mode: the online Laplace approximation
(Chapelle & Li 2011, "An Empirical Evaluation of Thompson Sampling"; Spiegelhalter &
Lauritzen 1990).

``Sigma^-1`` is never formed. For ``n <= p`` the Woodbury identity gives
``Sigma' = Sigma - V V^T`` with ``V = Sigma X^T H^(1/2) L^-T``, ``L L^T = I + H^(1/2) X Sigma
X^T H^(1/2)`` (Sherman-Morrison when ``n = 1``); the subtraction of ``V V^T`` keeps the result
exactly symmetric. For ``n > p`` it solves ``(I + Sigma X^T H X) Sigma' = Sigma`` at ``O(p^3)``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_triangular


def gaussian_update(
    mean: np.ndarray,
    cov: np.ndarray,
    X: np.ndarray,
    curvature: np.ndarray,
    score: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(mu', Sigma')`` after folding in rows ``X`` with curvature and score.

    Shapes: mean (p,), cov (p, p), X (n, p), curvature (n,) >= 0, score (n,).
    """
    n, p = X.shape
    if n == 1:
        x = X[0]
        sx = cov @ x
        h = float(curvature[0])
        denominator = 1.0 + h * float(x @ sx)
        new_cov = cov - (sx[:, None] * sx) * (h / denominator)
        # Sigma' x = Sigma x / (1 + h x^T Sigma x): no second matrix-vector product needed.
        return mean + sx * (float(score[0]) / denominator), new_cov
    if n <= p:
        root = np.sqrt(curvature)
        scaled = X * root[:, None]
        sxt = cov @ scaled.T
        inner = scaled @ sxt
        inner[np.diag_indices(n)] += 1.0
        lower = np.linalg.cholesky(inner)
        v = solve_triangular(lower, sxt.T, lower=True).T
        new_cov = cov - v @ v.T
    else:
        precision_gain = (X * curvature[:, None]).T @ X
        system = np.eye(p) + cov @ precision_gain
        new_cov = np.linalg.solve(system, cov)
        new_cov = 0.5 * (new_cov + new_cov.T)
    return mean + new_cov @ (X.T @ score), new_cov


def diffuse(cov: np.ndarray, process_noise: float, forgetting: float, steps: int) -> np.ndarray:
    """Kalman predict step for a random-walk state over ``steps`` time steps.

    ``w_t = w_{t-1} + eta``, ``eta ~ N(0, q I)``: ``Sigma <- Sigma / gamma^steps + steps q I``.
    A forgetting factor ``gamma`` in (0, 1] is the exponential-forgetting form of the same idea
    (West & Harrison 1997, "Bayesian Forecasting and Dynamic Models", ch. 6, discount factors).
    Works on one ``(p, p)`` matrix or a stack ``(..., p, p)``.
    """
    out = np.divide(cov, forgetting**steps, order="C") if forgetting != 1.0 else cov.copy()
    if process_noise:
        # The diagonal as a strided view of the flattened (contiguous) matrices: every
        # (k + 1)-th entry, cheaper to form than einsum's diagonal view.
        k = out.shape[-1]
        out.reshape(-1, k * k)[:, :: k + 1] += steps * process_noise
    return out


def stable_cholesky(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of PSD matrices ``(..., k, k)``, with jitter if needed.

    Round-off can leave a covariance a hair from positive-definite; a jitter of ``1e-10`` times
    the mean diagonal (then growing) restores it without visibly changing the draws.
    """
    scale = np.maximum(np.mean(np.diagonal(cov, axis1=-2, axis2=-1), axis=-1), 1e-300)
    eye = np.eye(cov.shape[-1])
    jitter = 1e-10
    for _ in range(8):
        try:
            return np.linalg.cholesky(cov + (jitter * scale)[..., None, None] * eye)
        except np.linalg.LinAlgError:
            jitter *= 100.0
    symmetric = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    values, vectors = np.linalg.eigh(symmetric)
    return vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]


def log_det_gain(cov: np.ndarray, X: np.ndarray, curvature: np.ndarray) -> float:
    """``log det(Sigma) - log det(Sigma')`` for the update of :func:`gaussian_update`.

    By the matrix determinant lemma ``det(Sigma) / det(Sigma') = det(I_n + H^(1/2) X Sigma X^T
    H^(1/2)) = det(I_p + Sigma X^T H X)``; the first is taken when ``n <= p``, the second
    otherwise. It is the log-determinant term of the Gaussian predictive density of a batch,
    ``N(r; X mu, X Sigma X^T + H^-1)``, by which :mod:`bandit.policies.drift_ts` weighs its
    drift rates. Shapes: cov (p, p), X (n, p), curvature (n,) >= 0.
    """
    n, p = X.shape
    if n == 1:
        x = X[0]
        return math.log1p(float(curvature[0]) * float(x @ cov @ x))
    if n <= p:
        scaled = X * np.sqrt(curvature)[:, None]
        inner = scaled @ cov @ scaled.T
        inner[np.diag_indices(n)] += 1.0
    else:
        inner = np.eye(p) + cov @ ((X * curvature[:, None]).T @ X)
    return float(np.linalg.slogdet(inner)[1])


def block_log_det_gain(
    covs: np.ndarray, Z: np.ndarray, actions: np.ndarray, curvature: np.ndarray
) -> float:
    """:func:`log_det_gain` of a block-diagonal belief, one ``(w, w)`` block per arm.

    The determinant factorises over blocks: ``sum_k log det(I_w + Sigma_k Z_k^T H_k Z_k)``
    over the arms ``k`` the batch touches. Shapes: covs (K, w, w), Z (n, w), actions (n,).
    """
    if Z.shape[0] == 1:
        return log_det_gain(covs[int(actions[0])], Z, curvature)
    arms, inverse = np.unique(actions, return_inverse=True)
    width = Z.shape[1]
    outer = (Z[:, :, None] * Z[:, None, :]) * curvature[:, None, None]
    gain = np.zeros((arms.size, width, width))
    np.add.at(gain, inverse, outer)
    inner = np.eye(width) + covs[arms] @ gain
    return float(np.linalg.slogdet(inner)[1].sum())
