"""The world's outcome events: their names and codes, one day's events as arrays, and the
queue of responses scheduled for later hours.

Inside the world an event is a part of four aligned arrays ``(customer, code, value, hour)``;
:class:`Events` is what a day hands back, with names instead of codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EVENT_NAMES = ("click", "accept", "revenue", "usage", "churn")
CLICK, ACCEPT, REVENUE, USAGE, CHURN = range(5)
EVENT_ARRAY = np.array(EVENT_NAMES)

#: Events as aligned arrays: customer ids (int64), codes (int8), values, hours.
Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class Events:
    """Events of one day, one row each, sorted by hour then customer.

    Attributes:
        customer: int64 ``(m,)`` customer ids.
        event: ``(m,)`` names, one of :data:`EVENT_NAMES` (numpy unicode strings).
        value: float64 ``(m,)``: 1 for click, accept and churn; currency for revenue; GB
            for usage.
        hour: float64 ``(m,)`` hours after the start of the day, in [0, 24).
    """

    customer: np.ndarray
    event: np.ndarray
    value: np.ndarray
    hour: np.ndarray

    names = EVENT_NAMES

    def __len__(self) -> int:
        return int(self.customer.shape[0])

    @classmethod
    def empty(cls) -> Events:
        return cls(np.zeros(0, np.int64), EVENT_ARRAY[:0], np.zeros(0), np.zeros(0, np.float64))


def part(rows: np.ndarray, code: int, value: np.ndarray, hour: np.ndarray) -> Part:
    """One kind of event for ``rows``, as a part."""
    return rows, np.full(rows.shape[0], code, np.int8), value, hour


class Pending:
    """Responses to contacts, scheduled at absolute hours (``24 x day + hour``), waiting for
    the day they land on."""

    def __init__(self) -> None:
        self._parts: list[Part] = []

    def schedule(self, rows: np.ndarray, code: int, value: np.ndarray, when: np.ndarray) -> None:
        if rows.size:
            self._parts.append(
                (rows.astype(np.int64), np.full(rows.shape[0], code, np.int8), value, when)
            )

    def due(self, day: int, stay: np.ndarray) -> Part | None:
        """The responses landing on ``day`` (hours from the day's start); later ones wait,
        unless their customer leaves today (``stay`` false)."""
        if not self._parts:
            return None
        who, code, value, when = (
            np.concatenate(column) for column in zip(*self._parts, strict=True)
        )
        today = when < 24.0 * (day + 1)
        later = ~today & stay[who]
        self._parts = [(who[later], code[later], value[later], when[later])]
        who, code, value, when = who[today], code[today], value[today], when[today]
        return who, code, value, when - 24.0 * day

    def clear(self) -> None:
        """Forget every scheduled response."""
        self._parts = []
