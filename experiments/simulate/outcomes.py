"""The day's outcome events as the world reports them, and the truth kept from them.

A day's events are the settlement's (purchases, renewals, bookings), the responses to
earlier contacts that land today, and churn; nothing is reported from a customer at or after
the hour they leave. Events are sorted by hour, then customer, then kind. The per-customer
totals behind :meth:`~experiments.simulate.world.CustomerWorld.kpis` are counted from the
reported events themselves, so the truth is what a reader of the events would see.
"""

from __future__ import annotations

import numpy as np

from experiments.simulate.dynamics import Settlement
from experiments.simulate.events import (
    ACCEPT,
    CHURN,
    CLICK,
    EVENT_ARRAY,
    REVENUE,
    Events,
    part,
)
from experiments.simulate.state import WorldState


def day_events(state: WorldState, settlement: Settlement) -> Events:
    """The day's events (``settlement``'s, today's responses, churn), counted into the
    customers' totals."""
    churn, churn_hour = settlement.churn, settlement.churn_hour
    parts = list(settlement.parts)
    due = state.pending.due(state.day, settlement.stay)
    if due is not None:
        parts.append(due)
    who_churn = np.flatnonzero(churn)
    parts.append(part(who_churn, CHURN, np.ones(who_churn.shape[0]), churn_hour[churn]))
    who, code, value, hour = (np.concatenate(column) for column in zip(*parts, strict=True))
    leaves = churn[who] & (hour >= churn_hour[who]) & (code != CHURN)
    keep = settlement.alive[who] & ~leaves
    who, code, value, hour = who[keep], code[keep], value[keep], hour[keep]
    hour = np.minimum(hour, np.nextafter(24.0, 0.0))
    order = np.lexsort((code, who, hour))
    who, code, value, hour = who[order], code[order], value[order], hour[order]
    _count(state, who, code, value)
    return Events(who, EVENT_ARRAY[code], value.astype(np.float64), hour)


def _count(state: WorldState, who: np.ndarray, code: np.ndarray, value: np.ndarray) -> None:
    """Add the events to the customers' revenue, click and accept totals."""
    c, n = state.customers, state.config.n_customers
    is_revenue = code == REVENUE
    c.revenue_total += np.bincount(who[is_revenue], value[is_revenue], minlength=n)
    c.clicks_total += np.bincount(who[code == CLICK], minlength=n)
    c.accepts_total += np.bincount(who[code == ACCEPT], minlength=n)
