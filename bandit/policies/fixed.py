"""Business as usual: always the same action, optionally with an exploration floor."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bandit._validation import BanditValueError
from bandit.policies.base import Policy, uniform_probabilities
from bandit.space import DecisionSpace


class FixedPolicy(Policy):
    """Always choose ``action`` (an index, an action name or a ``{factor: level}`` mapping).

    Where that action is ineligible for a row, the row falls back to a uniform choice among
    eligible actions (and the propensity says so). The exploration floor defaults to 0: pass
    ``exploration_floor`` to keep some randomisation for off-policy evaluation.
    """

    name = "fixed"
    default_floor = 0.0

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        action: int | str | Mapping[str, str] = 0,
        seed: int | np.random.Generator | None = None,
        exploration_floor: float | None = None,
    ) -> None:
        super().__init__(space, n_context, seed=seed, exploration_floor=exploration_floor)
        self.action = self._resolve(action)

    def _resolve(self, action: int | str | Mapping[str, str]) -> int:
        if isinstance(action, Mapping):
            return self.space.index_of(action)
        if isinstance(action, str):
            names = self.space.action_names
            if action not in names:
                raise BanditValueError(
                    "action",
                    f"The 'action' parameter of FixedPolicy must name an action; got {action!r}.",
                )
            return names.index(action)
        if isinstance(action, bool) or not isinstance(action, int | np.integer):
            raise BanditValueError(
                "action", f"The 'action' parameter of FixedPolicy must be an int; got {action!r}."
            )
        self.space.levels_of(int(action))
        return int(action)

    def _policy_probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        probabilities = uniform_probabilities(mask)
        usable = mask[:, self.action]
        probabilities[usable] = 0.0
        probabilities[usable, self.action] = 1.0
        return probabilities

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Business as usual does not learn."""
