"""The one small interface every policy implements, and the machinery they share.

A policy chooses for a batch of contexts ``X`` (n, d) under an eligibility mask (n, A),
returning the chosen actions and the exact probability with which each was chosen (its
propensity). The probability is the policy's own distribution mixed with the exploration
floor ``eps`` spread uniformly over eligible actions:

    P(a | x) = (1 - eps) pi(a | x) + eps / |eligible(x)|

so every eligible action keeps probability at least ``eps / |eligible(x)|`` and logged data
stays usable for off-policy evaluation. Learned state lives in attributes ending in ``_`` and
exports to a dict of plain numpy arrays that round-trips exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypedDict

import numpy as np

from bandit._validation import (
    BanditValueError,
    check_actions,
    check_int,
    check_mask,
    check_matrix,
    check_propensities,
    check_real,
    check_vector,
)
from bandit.montecarlo import row_counts
from bandit.space import DecisionSpace


@dataclass(frozen=True)
class Decision:
    """Chosen actions ``(n,)`` int64 and their propensities ``(n,)`` in (0, 1].

    ``probabilities`` ``(n, A)``, when given, is the whole law each action was drawn from
    (floor included; ``propensities`` is its chosen entry): what an engine logs to know, for
    every factor level, the chance it was sent (:func:`bandit.contact_state.level_marginals`).
    """

    actions: np.ndarray
    propensities: np.ndarray
    probabilities: np.ndarray | None = field(default=None, repr=False, compare=False)


def greedy_probabilities(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Uniform over the eligible maximisers of each row: the exact law of a greedy choice.

    Ties count when within ``1e-12`` (relative) of the row maximum, so a fresh model whose
    scores are all zero explores uniformly instead of always taking action 0.
    """
    masked = np.where(mask, scores, -np.inf)
    best = masked.max(axis=1, keepdims=True)
    tolerance = 1e-12 * np.maximum(1.0, np.abs(best))
    winners = masked >= best - tolerance
    return winners / winners.sum(axis=1, keepdims=True)


def uniform_probabilities(mask: np.ndarray) -> np.ndarray:
    """Uniform over the eligible actions of each row."""
    return mask / mask.sum(axis=1, keepdims=True)


