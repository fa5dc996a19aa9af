"""What the burn-in's business as usual did on one day, kept for learners that start from it.

A deployment rarely starts from nothing: the campaigns before it left a log of who was sent
what, when, and what followed. :class:`BurnInDay` is that log for one simulated day of the
burn-in (:class:`~experiments.simulate.world.CustomerWorld` with ``log_burn_in``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.simulate.events import Events


@dataclass(frozen=True, eq=False)
class BurnInDay:
    """One burn-in day: the contacts made, with what the customers saw, and the day's events.

    Attributes:
        day: the day's index (negative: before day 0).
        customers: int64 ``(n,)`` ids of the customers contacted.
        hours: ``(n,)`` hour of the day (world time) of each contact.
        contexts: each customer's context when contacted (JSON-able dicts).
        actions: int64 ``(n,)`` action indices sent.
        law: ``(A,)`` the chance of every action under business as usual, which drew each
            contact's action from it (uniform over the eligible actions).
        events: every event of the day (responses, bookings, purchases).
    """

    day: int
    customers: np.ndarray
    hours: np.ndarray
    contexts: list[dict[str, Any]]
    actions: np.ndarray
    law: np.ndarray
    events: Events
