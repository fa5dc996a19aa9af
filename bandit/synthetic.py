"""A synthetic logistic bandit with known truth, for tests, benchmarks and the quick demo.

Contexts ``x ~ N(0, I_d)``; each level of each factor has hidden weights
``w ~ N(0, I_d) / sqrt(d * F)`` (``F`` factors; for one factor the usual ``N(0, I) / sqrt(d)``,
which keeps ``w . x`` of unit variance); the reward of action ``a`` is Bernoulli with
``p = sigmoid(sum_f w_{f, level_f(a)} . x)``. With ``drift_angle > 0`` every weight vector
rotates by ``drift_angle * t / horizon`` radians at round ``t`` in each of ``d // 2`` fixed,
mutually orthogonal random planes (a rotation of the whole space, not of one plane), so a
model trained early goes stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from bandit.space import DecisionSpace


@dataclass
class LogisticEnvironment:
    """Known-truth Bernoulli environment over a decision space."""

    space: DecisionSpace
    n_context: int
    seed: int = 0
    drift_angle: float = 0.0
    horizon: int = 20_000
    weights: np.ndarray = field(init=False, repr=False)
    _planes: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        n_levels = sum(self.space.factor_sizes)
        scale = np.sqrt(self.n_context * len(self.space.factor_sizes))
        self.weights = rng.standard_normal((n_levels, self.n_context)) / scale
        basis, _ = np.linalg.qr(rng.standard_normal((self.n_context, self.n_context)))
        half = self.n_context // 2
        self._planes = (basis[:, :half], basis[:, half : 2 * half])
        offsets = np.concatenate([[0], np.cumsum(self.space.factor_sizes)[:-1]])
        self._slots = self.space.level_index + offsets

    def contexts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` contexts, shape ``(n, d)``."""
        return rng.standard_normal((n, self.n_context))

    def weights_at(self, t: float) -> np.ndarray:
        """Level weights at round ``t`` after rotating by ``drift_angle * t / horizon``."""
        if not self.drift_angle:
            return self.weights
        angle = self.drift_angle * t / self.horizon
        u, v = self._planes
        along_u, along_v = self.weights @ u, self.weights @ v
        rotated_u = np.cos(angle) * along_u - np.sin(angle) * along_v
        rotated_v = np.sin(angle) * along_u + np.cos(angle) * along_v
        return self.weights + (rotated_u - along_u) @ u.T + (rotated_v - along_v) @ v.T

    def expected(self, X: np.ndarray, t: float = 0.0) -> np.ndarray:
        """True success probability of every action, shape ``(n, A)``."""
        level_logits = X @ self.weights_at(t).T
        return expit(level_logits[:, self._slots].sum(axis=2))

    def rewards(
        self, X: np.ndarray, actions: np.ndarray, rng: np.random.Generator, t: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bernoulli rewards and their true probabilities for chosen actions."""
        probability = self.expected(X, t)[np.arange(X.shape[0]), actions]
        return (rng.random(X.shape[0]) < probability).astype(np.float64), probability
