"""The daily dynamics: at the end of each day customers churn, spend and use data, renew or
buy offers, get billed; then their hidden state moves on by a day.

- churn hazard ``h0 (1 + fatigue_churn F) exp(-0.6 e - sum of active retentions)`` (see
  :func:`experiments.simulate.model.hazard`); a churned customer's unbooked spend is lost;
- spend accrues daily (``s0 exp(0.2 e)`` times the active offers' spend changes) and is
  booked as one ``revenue`` event every ``billing_period`` days per customer, usage reported
  on the same cadence; offer prices, renewals and unprompted purchases are booked when they
  happen;
- an expiring renewable offer renews with a probability rising with readiness; an inactive
  one is sometimes bought unprompted (``organic_rate``);
- engagement reverts to the customer's own level with noise, fatigue and the nurture stock
  decay by their half-lives, tenure grows, trips start and end, the drift walks step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from experiments.simulate import model
from experiments.simulate.events import REVENUE, USAGE, Part, part
from experiments.simulate.fields import HISTORY_DAYS
from experiments.simulate.state import WorldState
from experiments.simulate.visits import Today

_TRIP_END = 0.2


@dataclass(eq=False)
class Settlement:
    """What the end of a day decided, ``(n,)`` each.

    Attributes:
        alive: who was active during the day.
        churn: who leaves today; ``churn_hour`` when (hours after the day's start).
        stay: who is still active tomorrow.
        spend, usage: what accrued today (0 for those who leave).
        parts: the day's events so far (purchases, renewals, bookings).
    """

    alive: np.ndarray
    churn: np.ndarray
    churn_hour: np.ndarray
    stay: np.ndarray
    spend: np.ndarray
    usage: np.ndarray
    parts: list[Part] = field(default_factory=list)


def settle(state: WorldState, today: Today) -> Settlement:
    """Churn, spend and usage, renewals and unprompted purchases, bookings of the day."""
    offers, u, c, day = state.semantics.offers, today.draws, state.customers, state.day
    alive = c.alive
    active = c.active(slice(None), day)
    retention = active @ offers.retention
    h = model.hazard(
        state.hazard_prefactor(slice(None)) * state.drift.churn_season(day),
        c.engagement,
        c.fatigue,
        retention,
        state.gamma,
        state.mech,
    )
    churn = alive & (u.churn < -np.expm1(-h))
    if day < 0:  # a burn-in day: the population is who is a customer on day 0
        churn[:] = False
    earliest = np.where(today.visiting, today.visit_world, 0.0)
    churn_hour = earliest + u.churn_hour * (24.0 - earliest)
    stay = alive & ~churn

    # Spend and usage accrue for those who stay.
    log_mult = active @ np.log1p(offers.spend_change)
    spend = np.where(
        stay,
        c.base_spend
        * state.drift.spend_season(day)
        * np.exp(state.mech.spend_engagement * c.engagement + log_mult)
        * u.spend,
        0.0,
    )
    usage = np.where(
        stay,
        c.base_usage
        * np.exp(state.mech.usage_engagement * c.engagement)
        * state.drift.usage_season(day)
        * u.usage
        + active @ offers.usage_add,
        0.0,
    )
    c.unbilled += spend
    c.unreported_usage += usage
    settlement = Settlement(alive, churn, churn_hour, stay, spend, usage)
    _renew_and_buy(state, today, settlement, active)
    _book(state, settlement)
    return settlement


def _renew_and_buy(
    state: WorldState, today: Today, settlement: Settlement, active: np.ndarray
) -> None:
    """Renewals at expiry and unprompted purchases (one uniform each; they exclude)."""
    cfg, offers, u, c = state.config, state.semantics.offers, today.draws, state.customers
    day = state.day
    stay = settlement.stay
    renewable = offers.renewable & offers.is_offer
    if not renewable.any():
        return
    ready = state.readiness(np.arange(cfg.n_customers), penalise_active=False)
    expiring = stay[:, None] & renewable & (c.active_until == day + 1)
    renew = expiring & (u.offer < model.renew_probability(ready, c.engagement[:, None], state.mech))
    idle = stay[:, None] & renewable & ~active
    buy = idle & (u.offer < model.organic_probability(ready, cfg.organic_rate, state.mech))
    bought = renew | buy
    who, which = np.nonzero(bought)
    c.active_until[who, which] = (
        np.where(renew[who, which], c.active_until[who, which], day) + offers.duration[which]
    )
    np.add.at(c.extra_spend, who, offers.price[which])
    paid = offers.price[which] > 0
    settlement.parts.append(
        part(who[paid], REVENUE, offers.price[which][paid], u.offer_hour[who, which][paid])
    )


def _book(state: WorldState, settlement: Settlement) -> None:
    """Bookings of the accrued spend and usage, every ``billing_period`` days."""
    cfg, c = state.config, state.customers
    booking = settlement.stay & ((state.day + c.bill_phase) % cfg.billing_period == 0)
    billed = booking & (c.unbilled > 0)
    settlement.parts.append(
        part(np.flatnonzero(billed), REVENUE, c.unbilled[billed], c.bill_hour[billed])
    )
    c.unbilled[booking] = 0.0
    if cfg.emit_usage:
        reported = booking & (c.unreported_usage > 0)
        settlement.parts.append(
            part(
                np.flatnonzero(reported),
                USAGE,
                c.unreported_usage[reported],
                c.usage_hour[reported],
            )
        )
    c.unreported_usage[booking] = 0.0


def advance(state: WorldState, today: Today, settlement: Settlement) -> None:
    """Move every customer's hidden state and the drift on by one day."""
    c, u, day = state.customers, today.draws, state.day
    row = day % HISTORY_DAYS
    c.usage_history[row] = settlement.usage
    c.spend_history[row] = np.where(settlement.stay, settlement.spend + c.extra_spend, 0.0)
    c.contact_history[row] = c.contacted_today
    c.alive = settlement.stay
    c.churn_day[settlement.churn] = day
    level = c.engagement_level
    c.engagement = (
        level
        + state.mech.engagement_persistence * (c.engagement - level)
        + state.mech.engagement_noise * u.engagement
    )
    c.fatigue *= state.phi_fatigue
    c.nurture *= state.phi_nurture
    c.tenure += 1.0 / 30.44
    travel = state.drift.travel(day)
    start_trip = ~c.roaming & (u.roam < c.roam_propensity * travel)
    end_trip = c.roaming & (u.roam < _TRIP_END)
    c.roaming = (c.roaming | start_trip) & ~end_trip
    c.extra_spend[:] = 0.0
    c.contacted_today[:] = False
    state.drift.step()
    state.day += 1