def sample_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row; never returns an action of probability zero.

    Picks the first index whose cumulative probability exceeds ``u * total``; that index has
    positive mass because the cumulative sum strictly increases there.
    """
    cumulative = np.add.accumulate(probabilities, axis=1)  # np.cumsum without its wrapper
    threshold = rng.random(probabilities.shape[0]) * cumulative[:, -1]
    return row_counts(cumulative <= threshold[:, None], np.int64)


class PolicyOptions(TypedDict, total=False):
    """The keyword arguments of :class:`Policy` that every subclass passes on to it."""

    seed: int | np.random.Generator | None
    exploration_floor: float | None


class Policy(ABC):
    """Base class: validation, exploration floor, sampling, and state export.

    Args:
        space: the decision space.
        n_context: width of the context vectors.
        seed: seed or ``numpy.random.Generator``; the policy's only source of randomness.
        exploration_floor: share of probability spread uniformly over eligible actions.
    """

    #: Registry name used by :func:`bandit.make_policy`.
    name: ClassVar[str]
    #: Rewards must lie in [0, 1] (Bernoulli-likelihood policies).
    binary_rewards: ClassVar[bool] = False
    #: Whether the context must end with the contact state of :mod:`bandit.contact_state`.
    needs_contact_state: ClassVar[bool] = False
    #: Whether a policy that reads the contact state also reads the counts' expected parts
    #: after them (``expected_counts``; :mod:`bandit.policies.lookahead_ts`).
    reads_expected_counts: ClassVar[bool] = False
    default_floor: ClassVar[float] = 0.01

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        seed: int | np.random.Generator | None = None,
        exploration_floor: float | None = None,
    ) -> None:
        owner = type(self).__name__
        if not isinstance(space, DecisionSpace):
            raise BanditValueError("space", f"'space' of {owner} must be a DecisionSpace.")
        n_context = check_int(n_context, "n_context", owner, low=0)
        floor = self.default_floor if exploration_floor is None else exploration_floor
        self.space = space
        self.n_context = n_context
        self.exploration_floor = check_real(floor, "exploration_floor", owner, low=0.0, high=1.0)
        self.rng_ = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.n_updates_ = 0

    @property
    def n_actions(self) -> int:
        return self.space.n_actions

    # ----------------------------------------------------------------- choosing
    def _check_contexts(self, X: object, mask: object | None) -> tuple[np.ndarray, np.ndarray]:
        contexts = check_matrix(X, "X", n_columns=self.n_context)
        n = contexts.shape[0]
        if mask is None:
            # np.repeat rather than np.broadcast_to: the same rows, without the latter's
            # Python-level overhead (a tenth of a batch-1 select).
            return contexts, np.repeat(self.space.allowed[None, :], n, axis=0)
        return contexts, check_mask(mask, n, self.n_actions, allowed=self.space.allowed)

    def action_probabilities(self, X: object, mask: object | None = None) -> np.ndarray:
        """Probability of every action per row, ``(n, A)``, floor included; rows sum to 1.

        Thompson samplers return a fresh Monte Carlo estimate on every call.
        """
        contexts, eligible = self._check_contexts(X, mask)
        return self._probabilities(contexts, eligible)

    def select(self, X: object, mask: object | None = None) -> Decision:
        """Choose one action per row of ``X`` (n, d) among the eligible ones in ``mask``."""
        contexts, eligible = self._check_contexts(X, mask)
        probabilities = self._probabilities(contexts, eligible)
        actions = sample_rows(probabilities, self.rng_)
        propensities = probabilities[np.arange(actions.shape[0]), actions]
        return Decision(actions=actions, propensities=propensities, probabilities=probabilities)

    def _probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if X.shape[0] == 0:
            return np.zeros((0, self.n_actions))
        own = self._policy_probabilities(X, mask)
        if not self.exploration_floor:
            return own
        floor = self.exploration_floor
        mixed = own * (1.0 - floor)
        if mask.all():
            # The same value as the general line below, without its three passes.
            mixed += floor / mask.shape[1]
        else:
            mixed += mask * (floor / mask.sum(axis=1, keepdims=True))
        return mixed

    @abstractmethod
    def _policy_probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The policy's own distribution over eligible actions, ``(n, A)``, before the floor."""

    # ----------------------------------------------------------------- learning
    def update(
        self,
        X: object,
        actions: object,
        rewards: object,
        propensities: object | None = None,
    ) -> None:
        """Learn from a batch of (context, action, reward[, propensity]) rows."""
        contexts = check_matrix(X, "X", n_columns=self.n_context)
        n = contexts.shape[0]
        chosen = check_actions(actions, n, self.n_actions)
        observed = check_vector(rewards, "rewards", length=n)
        check_propensities(propensities, n)
        if self.binary_rewards and n and (observed.min() < 0 or observed.max() > 1):
            raise BanditValueError(
                "rewards", f"'rewards' of {type(self).__name__} must lie in [0, 1]."
            )
        if n == 0:
            return
        self._update(contexts, chosen, observed)
        self.n_updates_ += n

    @abstractmethod
    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Fold validated rows into the learned state."""

    # ----------------------------------------------------------------- state
    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Learned arrays by name (stored as attribute ``name + '_'``) and their shapes."""
        return {}

    def get_state(self) -> dict[str, np.ndarray]:
        """The learned state as plain numpy arrays (copies)."""
        state = {name: np.array(getattr(self, f"{name}_")) for name in self._state_shapes()}
        state["n_updates"] = np.array(self.n_updates_, dtype=np.int64)
        return state

    def state_keys(self) -> set[str]:
        """The keys of :meth:`get_state` (and of what :meth:`set_state` loads)."""
        return set(self._exported_shapes())

    def _exported_shapes(self) -> dict[str, tuple[int, ...]]:
        """The learned arrays and the update count, by state key, with their shapes."""
        return {**self._state_shapes(), "n_updates": ()}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load a state exported by :meth:`get_state` of the same policy and shapes."""
        shapes = self._exported_shapes()
        missing = sorted(set(shapes) - set(state))
        unknown = sorted(set(state) - set(shapes))
        if missing or unknown:
            raise BanditValueError(
                "state",
                f"'state' must have keys {sorted(shapes)}; missing {missing}, unknown {unknown}.",
            )
        loaded: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():
            array = np.asarray(state[name])
            if array.shape != shape:
                raise BanditValueError(
                    f"state.{name}", f"'state.{name}' must have shape {shape}; got {array.shape}."
                )
            if not np.isfinite(array).all():
                raise BanditValueError(f"state.{name}", f"'state.{name}' must be finite.")
            loaded[name] = array
        for name in self._state_shapes():
            setattr(self, f"{name}_", np.array(loaded[name], dtype=np.float64))
        self.n_updates_ = int(loaded["n_updates"])
