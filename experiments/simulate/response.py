"""How a customer responds to a contact, and what the contact does to them.

The response is a funnel: click, then accept given click, both logistic in engagement x
readiness x message x channel fit x timing fit, minus fatigue (formulas in
:mod:`experiments.simulate.model`). A message is delivered at its timing slot's next local
occurrence, the click follows within hours, the accept within minutes or up to three days (a
reporting lag); responses are scheduled on the world's queue of pending events.

Effects land on hidden state at once: fatigue (channel x message x timing x irrelevance)
with ``WorldConfig.fatigue``; with ``WorldConfig.nurturing`` a read message raises readiness
for the offer it carries (some for its kind, a little for all offers; the stock saturates at
``Mechanism.nurture_cap``) and engagement; an accepted offer becomes active for its duration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.simulate import model
from experiments.simulate.events import ACCEPT, CLICK, REVENUE
from experiments.simulate.semantics import is_night
from experiments.simulate.state import WorldState
from experiments.simulate.visits import Today


@dataclass(eq=False)
class ClickTerms:
    """Click terms of actions for customers, all of one broadcast shape: the actions' level
    indices and the click probability."""

    offer: np.ndarray
    message: np.ndarray
    timing: np.ndarray
    p_click: np.ndarray


@dataclass(eq=False)
class Terms(ClickTerms):
    """Full response terms: the click terms plus ``p_accept_given_click``, ``p_accept``,
    ``attention`` (the probability the message is read) and ``d_fatigue`` (the fatigue a
    contact adds)."""

    p_accept_given_click: np.ndarray
    p_accept: np.ndarray
    attention: np.ndarray
    d_fatigue: np.ndarray


@dataclass(frozen=True, eq=False)
class _Levels:
    """Per customer (and level) quantities the accept and fatigue terms reuse."""

    engagement: np.ndarray  # (n, 1)
    fatigue: np.ndarray  # (n, 1)
    ready: np.ndarray  # (n, K)
    distance: np.ndarray  # (n, T) hours between slot and preferred hour
    night: np.ndarray  # (1, T)


def _pick(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    if index.shape[0] == 1:
        return table[:, index[0]]
    return np.take_along_axis(table, index, axis=1)


def click_terms(state: WorldState, rows: np.ndarray, actions: np.ndarray) -> ClickTerms:
    """Click terms of ``actions`` for ``rows`` (shapes as in :func:`response_terms`)."""
    return _click(state, rows, actions)[0]


def _click(
    state: WorldState, rows: np.ndarray, actions: np.ndarray
) -> tuple[ClickTerms, np.ndarray, _Levels, np.ndarray]:
    """The click terms, the click logit, the per-level quantities and the relevance bonus."""
    sem, cust, day, mech = state.semantics, state.customers, state.day, state.mech
    offers, messages, channels, act = sem.offers, sem.messages, sem.channels, sem.actions
    e = cust.engagement[rows][:, None]
    F = cust.fatigue[rows][:, None]

    # Per customer and level.
    ready = state.readiness(rows)  # (n, K)
    fitness = np.tanh(ready + mech.relevance_centre) * offers.is_offer
    channel_fit = (
        cust.channel_preference[rows]
        + channels.device_fit.T[cust.device[rows]]
        + channels.engaged[None, :] * e
        + state.drift.channel_drift(day)[None, :]
    )
    preferred = (cust.preferred_hour[rows] + state.drift.hour_shift(day))[:, None]
    slot = sem.timings.hour[None, :]
    at_visit = np.isnan(slot)
    distance = np.where(at_visit, 0.0, model.circular_distance(slot, preferred))
    night = ~at_visit & is_night(np.nan_to_num(slot))

    # Per action.
    k = act.offer[actions]
    m = act.message[actions]
    c = act.channel[actions]
    t = act.timing[actions]
    click_const = (
        state.drift.message_click(day)[act.message]
        + offers.click_appeal[act.offer]
        + act.extra_click
    )[actions]
    relevance = messages.relevance[m]

    bonus = relevance * _pick(fitness, k)
    click_logit = _pick(mech.click_interest * ready, k)
    click_logit += _pick(channel_fit, c)
    click_logit += _pick(model.timing_fit(distance, night, mech) + sem.timings.click, t)
    click_logit += bonus
    click_logit += click_const
    click_logit += mech.click_base + mech.click_engagement * e - mech.fatigue_response * F
    terms = ClickTerms(offer=k, message=m, timing=t, p_click=model.sigmoid(click_logit))
    return terms, click_logit, _Levels(e, F, ready, distance, night), bonus


def response_terms(state: WorldState, rows: np.ndarray, actions: np.ndarray) -> Terms:
    """Response terms of ``actions`` for ``rows``: click and accept probabilities, read
    probability and fatigue increment.

    ``actions`` is ``(n, 1)`` (one action per row) or ``(1, A)`` (every action for every
    row); the terms have the broadcast shape. Everything that depends on the customer and
    one factor is computed per level first (``(n, levels)``) and gathered once.
    """
    sem, cfg, mech = state.semantics, state.config, state.mech
    offers, messages, channels, act = sem.offers, sem.messages, sem.channels, sem.actions
    click, click_logit, levels, bonus = _click(state, rows, actions)
    k, t = click.offer, click.timing
    e, F = levels.engagement, levels.fatigue
    accept_const = (messages.accept[act.message] + act.extra_accept)[actions]
    accept_logit = _pick(levels.ready, k)
    accept_logit += bonus
    accept_logit += accept_const
    accept_logit += (
        mech.accept_base
        + mech.accept_engagement * e
        - mech.accept_fatigue_share * mech.fatigue_response * F
    )
    p_accept_given_click = model.sigmoid(accept_logit) * offers.is_offer[k]
    p_accept = click.p_click * p_accept_given_click
    click_logit += mech.attention_shift
    attention = model.sigmoid(click_logit)
    if cfg.fatigue:
        fatigue_const = (
            channels.fatigue[act.channel] * messages.fatigue[act.message] * act.extra_fatigue
        )[actions]
        unwanted = model.irrelevance_fatigue(levels.ready, offers.is_offer[None, :], mech)
        timing = model.timing_fatigue(levels.distance, levels.night, mech) * sem.timings.fatigue
        d_fatigue = _pick(timing, t)
        d_fatigue *= _pick(unwanted, k)
        d_fatigue *= fatigue_const
    else:
        d_fatigue = np.zeros(click.p_click.shape)
    return Terms(
        offer=k,
        message=click.message,
        timing=t,
        p_click=click.p_click,
        p_accept_given_click=p_accept_given_click,
        p_accept=p_accept,
        attention=attention,
        d_fatigue=d_fatigue,
    )


def contact(state: WorldState, today: Today, rows: np.ndarray, actions: np.ndarray) -> None:
    """Contact each of ``rows`` (distinct, active, not yet contacted today) with its action
    in ``actions`` (valid indices): schedule the responses, apply the effects."""
    cfg, sem, u, cust = state.config, state.semantics, today.draws, state.customers
    offers, messages = sem.offers, sem.messages
    terms = response_terms(state, rows, actions[:, None])
    k, m, t = terms.offer[:, 0], terms.message[:, 0], terms.timing[:, 0]
    clicked = u.click[rows] < terms.p_click[:, 0]
    accepted = clicked & (u.accept[rows] < terms.p_accept_given_click[:, 0])

    # When things happen, in hours after the start of today.
    slot = sem.timings.hour[t]
    local = today.visit_local[rows]
    wait = np.where(np.isnan(slot), 0.1, (np.nan_to_num(slot) - local) % 24.0)
    delivered = today.visit_world[rows] + wait
    click_at = delivered + np.minimum(u.click_delay[rows], 12.0)
    lag = np.where(u.lag_fast[rows] < 0.5, 0.05, np.minimum(u.lag[rows], 72.0))
    accept_at = click_at + lag
    day0 = 24.0 * state.day
    priced = accepted & (offers.price[k] > 0)
    pending = state.pending
    pending.schedule(rows[clicked], CLICK, np.ones(clicked.sum()), day0 + click_at[clicked])
    pending.schedule(rows[accepted], ACCEPT, np.ones(accepted.sum()), day0 + accept_at[accepted])
    pending.schedule(rows[priced], REVENUE, offers.price[k[priced]], day0 + accept_at[priced])

    # Effects on hidden state.
    if cfg.fatigue:
        cust.fatigue[rows] += terms.d_fatigue[:, 0]
    if cfg.nurturing:
        read = terms.attention[:, 0]
        gain = state.mech.nurture_gain * messages.nurture[m] * read
        room = np.maximum(1.0 - cust.nurture[rows] / state.mech.nurture_cap, 0.0)
        cust.nurture[rows] += gain[:, None] * offers.spill[k] * room
        cust.engagement[rows] += messages.engagement[m] * read
    took = rows[accepted]
    took_offer = k[accepted]
    cust.engagement[took] += offers.engagement_gain[took_offer]
    current = cust.active_until[took, took_offer]
    cust.active_until[took, took_offer] = (
        np.maximum(current, state.day) + offers.duration[took_offer]
    )
    cust.extra_spend[took] += offers.price[took_offer]
    cust.contacts_total[rows] += 1
    cust.last_contact[rows] = state.day
    cust.contacted_today[rows] = True
