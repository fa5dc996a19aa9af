"""A value-function policy: a linear Q(s, a) fitted by fitted Q-iteration, Thompson-sampled.

A per-decision reward cannot see that a fatiguing message lowers what the customer does in
the following weeks. Fitted Q-iteration (Ernst, Geurts & Wehenkel 2005, "Tree-Based Batch
Mode Reinforcement Learning", JMLR 6; Riedmiller 2005, "Neural Fitted Q Iteration") credits
it through the value of the customer's next state. With the linear model of the other
policies, ``Q(s, a) = phi(s, a) . w`` over :class:`~bandit.features.ActionFeatures` (the
state ``s`` is the context, e.g. :func:`bandit.contact_state.state_features`), one iteration
on transitions ``(s_i, a_i, r_i, s'_i, done_i)`` is

    y_i   = r_i + gamma (1 - done_i) max_{a' eligible at s'_i} phi(s'_i, a') . w_k
    w_k+1 = (ridge s2 I + Phi^T Phi)^-1 Phi^T y                    (ridge regression)

with the Gram matrix ``Phi^T Phi`` fixed across iterations, so it is factored once (Cholesky)
per update and each iteration is two triangular solves. The posterior of the last regression,
``w ~ N(w_K, (ridge I + Phi^T Phi / s2)^-1)``, treats the targets as observations with noise
``s2``; choices are Thompson draws from it exactly as in linear Thompson sampling, so the
logged propensity is the probability of the choice (randomised value functions: Osband, Van
Roy & Wen 2016, "Generalization and Exploration via Randomized Value Functions").

Where the rows live:

- terminal rows (``done``, every row of the plain :meth:`update`, every row when
  ``gamma = 0``) have targets ``r`` that no iteration changes: they enter the sufficient
  statistics ``gram`` and ``moment`` and are not kept. With only such rows the policy is
  exactly the ridge regression of linear Thompson sampling.
- non-terminal transitions are kept, newest last, in a buffer of ``memory`` rows, and their
  targets are recomputed from the current ``w`` in every iteration of every update. When the
  buffer overflows, the oldest rows leave it with their targets frozen at the published ``w``
  (their design stays in ``gram``, their ``Phi^T y`` joins ``moment``).

Every update ends with ``n_iterations`` iterations started from the current ``w``.

Not importance-weighted: the target ``r + gamma max_a' Q(s', a')`` is the Bellman optimality
backup, which does not depend on the logging policy, so fitted Q is off-policy as it stands
(Sutton & Barto 2018, sec. 6.5 and 11.1). Weighting rows by ``1 / propensity`` would only
re-weight the regression towards rarely chosen actions, which changes the fit only where the
linear model is misspecified, and with propensities down to ``floor / |eligible|``
(1/7,500 at 75 actions and a 1% floor) it would multiply the variance and make the Gaussian
posterior that Thompson sampling draws from overconfident (a weight acts as repeated rows).
Propensities are validated and not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Unpack

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from bandit._validation import (
    BanditValueError,
    check_actions,
    check_int,
    check_matrix,
    check_propensities,
    check_real,
    check_vector,
)
from bandit.belief import JointBelief
from bandit.features import ActionFeatures
from bandit.montecarlo import MAX_DRAW_CELLS
from bandit.policies.linear import ThompsonLinearOptions, ThompsonLinearPolicy
from bandit.space import DecisionSpace

__all__ = ["FittedQPolicy", "bellman_targets", "design_gram", "design_moment"]


def bellman_targets(
    rewards: np.ndarray, next_scores: np.ndarray, next_mask: np.ndarray, gamma: float
) -> np.ndarray:
    """``y = r + gamma max_{a' : mask} Q(s', a')`` per row; rewards (n,), scores and mask (n, A).

    Rows are non-terminal; every row of the mask needs an eligible action.
    """
    best = np.where(next_mask, next_scores, -np.inf).max(axis=1)
    return rewards + gamma * best


def _row_chunks(features: ActionFeatures, n: int) -> list[slice]:
    """Row ranges whose design rows hold at most ``MAX_DRAW_CELLS`` numbers."""
    rows = max(1, MAX_DRAW_CELLS // max(features.n_features, 1))
    return [slice(start, start + rows) for start in range(0, n, rows)]


def design_moment(
    features: ActionFeatures, Z: np.ndarray, actions: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """``Phi^T y`` for design rows ``phi(x_i, a_i)``: Z (n, width), actions (n,), y (n,)."""
    total = np.zeros(features.n_features)
    for part in _row_chunks(features, Z.shape[0]):
        total += features.design(Z[part], actions[part]).T @ targets[part]
    return total


def design_gram(features: ActionFeatures, Z: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``Phi^T Phi`` for design rows ``phi(x_i, a_i)``, ``(p, p)``."""
    total = np.zeros((features.n_features, features.n_features))
    for part in _row_chunks(features, Z.shape[0]):
        design = features.design(Z[part], actions[part])
        total += design.T @ design
    return total


def _check_done(value: object, n: int) -> np.ndarray:
    done = np.asarray(value)
    if done.ndim != 1 or done.shape[0] != n:
        raise BanditValueError(
            "done", f"'done' must be a 1-D array of length {n}; got shape {done.shape}."
        )
    if done.dtype == np.bool_:
        return done
    numbers = check_vector(done, "done", length=n)
    if not np.isin(numbers, (0.0, 1.0)).all():
        raise BanditValueError("done", "'done' must hold booleans or 0/1.")
    return numbers == 1.0


class FittedQPolicy(ThompsonLinearPolicy):
    """Thompson sampling on a linear Q-function fitted by fitted Q-iteration (module docstring).

    :meth:`update` treats each row as terminal (the ridge regression of ``linear_ts``);
    :meth:`update_transitions` takes ``(s, a, r, s', done)`` and carries the value of the next
    state. :meth:`expected_rewards` returns the posterior mean of ``Q(s, a)``, reward now plus
    discounted value after.

    Args:
        gamma: discount per decision, in [0, 1); 0 makes every row terminal.
        n_iterations: fitted-Q iterations per update (>= 1).
        memory: non-terminal transitions kept for re-fitting (>= 1); older ones are frozen.
        ridge, noise_variance, fit_intercept, interactions, scale, n_samples: as in
            linear Thompson sampling; ``noise_variance`` must be a number.
    """

    name = "fitted_q"
    default_noise_variance = 1.0

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        gamma: float = 0.9,
        n_iterations: int = 10,
        memory: int = 2048,
        **kwargs: Unpack[ThompsonLinearOptions],
    ) -> None:
        super().__init__(space, n_context, **kwargs)
        owner = type(self).__name__
        if self.learns_noise:
            raise BanditValueError(
                "noise_variance",
                f"The 'noise_variance' parameter of {owner} must be a float in (0, inf); "
                "'auto' is not supported for fitted Q.",
            )
        self.gamma = check_real(gamma, "gamma", owner, low=0.0, high=1.0, closed="left")
        self.n_iterations = check_int(n_iterations, "n_iterations", owner, low=1)
        self.memory = check_int(memory, "memory", owner, low=1)
        # One joint belief for every space: the fit is a joint ridge solve.
        self.belief_ = JointBelief(self.features, 1.0 / self.ridge)
        p, d, m = self.features.n_features, n_context, self.memory
        self.gram_ = np.zeros((p, p))
        self.moment_ = np.zeros(p)
        self.buffer_X_ = np.zeros((m, d))
        self.buffer_actions_ = np.zeros(m)
        self.buffer_rewards_ = np.zeros(m)
        self.buffer_next_X_ = np.zeros((m, d))
        self.buffer_next_mask_ = np.zeros((m, self.n_actions))
        self.n_buffered_ = np.array(0.0)

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        p, d, m = self.features.n_features, self.n_context, self.memory
        return {
            **self.belief_.state_shapes(),
            "gram": (p, p),
            "moment": (p,),
            "buffer_X": (m, d),
            "buffer_actions": (m,),
            "buffer_rewards": (m,),
            "buffer_next_X": (m, d),
            "buffer_next_mask": (m, self.n_actions),
            "n_buffered": (),
        }

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """As :meth:`Policy.set_state`, also checking the buffer's row count."""
        if isinstance(state, Mapping) and "n_buffered" in state:
            count = np.asarray(state["n_buffered"], dtype=np.float64)
            # Shape and finiteness are the base class's to report.
            valid = count.shape != () or not np.isfinite(count)
            if not valid and not (float(count).is_integer() and 0 <= count <= self.memory):
                raise BanditValueError(
                    "state.n_buffered",
                    f"'state.n_buffered' must be an integer in [0, {self.memory}].",
                )
        super().set_state(state)

    # ----------------------------------------------------------------- learning
    def update_transitions(
        self,
        X: object,
        actions: object,
        rewards: object,
        propensities: object | None,
        X_next: object,
        done: object,
        next_mask: object | None = None,
    ) -> None:
        """Learn from transitions: states ``X`` (n, d), actions (n,), rewards (n,),
        propensities (n,) or None, next states ``X_next`` (n, d), ``done`` (n,) bool or 0/1,
        and the actions eligible at the next state ``next_mask`` (n, A) (default: all allowed
        by the space). A non-terminal row needs an eligible next action; a terminal row's
        ``X_next`` and mask are ignored."""
        contexts = check_matrix(X, "X", n_columns=self.n_context)
        n = contexts.shape[0]
        chosen = check_actions(actions, n, self.n_actions)
        observed = check_vector(rewards, "rewards", length=n)
        check_propensities(propensities, n)
        following = check_matrix(X_next, "X_next", n_columns=self.n_context)
        if following.shape[0] != n:
            raise BanditValueError(
                "X_next", f"'X_next' must have {n} rows; got shape {following.shape}."
            )
        terminal = _check_done(done, n)
        eligible = self._check_next_mask(next_mask, n, terminal)
        if n == 0:
            return
        self._fold(contexts, chosen, observed, following, terminal, eligible)
        self.n_updates_ += n

    def _check_next_mask(self, value: object | None, n: int, terminal: np.ndarray) -> np.ndarray:
        if value is None:
            return np.broadcast_to(self.space.allowed, (n, self.n_actions)).copy()
        mask = np.asarray(value)
        if mask.dtype != np.bool_ or mask.shape != (n, self.n_actions):
            raise BanditValueError(
                "next_mask",
                f"'next_mask' must be a boolean array of shape ({n}, {self.n_actions}); "
                f"got {mask.dtype} {mask.shape}.",
            )
        combined = mask & self.space.allowed
        empty = np.flatnonzero(~terminal & ~combined.any(axis=1))
        if empty.size:
            raise BanditValueError(
                "next_mask",
                f"'next_mask' row {int(empty[0])} has no eligible action at a non-terminal "
                "next state.",
            )
        return combined

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        n = X.shape[0]
        terminal = np.ones(n, dtype=bool)
        self._fold(X, actions, rewards, X, terminal, np.zeros((n, self.n_actions), dtype=bool))

    def _fold(
        self,
        X: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        X_next: np.ndarray,
        terminal: np.ndarray,
        next_mask: np.ndarray,
    ) -> None:
        """Add rows to the statistics and the buffer, iterate, evict, publish the posterior."""
        Z = self.features.augment(X)
        fixed = terminal | (self.gamma == 0.0)
        self.gram_ += design_gram(self.features, Z, actions)
        self.moment_ += design_moment(self.features, Z[fixed], actions[fixed], rewards[fixed])
        keep = ~fixed
        count = int(self.n_buffered_)
        buffer = {
            "X": np.concatenate([self.buffer_X_[:count], X[keep]]),
            "actions": np.concatenate([self.buffer_actions_[:count], actions[keep]]).astype(
                np.int64
            ),
            "rewards": np.concatenate([self.buffer_rewards_[:count], rewards[keep]]),
            "next_X": np.concatenate([self.buffer_next_X_[:count], X_next[keep]]),
            "next_mask": np.concatenate([self.buffer_next_mask_[:count] > 0.5, next_mask[keep]]),
        }
        p = self.features.n_features
        system = self.gram_.copy()
        system[np.diag_indices(p)] += self.ridge * float(self.noise_variance)
        factor = cho_factor(system, lower=True)
        mean = self.mean_
        iterations = self.n_iterations if buffer["rewards"].size else 1
        for _ in range(iterations):
            targets = self._targets(buffer, mean)
            total = self.moment_ + design_moment(
                self.features, self.features.augment(buffer["X"]), buffer["actions"], targets
            )
            mean = cho_solve(factor, total)
        overflow = max(0, buffer["rewards"].size - self.memory)
        if overflow:
            old = {key: value[:overflow] for key, value in buffer.items()}
            self.moment_ += design_moment(
                self.features,
                self.features.augment(old["X"]),
                old["actions"],
                self._targets(old, mean),
            )
            buffer = {key: value[overflow:] for key, value in buffer.items()}
        self._store_buffer(buffer)
        cov = float(self.noise_variance) * cho_solve(factor, np.eye(p))
        self.mean_, self.cov_ = mean, 0.5 * (cov + cov.T)

    def _targets(self, buffer: dict[str, np.ndarray], mean: np.ndarray) -> np.ndarray:
        """Bellman targets of buffered rows under weights ``mean``, in bounded row chunks."""
        n = buffer["rewards"].size
        targets = np.empty(n)
        rows_per_chunk = max(1, MAX_DRAW_CELLS // max(self.n_actions, self.features.n_slots))
        for start in range(0, n, rows_per_chunk):
            part = slice(start, start + rows_per_chunk)
            slots = self.features.slot_mean(self.features.augment(buffer["next_X"][part]), mean)
            scores = self.features.action_scores(slots)
            targets[part] = bellman_targets(
                buffer["rewards"][part], scores, buffer["next_mask"][part], self.gamma
            )
        return targets

    def _store_buffer(self, buffer: dict[str, np.ndarray]) -> None:
        count = buffer["rewards"].size
        for key, value in buffer.items():
            array = getattr(self, f"buffer_{key}_")
            array[:count] = value
            array[count:] = 0.0
        self.n_buffered_ = np.array(float(count))
