"""The start of a day: every random number the day will use, drawn for the whole population
in a fixed order whoever is contacted (common random numbers: two worlds with the same seed
face the same luck, and only what they are sent makes them differ), and who visits when.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.simulate import model
from experiments.simulate.state import WorldState


@dataclass(frozen=True, eq=False)
class Draws:
    """The day's uniform and other draws, ``(n,)`` each (``(n, K)`` for the offer ones)."""

    visit: np.ndarray
    visit_hour: np.ndarray  # the visit's deviation from the preferred hour
    click: np.ndarray
    accept: np.ndarray
    click_delay: np.ndarray  # hours from delivery to click
    lag_fast: np.ndarray  # an accept follows at once (< 0.5) or after ``lag`` hours
    lag: np.ndarray
    churn: np.ndarray
    churn_hour: np.ndarray
    usage: np.ndarray  # usage noise multiplier
    spend: np.ndarray  # spend noise multiplier
    engagement: np.ndarray  # engagement innovation
    roam: np.ndarray
    offer: np.ndarray  # renewals and unprompted purchases
    offer_hour: np.ndarray  # their hours


@dataclass(frozen=True, eq=False)
class Today:
    """One day's draws and visits.

    Attributes:
        visiting: ``(n,)`` bool, active customers reachable for a decision today.
        visit_local: ``(n,)`` local hour of each customer's visit.
        visit_world: ``(n,)`` the same in world time, in [0, 24).
    """

    draws: Draws
    visiting: np.ndarray
    visit_local: np.ndarray
    visit_world: np.ndarray


def begin_day(state: WorldState, rng: np.random.Generator) -> Today:
    """Draw the day's random numbers for everyone (a fixed amount per day) and the visits."""
    config, c = state.config, state.customers
    n = config.n_customers
    K = len(state.semantics.offers.names)
    u = Draws(
        visit=rng.random(n),
        visit_hour=rng.normal(0.0, 2.5, n),
        click=rng.random(n),
        accept=rng.random(n),
        click_delay=rng.exponential(1.0, n),
        lag_fast=rng.random(n),
        lag=rng.exponential(20.0, n),
        churn=rng.random(n),
        churn_hour=rng.random(n),
        usage=rng.lognormal(-0.06, 0.35, n),
        spend=rng.lognormal(-0.02, 0.2, n),
        engagement=rng.standard_normal(n),
        roam=rng.random(n),
        offer=rng.random((n, K)),
        offer_hour=rng.uniform(0.0, 24.0, (n, K)),
    )
    rate = config.visit_rate * state.drift.visit_boost(state.day)
    chance = np.minimum(1.0, 2.0 * rate * model.sigmoid(0.8 * c.engagement))
    local = (c.preferred_hour + state.drift.hour_shift(state.day) + u.visit_hour) % 24.0
    return Today(
        draws=u,
        visiting=c.alive & (u.visit < chance),
        visit_local=local,
        visit_world=(local - c.tz) % 24.0,
    )
