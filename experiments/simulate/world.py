"""A population of simulated customers living day by day, reacting to what we send them.

The world is pure numpy (no database, no tracking) and deterministic under
``WorldConfig.seed``: the same configuration and the same calls give identical events. Every
day's random numbers are drawn for the whole population in a fixed order, whoever is
contacted, so two policies run on two worlds with the same seed face the same customers,
the same visits and the same luck (common random numbers); only what the policies send
makes their worlds differ.

A day, as the runner drives it::

    ids = world.visitors()                 # active customers reachable today
    contexts = world.contexts(ids)         # what a decision sees (the spec's schema)
    world.act(ids, actions)                # action indices; -1 = no contact
    events = world.end_day()               # the day's events; the world moves on a day

:class:`CustomerWorld` is the public face; each of its jobs lives in its own module:

- :mod:`~experiments.simulate.population`: who the customers are (observable: device, plan,
  region, tenure, age, a 30-day usage and spend history, roaming; hidden: engagement,
  readiness per offer, channel and hour preferences, fatigue, nurture, churn frailty);
- :mod:`~experiments.simulate.visits`: the day's random numbers and who visits when;
- :mod:`~experiments.simulate.contexts`: what a decision sees;
- :mod:`~experiments.simulate.response`: the response to a contact and its effects on
  hidden state (fatigue, nurturing, accepted offers); level meanings in
  :mod:`experiments.simulate.semantics`, formulas in :mod:`experiments.simulate.model`;
- :mod:`~experiments.simulate.dynamics`: the end of the day (churn, spend and usage,
  renewals and unprompted purchases, bookings) and the move to the next;
- :mod:`~experiments.simulate.outcomes`: the day's events and the truth counted from them;
- :mod:`~experiments.simulate.drift`: seasons and slow shifts;
- :mod:`~experiments.simulate.truth`: every action's true expected value, for regret.

**Mechanisms.** Fatigue (``WorldConfig.fatigue``): every contact adds channel x message x
timing x irrelevance fatigue; it halves every ``Mechanism.fatigue_half_life`` days, lowers
responses and raises the churn hazard linearly. Off: contacts add none, so contacting cannot
raise churn. Nurturing (``WorldConfig.nurturing``): informational, educational (and a little
personalised) messages that are read raise readiness for the offer they carry and
engagement; readiness drives later accepts, renewals and unprompted purchases, so nurturing
pays later, not now. Off: messages change no hidden state, so they have no effect on later
accepts. Drift (``WorldConfig.drift``): a model trained early goes stale.

**Other worlds.** ``WorldConfig.levels`` gives levels other meanings than their names
(urgency harmless and informational tiring, say), ``WorldConfig.mechanism`` other constants,
so a learner can be checked on worlds where a different level does the harm. The defaults
are today's world.

**Burn-in.** ``WorldConfig.burn_in_days`` days of business as usual (uniform eligible
actions under ``WorldConfig.burn_in_rules``) are lived before day 0, so customers start with
fatigue, nurture, contact counts and offers of their own; nobody churns in them and none of
their outcomes is reported. With 0 (the default) every customer starts fresh. With
``log_burn_in`` the world keeps what the burn-in did (:class:`BurnInDay`, one per day: who was
contacted, when, with what context and action, and the day's events), so a learner can start
from business as usual's log as a deployment starts from its predecessor's; keeping it draws
no random numbers, so the world is the same with or without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bandit import DecisionSpace
from experiments.simulate import dynamics, population, truth
from experiments.simulate.config import WorldConfig
from experiments.simulate.contexts import context_rows
from experiments.simulate.drift import Drift
from experiments.simulate.events import Events
from experiments.simulate.fields import ContextFieldLike, FieldPlan, plan_fields
from experiments.simulate.history import BurnInDay
from experiments.simulate.outcomes import day_events
from experiments.simulate.response import contact
from experiments.simulate.rules import ContactLedger
from experiments.simulate.semantics import build_semantics
from experiments.simulate.state import WorldState
from experiments.simulate.visits import Today, begin_day


class CustomerWorld:
    """The simulated population; see the module docstring for the model.

    Args:
        config: size, seed, mechanisms and effect sizes.
        space: the decision space whose action indices :meth:`act` receives.
        context_fields: the spec's context schema (name -> field with ``type`` and, for
            categorical fields, ``levels``); ``ValueError`` names a field the world cannot
            provide.
        log_burn_in: keep the burn-in's log in :attr:`burn_in_log`.

    Attributes:
        config: as given.
        space: as given.
        semantics: what the space's levels mean to the customers.
        n_actions: the space's number of actions.
        customers: every customer's traits and hidden state
            (:class:`~experiments.simulate.population.Customers`); read it, do not write it.
        burn_in_log: with ``log_burn_in``, the burn-in's days in order (else empty).
    """

    def __init__(
        self,
        config: WorldConfig,
        space: DecisionSpace,
        context_fields: Mapping[str, ContextFieldLike],
        *,
        log_burn_in: bool = False,
    ) -> None:
        if not isinstance(config, WorldConfig):
            raise ValueError(f"'config' must be a WorldConfig; got {type(config).__name__}")
        if not isinstance(space, DecisionSpace):
            raise ValueError(f"'space' must be a bandit.DecisionSpace; got {type(space).__name__}")
        self.config = config
        self.space = space
        self.semantics = build_semantics(space, config.seed, config.levels)
        self.n_actions = space.n_actions
        self._fields: tuple[FieldPlan, ...] = plan_fields(
            context_fields, config.n_customers, config.seed
        )
        root = np.random.SeedSequence([config.seed, 0x5EED])
        people, drift, daily, static_noise = (np.random.default_rng(s) for s in root.spawn(4))
        self._daily_rng = daily
        start = -config.burn_in_days
        self.customers = population.draw_customers(
            config, self.semantics, people, static_noise, start=start
        )
        self._state = WorldState(
            config, self.semantics, self.customers, Drift(config, self.semantics, drift), start
        )
        everyone = np.arange(config.n_customers)
        ready = self._state.readiness(everyone, penalise_active=False)
        population.hold_offers(self.customers, ready, self.semantics.offers, people, start=start)
        self._today: Today = begin_day(self._state, self._daily_rng)
        self.burn_in_log: list[BurnInDay] = []
        if config.burn_in_days:
            self._burn_in(log_burn_in)

    def _burn_in(self, log: bool) -> None:
        """Live the days before day 0 under business as usual: each visitor the burn-in rules
        allow gets an eligible action drawn uniformly (from a generator of its own, so the
        world's other draws stay common to every world of the seed). Nobody churns: the
        population is who is a customer on day 0. The days' events, the responses still
        pending and the truth counted so far are dropped, so day 0 starts with a history of
        contacts (fatigue, nurture, offers, contact counts) but with no outcomes of its own.
        With ``log``, each day is kept in :attr:`burn_in_log` (contexts read before the
        contacts, as a decision would see them)."""
        config = self.config
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0xB0B]))
        ledger = ContactLedger(config.burn_in_rules, config.n_customers)
        eligible = np.flatnonzero(self.space.allowed)
        law = self.space.allowed / eligible.size
        while self.day < 0:
            ids = self.visitors()
            ids = ids[ledger.allows(ids, self._today.visit_local[ids], self.day)]
            ledger.record(ids, self.day)
            actions = rng.choice(eligible, size=ids.size)
            if not log:
                self.act(ids, actions)
                self.end_day()
                continue
            day, hours, contexts = self.day, self.visit_hours(ids), self.contexts(ids)
            self.act(ids, actions)
            events = self.end_day()
            self.burn_in_log.append(BurnInDay(day, ids, hours, contexts, actions, law, events))
        self._state.pending.clear()
        self.customers.clear_truth()

    @property
    def day(self) -> int:
        """Index of the current day (0 at creation, after any burn-in)."""
        return self._state.day

    @property
    def alive(self) -> np.ndarray:
        """``(n_customers,)`` bool: who is still a customer (a view; do not write it)."""
        return self.customers.alive

    # ------------------------------------------------------------------ the day
    def visitors(self) -> np.ndarray:
        """Ids (int64, ascending) of active customers reachable for a decision today."""
        return np.flatnonzero(self._today.visiting).astype(np.int64)

    def visit_local_hours(self, customers: np.ndarray) -> np.ndarray:
        """Local hour (the customer's time zone, [0, 24)) of each customer's visit today: the
        hour contact rules' quiet hours are judged on."""
        return self._today.visit_local[self._rows(customers, "customers")].copy()

    def visit_hours(self, customers: np.ndarray) -> np.ndarray:
        """Hour of today (world time, [0, 24)) at which each customer visits; responses to
        today's contacts come after it, so a decision logged then precedes its outcomes."""
        return self._today.visit_world[self._rows(customers, "customers")].copy()

    def contexts(self, customers: np.ndarray) -> list[dict[str, Any]]:
        """The context of each customer today as JSON-able dicts valid for the schema."""
        rows = self._rows(customers, "customers")
        return context_rows(self._state, self._today, self._fields, rows)

    def act(self, customers: np.ndarray, actions: np.ndarray) -> None:
        """Today's contacts: ``actions[i]`` (an index into the space, or -1 for no contact)
        for ``customers[i]``. Effects land on hidden state at once; responses are scheduled.

        Raises ``ValueError`` for ids out of range or repeated, churned customers, customers
        already contacted today, and action indices outside ``[-1, n_actions)``.
        """
        rows = self._rows(customers, "customers")
        acts = np.asarray(actions)
        if acts.shape != rows.shape or (acts.size and not np.issubdtype(acts.dtype, np.integer)):
            raise ValueError("'actions' must be integer action indices, one per customer")
        acts = acts.astype(np.int64)
        if acts.size and (acts.min() < -1 or acts.max() >= self.n_actions):
            raise ValueError(f"'actions' must hold indices in [-1, {self.n_actions}) (-1: none)")
        if np.unique(rows).shape[0] != rows.shape[0]:
            raise ValueError("'customers' must not repeat a customer")
        sent = acts >= 0
        rows, acts = rows[sent], acts[sent]
        alive = self.customers.alive
        if not alive[rows].all():
            raise ValueError(f"churned customers cannot be contacted: {rows[~alive[rows]]}")
        if self.customers.contacted_today[rows].any():
            raise ValueError("a customer can be contacted at most once a day")
        if rows.size == 0:
            return
        contact(self._state, self._today, rows, acts)

    def end_day(self) -> Events:
        """Close the day: churn, spend and usage, renewals, unprompted purchases, bookings;
        return the day's events (including responses to earlier days' contacts that land
        today) and move every customer's hidden state on by one day."""
        settlement = dynamics.settle(self._state, self._today)
        events = day_events(self._state, settlement)
        dynamics.advance(self._state, self._today, settlement)
        self._today = begin_day(self._state, self._daily_rng)
        return events

    # ------------------------------------------------------------------ truth
    def kpis(self) -> dict[str, np.ndarray]:
        """Per-customer truth so far, each ``(n_customers,)``: ``revenue`` (sum of revenue
        events), ``retained`` (not churned), ``contacts``, ``clicks``, ``accepts`` (events
        emitted), ``churn_day`` (-1 while active)."""
        c = self.customers
        return {
            "revenue": c.revenue_total.copy(),
            "retained": c.alive.copy(),
            "contacts": c.contacts_total.copy(),
            "clicks": c.clicks_total.copy(),
            "accepts": c.accepts_total.copy(),
            "churn_day": c.churn_day.copy(),
        }

    def expected_reward(self, customers: np.ndarray, kind: str) -> np.ndarray:
        """True expected reward of every action for each customer if contacted now, shape
        ``(n, n_actions)`` float64; 0 for churned customers.

        ``kind``: ``"click"`` (probability of a click, at any delay), ``"accept"``,
        ``"funnel"`` (the two summed),
        ``"revenue_<W>d"`` (revenue accruing in the W days from today, e.g. ``revenue_14d``)
        or ``"retained_<W>d"`` (probability of being active after W days, e.g.
        ``retained_30d``). The window kinds assume no further contacts and drift frozen at
        today; see :func:`experiments.simulate.truth.projection` for the approximations.
        """
        rows = self._rows(customers, "customers")
        return truth.expected_reward(self._state, rows, kind)

    def _rows(self, customers: object, name: str) -> np.ndarray:
        rows = np.asarray(customers)
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise ValueError(f"'{name}' must be a 1-D array of customer ids")
        rows = rows.astype(np.int64)
        n = self.config.n_customers
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise ValueError(f"'{name}' must hold ids in [0, {n}); got {rows.min()}..{rows.max()}")
        return rows
