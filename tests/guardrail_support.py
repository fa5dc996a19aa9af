"""The guardrail interval written out independently of :mod:`bandit.guardrails`, for tests."""

from __future__ import annotations

import math

import numpy as np


def independent_interval(t: np.ndarray, h: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """:func:`bandit.guardrails.guarded_difference`'s docstring formula, written out again: V
    the larger of Welch's and the pooled variance of the difference, τ² tuned for 1000 per
    group (``r = 2 log(1/α) + log(1 + 2 log(1/α))``), then the normal-mixture radius
    ``√(V (V + τ²)/τ² · log((V + τ²)/(V α²)))``."""
    n_t, n_h = t.size, h.size
    v_t, v_h = t.var(ddof=1), h.var(ddof=1)
    pooled = np.concatenate([t, h]).var(ddof=1)
    v = max(v_t / n_t + v_h / n_h, pooled * (1 / n_t + 1 / n_h))
    log_inv = 2 * math.log(1 / alpha)
    tau2 = max(v_t + v_h, 2 * pooled) / 1000 * (log_inv + math.log1p(log_inv))
    radius = math.sqrt(v * (v + tau2) / tau2 * math.log((v + tau2) / (v * alpha**2)))
    d = t.mean() - h.mean()
    return float(d - radius), float(d + radius)
