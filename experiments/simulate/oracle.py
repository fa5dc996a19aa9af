"""Policies that know the simulator's truth: the ceiling a learner could reach, and the
instrument that shows where one objective's edge over another comes from.

A learning policy's edge mixes two things: what its objective rewards, and how well it has
learned so far. An oracle removes the second. :func:`greedy_rollout` contacts every
visitor the contact rules allow (every visitor, every day, without rules), with the eligible
action of highest *true* expected value for an objective
(:meth:`~experiments.simulate.CustomerWorld.expected_reward`: ``"click"``,
``"revenue_<W>d"``, ``"retained_<W>d"``). Two rollouts on the same seeded population that
differ only in the objective show what choosing by that objective is worth; switching the
world's mechanisms (fatigue, nurturing) off shows how much of that worth they carry.

The oracles are greedy: each contact maximises its own window's expected value and ignores
what it does to later contacts' value, so they bound a myopic learner, not every policy.
Under the engine's contact rules (:class:`~experiments.simulate.rules.ContactRules`, for
example 3 decisions per 7 days and quiet hours 22-8) they compare with what engage's arms can
do; without rules they contact far more often than the engine would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from bandit import DecisionSpace
from experiments.simulate.config import WorldConfig
from experiments.simulate.fields import ContextFieldLike
from experiments.simulate.rules import ContactLedger, ContactRules
from experiments.simulate.world import CustomerWorld


@dataclass(frozen=True)
class RolloutResult:
    """What a greedy oracle did and what it earned.

    Attributes:
        objective: the expected-reward kind it maximised.
        kpis: per-customer truth at the end (see :meth:`CustomerWorld.kpis`).
        actions: every contact's action index, in order.
        customers: every contact's customer id, aligned with ``actions``.
        days: every contact's day, aligned with ``actions``.
    """

    objective: str
    kpis: dict[str, np.ndarray]
    actions: np.ndarray
    customers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    days: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def revenue(self) -> float:
        """Mean revenue per customer."""
        return float(self.kpis["revenue"].mean())

    @property
    def retention(self) -> float:
        """Share of customers still active."""
        return float(self.kpis["retained"].mean())

    def level_shares(
        self, space: DecisionSpace, factor: str, customers: np.ndarray | None = None
    ) -> np.ndarray:
        """Share of contacts that used each level of ``factor``, in the space's level order:
        of every contact, or of those to the customers ``customers`` (bool, one per customer)
        marks."""
        actions = self.actions if customers is None else self.actions[customers[self.customers]]
        position = space.factor_names.index(factor)
        codes = space.level_index[actions, position]
        counts = np.bincount(codes, minlength=len(space.factors[factor]))
        return counts / max(1, actions.size)


def greedy_rollout(
    config: WorldConfig,
    space: DecisionSpace,
    context_fields: Mapping[str, ContextFieldLike],
    objective: str,
    *,
    rules: ContactRules | None = None,
) -> RolloutResult:
    """Run ``config.n_days`` days, contacting every visitor ``rules`` allow (all of them
    without rules) with the eligible action that maximises the true expected ``objective``;
    ties go to the lowest action index.

    Raises ``ValueError`` (from the world) for an unknown objective.
    """
    world = CustomerWorld(config, space, context_fields)
    allowed = space.allowed
    ledger = ContactLedger(rules, config.n_customers) if rules is not None else None
    chosen: list[np.ndarray] = []
    who: list[np.ndarray] = []
    when: list[np.ndarray] = []
    for _ in range(config.n_days):
        visitors = world.visitors()
        if ledger is not None:
            local = world.visit_local_hours(visitors)
            visitors = visitors[ledger.allows(visitors, local, world.day)]
            ledger.record(visitors, world.day)
        values = world.expected_reward(visitors, objective)
        actions = np.where(allowed[None, :], values, -np.inf).argmax(axis=1)
        who.append(visitors)
        when.append(np.full(visitors.shape[0], world.day, dtype=np.int64))
        world.act(visitors, actions)
        world.end_day()
        chosen.append(actions)
    empty = np.zeros(0, dtype=np.int64)
    return RolloutResult(
        objective=objective,
        kpis=world.kpis(),
        actions=np.concatenate(chosen) if chosen else empty,
        customers=np.concatenate(who) if who else empty,
        days=np.concatenate(when) if when else empty,
    )
