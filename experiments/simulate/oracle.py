"""Policies that know the simulator's truth: the ceiling a learner could reach, and the
instrument that shows where one objective's edge over another comes from.

A learning policy's edge mixes two things: what its objective rewards, and how well it has
learned so far. An oracle removes the second. :func:`greedy_rollout` contacts every
visitor, every day, with the eligible action of highest *true* expected value for an
objective (:meth:`~experiments.simulate.CustomerWorld.expected_reward`: ``"click"``,
``"revenue_<W>d"``, ``"retained_<W>d"``). Two rollouts on the same seeded population that
differ only in the objective show what choosing by that objective is worth; switching the
world's mechanisms (fatigue, nurturing) off shows how much of that worth they carry.

The oracles are greedy: each contact maximises its own window's expected value and ignores
what it does to later contacts' value, so they bound a myopic learner, not every policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bandit import DecisionSpace
from experiments.simulate.config import WorldConfig
from experiments.simulate.fields import ContextFieldLike
from experiments.simulate.world import CustomerWorld


@dataclass(frozen=True)
class RolloutResult:
    """What a greedy oracle did and what it earned.

    Attributes:
        objective: the expected-reward kind it maximised.
        kpis: per-customer truth at the end (see :meth:`CustomerWorld.kpis`).
        actions: every contact's action index, in order.
    """

    objective: str
    kpis: dict[str, np.ndarray]
    actions: np.ndarray

    @property
    def revenue(self) -> float:
        """Mean revenue per customer."""
        return float(self.kpis["revenue"].mean())

    @property
    def retention(self) -> float:
        """Share of customers still active."""
        return float(self.kpis["retained"].mean())

    def level_shares(self, space: DecisionSpace, factor: str) -> np.ndarray:
        """Share of contacts that used each level of ``factor``, in the space's level order."""
        position = space.factor_names.index(factor)
        codes = space.level_index[self.actions, position]
        counts = np.bincount(codes, minlength=len(space.factors[factor]))
        return counts / max(1, self.actions.size)


def greedy_rollout(
    config: WorldConfig,
    space: DecisionSpace,
    context_fields: Mapping[str, ContextFieldLike],
    objective: str,
) -> RolloutResult:
    """Run ``config.n_days`` days, contacting every visitor with the eligible action that
    maximises the true expected ``objective``; ties go to the lowest action index.

    Raises ``ValueError`` (from the world) for an unknown objective.
    """
    world = CustomerWorld(config, space, context_fields)
    allowed = space.allowed
    chosen: list[np.ndarray] = []
    for _ in range(config.n_days):
        visitors = world.visitors()
        values = world.expected_reward(visitors, objective)
        actions = np.where(allowed[None, :], values, -np.inf).argmax(axis=1)
        world.act(visitors, actions)
        world.end_day()
        chosen.append(actions)
    actions = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return RolloutResult(objective=objective, kpis=world.kpis(), actions=actions)
