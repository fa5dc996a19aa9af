"""A synthetic logistic bandit with known truth, for tests, benchmarks and the quick demo.

Contexts ``x ~ N(0, I_d)``; each level of each factor has hidden weights
``w ~ N(0, I_d) / sqrt(d * F)`` (``F`` factors; for one factor the usual ``N(0, I) / sqrt(d)``,
which keeps ``w . x`` of unit variance); the reward of action ``a`` is Bernoulli with
``p = sigmoid(sum_f w_{f, level_f(a)} . x)``. With ``drift_angle > 0`` every weight vector
rotates by ``drift_angle * t / horizon`` radians at round ``t`` in each of ``d // 2`` fixed,
mutually orthogonal random planes (a rotation of the whole space, not of one plane), so a
model trained early goes stale. ``drift`` shapes the angle over time: ``"linear"`` (the
above), ``"step"`` (no drift, then the whole ``drift_angle`` at once half way, an abrupt
change) or ``"periodic"`` (``drift_angle * sin(2 pi cycles t / horizon)``: the world swings
away and back ``cycles`` times).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from bandit.space import DecisionSpace

#: How the rotation angle moves over the horizon.
DRIFT_SHAPES = ("linear", "step", "periodic")


@dataclass
class LogisticEnvironment:
    """Known-truth Bernoulli environment over a decision space."""

    space: DecisionSpace
    n_context: int
    seed: int = 0
    drift_angle: float = 0.0
    horizon: int = 20_000
    drift: str = "linear"
    cycles: float = 2.0
    weights: np.ndarray = field(init=False, repr=False)
    _planes: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.drift not in DRIFT_SHAPES:
            raise ValueError(f"drift must be one of {DRIFT_SHAPES}; got {self.drift!r}")
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

    def angle_at(self, t: float) -> float:
        """The rotation angle at round ``t`` (radians), by the ``drift`` shape."""
        if self.drift == "step":
            return self.drift_angle if t >= self.horizon / 2 else 0.0
        if self.drift == "periodic":
            return self.drift_angle * float(np.sin(2 * np.pi * self.cycles * t / self.horizon))
        return self.drift_angle * t / self.horizon

    def weights_at(self, t: float) -> np.ndarray:
        """Level weights at round ``t`` after rotating by :meth:`angle_at`."""
        if not self.drift_angle:
            return self.weights
        angle = self.angle_at(t)
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
