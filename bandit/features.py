"""Action features that let a linear model share strength across actions with common levels.

The feature vector of action ``a`` in context ``x`` is, with ``z = [1, x]``
(Vowpal Wabbit's ``-q`` crossing of shared and action-dependent features)::

    phi(x, a) = sum_f  e_{slot_f(a)} (x) z        one-hot per factor level, crossed with z
              + sum_{f<g} e_{pair_fg(a)}          optional factor-pair interaction biases

so a 10 x 5 x 4 x 6 space (1,200 actions) with 20 context features needs
(10+5+4+6) x 21 = 525 weights instead of 1,200 x 21 for separate per-arm models.

Every linear policy scores actions through *slots*: the score of a level (or level pair) is
``s_k = w_k . z`` and an action's score is the sum of the slot scores it touches. Under a
Gaussian belief ``w ~ N(mu, Sigma)`` the slot scores are jointly Gaussian with mean ``G mu``
and covariance ``G Sigma G^T`` (``G = blockdiag(z^T)``), an ``S x S`` matrix with ``S`` the
number of slots (25 here): sampling, upper confidence bounds and propensities then cost
``O(p^2 + A S)`` per context instead of ``O(A p^2)``.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from bandit.montecarlo import factored_winner_frequencies, winner_frequencies
from bandit.space import DecisionSpace


class ActionFeatures:
    """Slot structure and design rows for one decision space and context width.

    Args:
        space: the decision space.
        n_context: width of the raw context vector ``x``.
        fit_intercept: prepend a constant 1 to ``x`` (linear policies need it: every level
            then has its own base rate).
        interactions: add one bias weight per combination of levels of every factor pair.
    """

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        fit_intercept: bool = True,
        interactions: bool = False,
    ) -> None:
        self.space = space
        self.n_context = n_context
        self.fit_intercept = fit_intercept
        self.interactions = interactions
        self.width = n_context + int(fit_intercept)
        sizes = np.array(space.factor_sizes, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        #: (A, F) context-crossed slot of each factor for every action.
        self.context_slots = space.level_index + offsets
        self.n_context_slots = int(sizes.sum())
        bias: list[np.ndarray] = []
        start = 0
        if interactions:
            for first, second in combinations(range(len(sizes)), 2):
                codes = space.level_index[:, first] * sizes[second] + space.level_index[:, second]
                bias.append(start + codes)
                start += int(sizes[first] * sizes[second])
        #: (A, P) pair-bias slot of each factor pair for every action (P may be 0).
        self.bias_slots = (
            np.stack(bias, axis=1) if bias else np.zeros((space.n_actions, 0), dtype=np.int64)
        )
        self.n_bias_slots = start
        self.n_slots = self.n_context_slots + self.n_bias_slots
        #: (A, J) every slot an action touches, bias slots shifted after the context slots.
        self.action_slots = np.concatenate(
            [self.context_slots, self.bias_slots + self.n_context_slots], axis=1
        )
        self.n_crossed = self.n_context_slots * self.width
        self.n_features = self.n_crossed + self.n_bias_slots
        #: (S, A) incidence: which slots make up each action.
        incidence = np.zeros((self.n_slots, space.n_actions))
        for column in range(self.action_slots.shape[1]):
            incidence[self.action_slots[:, column], np.arange(space.n_actions)] += 1.0
        self.incidence = incidence
        self.single_slot = self.action_slots.shape[1] == 1

    def augment(self, X: np.ndarray) -> np.ndarray:
        """Contexts ``(n, d)`` -> ``z`` of shape ``(n, width)``."""
        if not self.fit_intercept:
            return X
        Z = np.empty((X.shape[0], self.width))
        Z[:, 0] = 1.0
        Z[:, 1:] = X
        return Z

    def design(self, Z: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Design rows ``phi(x_i, a_i)`` of shape ``(n, n_features)`` for chosen actions."""
        n = Z.shape[0]
        rows = np.zeros((n, self.n_features))
        crossed = rows[:, : self.n_crossed].reshape(n, self.n_context_slots, self.width)
        index = np.arange(n)
        for column in range(self.context_slots.shape[1]):
            crossed[index, self.context_slots[actions, column]] += Z
        for column in range(self.bias_slots.shape[1]):
            rows[index, self.n_crossed + self.bias_slots[actions, column]] += 1.0
        return rows

    def slot_mean(self, Z: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Mean slot scores ``G mu``, shape ``(n, S)``."""
        weights = mean[: self.n_crossed].reshape(self.n_context_slots, self.width)
        crossed = Z @ weights.T
        if not self.n_bias_slots:
            return crossed
        bias = np.broadcast_to(mean[self.n_crossed :], (Z.shape[0], self.n_bias_slots))
        return np.concatenate([crossed, bias], axis=1)

    def slot_draws(self, Z: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Slot scores ``G_i w_m`` of every row under every weight vector, ``(n, M, S)``.

        ``weights`` is ``(M, p)``; one matrix product ``Z (M S_c, width)^T`` covers the crossed
        slots of all draws, and the bias slots are the draws' own bias weights.
        """
        n, draws = Z.shape[0], weights.shape[0]
        crossed_weights = weights[:, : self.n_crossed].reshape(
            draws * self.n_context_slots, self.width
        )
        crossed = (Z @ crossed_weights.T).reshape(n, draws, self.n_context_slots)
        if not self.n_bias_slots:
            return crossed
        bias = np.broadcast_to(weights[:, self.n_crossed :], (n, draws, self.n_bias_slots))
        return np.concatenate([crossed, bias], axis=2)

    def slot_covariance(self, Z: np.ndarray, cov: np.ndarray) -> np.ndarray:
        """Slot score covariances ``G Sigma G^T``, shape ``(n, S, S)``.

        With ``Sigma_cc`` viewed as ``(L, w, L, w)``, the crossed block is
        ``C[n, s, t] = z_n^T Sigma[s, :, t, :] z_n``: one matrix product over the batch.
        """
        n, width, slots = Z.shape[0], self.width, self.n_context_slots
        crossed_cov = cov[: self.n_crossed, : self.n_crossed]
        half = (crossed_cov.reshape(self.n_crossed * slots, width) @ Z.T).reshape(
            slots, width, slots, n
        )
        block = np.einsum("sjtn,nj->nst", half, Z)
        if not self.n_bias_slots:
            return block
        cross = np.einsum(
            "sjb,nj->nsb", cov[: self.n_crossed, self.n_crossed :].reshape(slots, width, -1), Z
        )
        bias = np.broadcast_to(
            cov[self.n_crossed :, self.n_crossed :], (n, self.n_bias_slots, self.n_bias_slots)
        )
        top = np.concatenate([block, cross], axis=2)
        bottom = np.concatenate([cross.transpose(0, 2, 1), bias], axis=2)
        return np.concatenate([top, bottom], axis=1)

    def winner_frequencies(self, slot_draws: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """How often each eligible action wins across the draws of its slot scores,
        ``(n, M, S)`` -> ``(n, A)``; with one slot per level and no pair biases, without
        scoring every action (:func:`bandit.montecarlo.factored_winner_frequencies`)."""
        if self.n_bias_slots or self.single_slot:
            return winner_frequencies(self.action_scores(slot_draws), mask)
        return factored_winner_frequencies(slot_draws, mask, self.space, self.incidence)

    def action_scores(self, slot_values: np.ndarray) -> np.ndarray:
        """Slot values ``(..., S)`` -> action scores ``(..., A)`` (sum of an action's slots)."""
        if self.single_slot:
            return slot_values[..., self.action_slots[:, 0]]
        return slot_values @ self.incidence

    def action_variance(self, slot_cov: np.ndarray) -> np.ndarray:
        """Variance of each action's score, ``e_a^T C e_a``, shape ``(n, A)``."""
        if self.single_slot:
            diagonal = np.diagonal(slot_cov, axis1=1, axis2=2)
            return diagonal[:, self.action_slots[:, 0]]
        mixed = slot_cov @ self.incidence
        return np.einsum("nsa,sa->na", mixed, self.incidence)
