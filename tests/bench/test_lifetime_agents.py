"""The benchmark's contact-state agent plays the engine's part for the lifetime learners: the
state it appends is the customer's decayed contacts, and each chosen action is recorded."""

from __future__ import annotations

import numpy as np
import pytest

from bandit.contact_state import level_columns
from bench.environments import environment_specs
from bench.lifetime_agents import LIFETIME_POLICIES, ROUNDS_PER_DAY, ContactStateAgent


class SameCustomer:
    """Draws ``customer`` for every round (stands in for the agent's generator)."""

    def __init__(self, customer: int) -> None:
        self.customer = customer

    def integers(self, low: int, high: int, size: int) -> np.ndarray:
        return np.full(size, self.customer)


@pytest.mark.parametrize("name", LIFETIME_POLICIES)
def test_a_chosen_action_becomes_the_customers_contact_and_decays(name: str) -> None:
    spec = environment_specs(0.0)["B"]
    agent = ContactStateAgent(name, spec, seed=3)
    X = np.zeros((1, spec.n_context))
    actions, propensities = agent.select(X)
    customer = int(agent._pending[0][0])  # type: ignore[index]
    agent.update(X, actions, np.ones(1), propensities)
    columns = level_columns(agent.space, actions)[0]
    expected = np.zeros(agent.n_levels)
    expected[columns] = 1.0  # one contact, one per factor's level, valued at its own time
    np.testing.assert_array_equal(agent.state.counts[customer], expected)
    assert agent.state.last_contact[customer] == 0.0

    # Seven days later (the half-life) the same customer's appended state is halved.
    agent._round = 7 * ROUNDS_PER_DAY
    agent._customers = SameCustomer(customer)  # type: ignore[assignment]
    augmented = agent._augment(X)
    np.testing.assert_allclose(augmented[0, spec.n_context : -1], expected / 2)
    assert augmented[0, -1] == pytest.approx(7.0)


def test_update_must_follow_its_select() -> None:
    spec = environment_specs(0.0)["B"]
    agent = ContactStateAgent("lookahead_ts", spec, seed=0)
    X = np.zeros((2, spec.n_context))
    with pytest.raises(ValueError, match="must follow the select"):
        agent.update(X, np.zeros(2, dtype=np.int64), np.zeros(2), np.ones(2))
