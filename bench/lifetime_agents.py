"""Our lifetime learners in the benchmark: policies that read the customer's contact state.

``lookahead_ts`` and ``fitted_q`` expect the context to end with the customer's contact state
(:mod:`bandit.contact_state`: one decayed count per factor level, then the days since the
last contact), which the engine appends from the store. The benchmark's environments draw
contexts with no customer behind them, so :class:`ContactStateAgent` plays the engine's part:
each round is a contact of one of ``customers`` simulated customers, ``rounds_per_day``
rounds a day; the agent appends that customer's contact state at the round's time to the
environment's context and, once the batch's rewards come back, records the chosen action as
the customer's newest contact (:meth:`bandit.contact_state.ContactDecay.record`). The
environment's reward does not depend on that state, so these rows measure what the state
costs (time, memory), not what it earns; the contact-state work is inside the timings, as it
is inside the engine's decide.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bandit import make_policy
from bandit.contact_state import ContactDecay, level_columns
from bench.agents import BENCH_PARAMS, Agent, AgentSpec
from bench.environments import EnvSpec

#: Our policies that need the contact state; the benchmark runs them on B only.
LIFETIME_POLICIES = ("lookahead_ts", "fitted_q")
#: As linear_ts's benchmark settings (Bernoulli rewards); fitted_q needs a fixed noise.
LIFETIME_PARAMS: dict[str, float] = BENCH_PARAMS["linear_ts"]
#: The simulated customers behind the rounds, and how many rounds make a day: about 1.5
#: contacts per customer a week, the flagship's contact rate.
CUSTOMERS = 20_000
ROUNDS_PER_DAY = 4_000


class ContactStateAgent:
    """A lifetime policy with the engine's part played: the contact state appended to every
    context and each chosen action recorded as a contact (module docstring)."""

    def __init__(self, name: str, spec: EnvSpec, seed: int) -> None:
        self.space = spec.space()
        self.decay = ContactDecay()
        self.n_levels = int(sum(self.space.factor_sizes))
        self.state = self.decay.initial_state(CUSTOMERS, self.n_levels)
        self.policy = make_policy(
            name,
            space=self.space,
            n_context=spec.n_context + self.n_levels + 1,
            seed=seed,
            **LIFETIME_PARAMS,
        )
        self._customers = np.random.default_rng(seed + 1)
        self._round = 0
        #: The customers, times and augmented contexts of the last selected batch: its update
        #: learns from the same contexts and records the contacts.
        self._pending: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _augment(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        who = np.asarray(self._customers.integers(0, CUSTOMERS, size=n))
        when = (self._round + np.arange(n)) / ROUNDS_PER_DAY
        augmented = np.hstack([X, self.decay.features(self.state, who, when)])
        self._pending = (who, when, augmented)
        return augmented

    def select(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        decision = self.policy.select(self._augment(X))
        return decision.actions, decision.propensities

    def update(
        self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray
    ) -> None:
        if self._pending is None or self._pending[0].shape[0] != X.shape[0]:
            raise ValueError("update must follow the select of the same batch")
        who, when, augmented = self._pending
        self.policy.update(augmented, actions, rewards, propensities)
        self.state = self.decay.record(self.state, who, when, level_columns(self.space, actions))
        self._round += X.shape[0]
        self._pending = None


def lifetime_agents(names: tuple[str, ...], seed: int) -> list[AgentSpec]:
    """The lifetime policies among ``names``, each as an ``ours`` agent with a contact state."""

    def builder(name: str) -> Callable[[EnvSpec], Agent]:
        return lambda spec: ContactStateAgent(name, spec, seed)

    return [
        AgentSpec(name, "ours", builder(name), policy=name, note="with a simulated contact state")
        for name in names
        if name in LIFETIME_POLICIES
    ]
