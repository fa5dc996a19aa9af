"""Contact rules in plain numbers, as engage's engine applies them, and a ledger that keeps
them for a simulated policy (the oracles, the burn-in's business as usual).

:class:`ContactRules` is at most ``max_decisions`` decisions per customer in any
``per_days`` consecutive days, and none while the customer's local hour at the visit is in
``quiet_hours = (start, end)``: the period ``[start, end)``, wrapping midnight when ``start >
end`` (``(22, 8)`` is quiet from 22:00 to 07:59), judged on the whole hour as the engine judges
its ``local_hour`` context field. The engine counts decisions in the 7 x 24 hours before
``now``; a simulated day has no finer clock, so here a decision counts for the day it was made
and the ``per_days - 1`` days after (never more than ``max_decisions`` in any ``per_days``
consecutive days).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from experiments.simulate.checks import check_value


@dataclass(frozen=True)
class ContactRules:
    """Contact rules (a value; hashable); the defaults are no rules at all.

    Attributes:
        max_decisions: at most this many decisions per customer in any ``per_days``
            consecutive days (``None``: no limit).
        per_days: the length of that window, in days.
        quiet_hours: ``(start, end)`` whole local hours with no decisions (``None``: none).
    """

    max_decisions: int | None = None
    per_days: int = 7
    quiet_hours: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.max_decisions is not None:
            check_value("ContactRules", "max_decisions", self.max_decisions, int, 1, math.inf)
        check_value("ContactRules", "per_days", self.per_days, int, 1, 366)
        if self.quiet_hours is not None:
            hours = self.quiet_hours
            if not isinstance(hours, tuple) or len(hours) != 2:
                raise ValueError(
                    "The 'quiet_hours' parameter of ContactRules must be a (start, end) pair "
                    f"of hours in [0, 23] or None. Got {hours!r}."
                )
            for hour in hours:
                check_value("ContactRules", "quiet_hours", hour, int, 0, 23)
            if hours[0] == hours[1]:
                raise ValueError(
                    "The 'quiet_hours' parameter of ContactRules must have start != end. "
                    f"Got {hours!r}."
                )

    @property
    def any(self) -> bool:
        """Whether any rule applies."""
        return self.max_decisions is not None or self.quiet_hours is not None

    def is_quiet(self, local_hour: np.ndarray) -> np.ndarray:
        """Whether each local hour (fractions allowed) falls in the quiet hours."""
        hour = np.floor(np.asarray(local_hour, dtype=np.float64)) % 24
        if self.quiet_hours is None:
            return np.zeros(hour.shape, dtype=bool)
        start, end = self.quiet_hours
        if start < end:
            return (hour >= start) & (hour < end)
        return (hour >= start) | (hour < end)


class ContactLedger:
    """The decisions made under a :class:`ContactRules`, per customer and day, and which
    customers the rules let a policy decide for today."""

    def __init__(self, rules: ContactRules, n_customers: int) -> None:
        self.rules = rules
        window = rules.per_days
        self._made = np.zeros((window, n_customers), dtype=np.int8)  # ring of days
        self._row_day = np.full(window, np.iinfo(np.int64).min // 2, dtype=np.int64)

    def _row(self, day: int) -> int:
        row = day % self.rules.per_days
        if self._row_day[row] != day:  # the row held a day out of the window: clear it
            self._made[row] = 0
            self._row_day[row] = day
        return row

    def allows(self, customers: np.ndarray, local_hours: np.ndarray, day: int) -> np.ndarray:
        """Bool per customer: may a decision be made for them on ``day`` at their visit's
        ``local_hours``? (Call :meth:`record` for the decisions made.)"""
        allowed = ~self.rules.is_quiet(local_hours)
        if self.rules.max_decisions is not None:
            today = self._row(day)
            recent = (self._row_day > day - self.rules.per_days) & (self._row_day < day)
            recent[today] = False
            counts = self._made[np.ix_(np.flatnonzero(recent), customers)].sum(axis=0)
            allowed &= counts < self.rules.max_decisions
        return allowed

    def record(self, customers: np.ndarray, day: int) -> None:
        """Note a decision for each of ``customers`` (distinct) on ``day``."""
        if self.rules.max_decisions is not None:
            self._made[self._row(day), customers] = 1
