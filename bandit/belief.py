"""Gaussian beliefs over a linear model's weights, in the two shapes worth distinguishing.

- :class:`JointBelief`: one mean ``(p,)`` and covariance ``(p, p)`` over the shared action
  features of a factored space, where actions sharing a level share weights (and uncertainty).
- :class:`BlockBelief`: one independent ``(w,)`` / ``(w, w)`` block per arm for a plain
  K-armed space (``phi(x, a) = e_a (x) z``). The joint covariance would be block-diagonal
  forever, so storing the blocks cuts the update from ``O(p^3)`` to ``O(K w^3)`` per batch and
  makes every score variance a ``w``-dimensional quadratic form.

Both offer the same operations to the policies: mean scores, score variances, Monte Carlo
draws of scores and Thompson choice probabilities (:mod:`bandit.montecarlo`), the linear
predictor of chosen actions, the incremental update of :mod:`bandit.linalg`, and the Kalman
predict step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from bandit.features import ActionFeatures
from bandit.linalg import diffuse, gaussian_update, stable_cholesky
from bandit.montecarlo import (
    MAX_DRAW_CELLS,
    independent_winner_frequencies,
)


class JointBelief:
    """``w ~ N(mean, cov)`` over all ``p`` action features."""

    #: Whether a large batch may draw its slot scores in weight space (:meth:`_slot_sampler`),
    #: where every row of the batch is scored by the same ``M`` weight vectors. A subclass
    #: whose draws hold a large term common to every row turns it off
    #: (:class:`bandit.policies.lookahead_ts.LookaheadBelief`).
    weight_space: bool = True

    def __init__(self, features: ActionFeatures, prior_variance: float) -> None:
        self.features = features
        p = features.n_features
        self.mean = np.zeros(p)
        self.cov = np.eye(p) * prior_variance

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        p = self.features.n_features
        return {"mean": (p,), "cov": (p, p)}

    def mean_scores(self, Z: np.ndarray) -> np.ndarray:
        """Posterior mean score of every action, ``(n, A)``."""
        return self.features.action_scores(self.features.slot_mean(Z, self.mean))

    def score_variance(self, Z: np.ndarray) -> np.ndarray:
        """Posterior variance of every action's score, ``(n, A)``."""
        return self.features.action_variance(self.features.slot_covariance(Z, self.cov))

    def draw_scores(
        self,
        Z: np.ndarray,
        n_samples: int,
        scale: float,
        rng: np.random.Generator,
        draw_scale: np.ndarray | None = None,
    ) -> np.ndarray:
        """``n_samples`` posterior draws of every action's score per row, ``(n, M, A)``.

        Row ``i``'s draw ``m`` has the law ``N(G_i mu, scale^2 G_i Sigma G_i^T)`` (times
        ``draw_scale[m]^2``, if given, on the deviation from the mean: a scale mixture, e.g.
        ``sigma`` drawn per draw under an unknown noise variance), and a row's draws are
        independent. The standard normals are shared by the rows of a batch (common random
        numbers, :mod:`bandit.montecarlo`), in one of two equivalent ways
        (:meth:`_slot_sampler`).
        """
        sampler = self._slot_sampler(Z.shape[0], n_samples, scale, rng, draw_scale)
        return self.features.action_scores(sampler(Z))

    def choice_probabilities(
        self,
        Z: np.ndarray,
        mask: np.ndarray,
        n_samples: int,
        scale: float,
        rng: np.random.Generator,
        draw_scale: np.ndarray | None = None,
    ) -> np.ndarray:
        """Share of :meth:`draw_scores` draws each eligible action wins, ``(n, A)``, computed
        in row chunks of at most ``MAX_DRAW_CELLS`` (row, draw, action) cells."""
        sampler = self._slot_sampler(Z.shape[0], n_samples, scale, rng, draw_scale)
        rows_per_chunk = max(1, MAX_DRAW_CELLS // (n_samples * self.features.space.n_actions))
        parts = []
        for start in range(0, Z.shape[0], rows_per_chunk):
            part = slice(start, start + rows_per_chunk)
            parts.append(self.features.winner_frequencies(sampler(Z[part]), mask[part]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def _slot_sampler(
        self,
        n_rows: int,
        n_samples: int,
        scale: float,
        rng: np.random.Generator,
        draw_scale: np.ndarray | None,
    ) -> Callable[[np.ndarray], np.ndarray]:
        """Slot-score draws ``(n, M, S)`` for any rows ``Z`` of a batch of ``n_rows``, from
        standard normals drawn once for the batch, in the cheaper of two spaces:

        - *Slot space*: ``eps`` ``(M, S)``; row ``i``'s draw is ``G_i mu + scale L_i eps_m``
          with ``L_i L_i^T = G_i Sigma G_i^T``. Each row pays its slot covariance and its
          factor, about ``p^2`` operations.
        - *Weight space*: ``w_m = mu + scale L eps_m`` with ``L L^T = Sigma`` and ``eps``
          ``(M, p)``; row ``i``'s draw is ``G_i w_m``, which has the same law. The batch pays
          one factor of ``Sigma`` and the ``M`` weight vectors (about ``p^3 / 3 + M p^2``),
          then each row only ``M p``.

        Weight space is taken when it costs less, ``n_rows > p / 3 + M``, and the belief
        allows it (:attr:`weight_space`).
        """
        p = self.features.n_features
        if self.weight_space and n_rows > p / 3 + n_samples:
            noise = _shared_noise(n_samples, p, rng, draw_scale)
            weights = self.mean + scale * (noise @ stable_cholesky(self.cov).T)
            return functools.partial(self._slots_from_weights, weights=weights)
        noise = _shared_noise(n_samples, self.features.n_slots, rng, draw_scale)
        return functools.partial(self._slots_from_noise, noise=noise, scale=scale)

    def _slots_from_noise(self, Z: np.ndarray, noise: np.ndarray, scale: float) -> np.ndarray:
        """``G_i mu + scale L_i noise_m``, ``(n, M, S)`` (slot space, :meth:`_slot_sampler`)."""
        mean, cov = self._slot_moments(Z)
        lower = stable_cholesky(cov) * scale
        return mean[:, None, :] + noise @ np.swapaxes(lower, 1, 2)

    def _slots_from_weights(self, Z: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``G_i w_m``, ``(n, M, S)`` (weight space, :meth:`_slot_sampler`)."""
        return self.features.slot_draws(Z, weights)

    def _slot_moments(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(n, S)`` and covariance ``(n, S, S)`` of the slot scores the draws follow:
        ``G mu`` and ``G Sigma G^T`` (a subclass may draw other linear maps of ``w``)."""
        return self.features.slot_mean(Z, self.mean), self.features.slot_covariance(Z, self.cov)

    def linear_predictor(self, Z: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return self.features.design(Z, actions) @ self.mean

    def update(
        self, Z: np.ndarray, actions: np.ndarray, curvature: np.ndarray, score: np.ndarray
    ) -> None:
        design = self.features.design(Z, actions)
        self.mean, self.cov = gaussian_update(self.mean, self.cov, design, curvature, score)

    def diffuse(self, process_noise: float, forgetting: float, steps: int) -> None:
        self.cov = diffuse(self.cov, process_noise, forgetting, steps)


class BlockBelief:
    """Independent ``N(mean[k], cov[k])`` per arm ``k`` for a one-factor space."""

    def __init__(self, n_arms: int, width: int, prior_variance: float) -> None:
        self.mean = np.zeros((n_arms, width))
        self.cov = np.broadcast_to(np.eye(width) * prior_variance, (n_arms, width, width)).copy()

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"mean": self.mean.shape, "cov": self.cov.shape}

    def mean_scores(self, Z: np.ndarray) -> np.ndarray:
        return Z @ self.mean.T

    def score_variance(self, Z: np.ndarray) -> np.ndarray:
        """``z^T cov[k] z`` for every row and arm, ``(n, K)``: one matrix product ``z^T cov[k]``
        for all arms at once, then per row a ``(K, w) @ (w,)`` product with ``z`` (a batched
        ``matmul``, cheaper than the equivalent ``einsum`` at these sizes)."""
        n_arms, width = self.mean.shape
        half = Z @ self.cov.transpose(1, 0, 2).reshape(width, n_arms * width)
        return (half.reshape(-1, n_arms, width) @ Z[:, :, None])[:, :, 0]

    def score_spread(self, Z: np.ndarray, scale: float) -> np.ndarray:
        """``scale`` times the posterior standard deviation of every arm's score, ``(n, K)``."""
        spread = np.maximum(self.score_variance(Z), 0.0)
        np.sqrt(spread, out=spread)
        spread *= scale
        return spread

    def draw_scores(
        self,
        Z: np.ndarray,
        n_samples: int,
        scale: float,
        rng: np.random.Generator,
        draw_scale: np.ndarray | None = None,
    ) -> np.ndarray:
        """As :meth:`JointBelief.draw_scores`, arm by arm: arms are independent, so row
        ``i``'s draw ``m`` is ``mean_i + spread_i * eps_m`` with ``eps`` (M, K) shared."""
        noise = _shared_noise(n_samples, self.mean.shape[0], rng, draw_scale)
        return self.mean_scores(Z)[:, None, :] + self.score_spread(Z, scale)[:, None, :] * noise

    def choice_probabilities(
        self,
        Z: np.ndarray,
        mask: np.ndarray,
        n_samples: int,
        scale: float,
        rng: np.random.Generator,
        draw_scale: np.ndarray | None = None,
    ) -> np.ndarray:
        """Share of :meth:`draw_scores` draws each eligible arm wins, ``(n, K)``; rows with a
        clear winner skip the comparison
        (:func:`bandit.montecarlo.independent_winner_frequencies`)."""
        noise = _shared_noise(n_samples, self.mean.shape[0], rng, draw_scale)
        return independent_winner_frequencies(
            self.mean_scores(Z), self.score_spread(Z, scale), noise, mask
        )

    def linear_predictor(self, Z: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return (Z * self.mean[actions]).sum(axis=1)

    def update(
        self, Z: np.ndarray, actions: np.ndarray, curvature: np.ndarray, score: np.ndarray
    ) -> None:
        """Per-arm version of :func:`bandit.linalg.gaussian_update`.

        One row: Sherman-Morrison on its arm's block. Several rows: per arm
        ``cov' = (I + cov H)^-1 cov`` with ``H = sum_i h_i z_i z_i^T`` over the arm's rows and
        ``mean' = mean + cov' sum_i g_i z_i``, batched over arms.
        """
        if Z.shape[0] == 1:
            arm = int(actions[0])
            mean, cov = gaussian_update(self.mean[arm], self.cov[arm], Z, curvature, score)
            self.mean[arm], self.cov[arm] = mean, cov
            return
        n_arms, width = self.mean.shape
        gain, gradient, arms = _arm_sums(Z, actions, curvature, score, n_arms)
        every_arm = arms.size == n_arms  # the usual case of a large batch: no gather, no scatter
        cov = self.cov if every_arm else self.cov[arms]
        system = cov @ gain
        system.reshape(arms.size, width * width)[:, :: width + 1] += 1.0  # the diagonals
        new_cov = np.linalg.solve(system, cov)
        new_cov += np.swapaxes(new_cov, 1, 2)
        new_cov *= 0.5
        step = (new_cov @ gradient[:, :, None])[:, :, 0]
        if every_arm:
            self.mean += step
            self.cov = new_cov
        else:
            self.mean[arms] += step
            self.cov[arms] = new_cov

    def diffuse(self, process_noise: float, forgetting: float, steps: int) -> None:
        self.cov = diffuse(self.cov, process_noise, forgetting, steps)


def _arm_sums(
    Z: np.ndarray, actions: np.ndarray, curvature: np.ndarray, score: np.ndarray, n_arms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per touched arm ``k``: ``H_k = sum_i h_i z_i z_i^T`` (k, w, w) and ``g_k = sum_i g_i z_i``
    (k, w) over the rows that chose it, and the touched arms (k,) in increasing order.

    Row ``i``'s context is placed in its arm's block of an otherwise zero ``(n, k w)`` matrix
    ``Y``; then ``Y^T (h * Z)`` stacks every ``H_k`` and ``Y^T g`` every ``g_k``, two matrix
    products instead of ``n`` outer products. Rows go in chunks of at most ``MAX_DRAW_CELLS``
    entries of ``Y``, so a batch over many arms stays bounded in memory.
    """
    n, width = Z.shape
    touched = np.bincount(actions, minlength=n_arms) > 0
    arms = np.flatnonzero(touched)
    slot = actions if arms.size == n_arms else (np.cumsum(touched) - 1)[actions]
    cells = arms.size * width
    rows_per_chunk = max(1, MAX_DRAW_CELLS // cells)
    sums = [
        _block_sums(Z[part], slot[part], curvature[part], score[part], arms.size)
        for part in (slice(start, start + rows_per_chunk) for start in range(0, n, rows_per_chunk))
    ]
    gain, gradient = sums[0]
    for more_gain, more_gradient in sums[1:]:
        gain += more_gain
        gradient += more_gradient
    return gain.reshape(arms.size, width, width), gradient.reshape(arms.size, width), arms


def _block_sums(
    Z: np.ndarray, slot: np.ndarray, curvature: np.ndarray, score: np.ndarray, n_blocks: int
) -> tuple[np.ndarray, np.ndarray]:
    """``Y^T (h * Z)`` (k w, w) and ``Y^T g`` (k w,) for the rows ``Z`` (n, w) of one chunk,
    row ``i`` in block ``slot[i]`` of ``Y`` (see :func:`_arm_sums`)."""
    n, width = Z.shape
    blocks = np.zeros((n, n_blocks, width))
    blocks[np.arange(n), slot] = Z
    flat = blocks.reshape(n, n_blocks * width).T
    return flat @ (Z * curvature[:, None]), flat @ score


def _shared_noise(
    n_samples: int, width: int, rng: np.random.Generator, draw_scale: np.ndarray | None
) -> np.ndarray:
    """Standard normals ``(M, width)`` shared by a batch's rows, each draw times its scale."""
    noise = rng.standard_normal((n_samples, width))
    if draw_scale is not None:
        noise *= draw_scale[:, None]
    return noise
