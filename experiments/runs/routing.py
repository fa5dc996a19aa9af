"""Which decision a simulated event belongs to, as a client that knows its contacts reports it.

The simulator says who did what when, not in answer to which contact. The runner names the
decision of every outcome it reports: the customer's newest decision shown at or before the
event, the rule the engine itself applies to an outcome that names only the customer
(:func:`experiments.store.attribution.latest_open_decision`). An event that happens before a
new decision on the same day therefore goes to the earlier decision, not to the new one
(whose window it precedes, so neither would count it). An event after the window of the
decision it belongs to belongs to none and is not reported.

A decision is *shown* at the customer's visit: the runner logs the decisions of a block of
hours at the block's start (the window starts there), but the customer cannot react to a
contact before the visit, so events between the two belong to the earlier decision.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

__all__ = ["DECISION_BLOCK_HOURS", "OutcomeRouter", "block_hours"]

#: Hours per decision block of a simulated day: visitors are decided at the start of the
#: block they show up in, so their responses follow the logged decision time, and blocks keep
#: the number of engine calls (and commits) per simulated day small.
DECISION_BLOCK_HOURS = 6


def block_hours(visit: np.ndarray) -> np.ndarray:
    """int64 ``(n,)``: the hour of the day each visit (hours ``(n,)``) is decided at, the
    start of its block of :data:`DECISION_BLOCK_HOURS`."""
    return (np.floor(visit / DECISION_BLOCK_HOURS) * DECISION_BLOCK_HOURS).astype(np.int64)


@dataclass
class _Shown:
    times: list[datetime] = field(default_factory=list)
    decisions: list[tuple[str, datetime]] = field(default_factory=list)  # id, window closes


class OutcomeRouter:
    """Each customer's decisions whose windows are open, and the one an event belongs to."""

    def __init__(self) -> None:
        self._by_customer: dict[int, _Shown] = {}
        #: ``(closes_at, customer)`` per decision added: :meth:`forget_closed` visits only the
        #: customers with a window that closed, not every customer with an open one.
        self._closing: list[tuple[datetime, int]] = []

    def add(self, customer: int, shown_at: datetime, decision_id: str, closes_at: datetime) -> None:
        """Note a decision shown to ``customer`` at ``shown_at`` whose window closes at
        ``closes_at``. Decisions of a customer are added in the order they are shown."""
        shown = self._by_customer.setdefault(customer, _Shown())
        if shown.times and shown_at < shown.times[-1]:
            raise ValueError("decisions must be added in the order they are shown")
        shown.times.append(shown_at)
        shown.decisions.append((decision_id, closes_at))
        heapq.heappush(self._closing, (closes_at, customer))

    def add_day(
        self,
        day_start: datetime,
        customers: np.ndarray,
        visit: np.ndarray,
        decision_ids: Sequence[str],
        window: timedelta,
    ) -> None:
        """Note a day's contacts: ``customers[i]`` shown ``decision_ids[i]`` at hour
        ``visit[i]``, logged at the start of its block (:func:`block_hours`), so its window
        closes ``window`` after that."""
        logged = block_hours(visit)
        for customer, hour, block, decision_id in zip(
            customers.tolist(), visit.tolist(), logged.tolist(), decision_ids, strict=True
        ):
            self.add(
                customer,
                day_start + timedelta(hours=hour),
                decision_id,
                day_start + timedelta(hours=block) + window,
            )

    def route(self, customer: int, occurred_at: datetime) -> str | None:
        """The decision an event of ``customer`` at ``occurred_at`` belongs to: the newest
        shown at or before it, if the event is inside its window; else ``None``."""
        shown = self._by_customer.get(customer)
        if shown is None:
            return None
        position = bisect.bisect_right(shown.times, occurred_at) - 1
        if position < 0:
            return None
        decision_id, closes_at = shown.decisions[position]
        return decision_id if occurred_at < closes_at else None

    def forget_closed(self, now: datetime) -> None:
        """Drop decisions whose window closed at or before ``now``; events from ``now`` on
        cannot belong to them (every decision's window has the spec's length, so a closed
        decision is never followed by an open one shown earlier)."""
        closing = self._closing
        while closing and closing[0][0] <= now:
            _, customer = heapq.heappop(closing)
            shown = self._by_customer.get(customer)
            if shown is None:  # an earlier pop of this customer already dropped them all
                continue
            keep = next(
                (index for index, (_, closes) in enumerate(shown.decisions) if closes > now),
                len(shown.decisions),
            )
            if keep == len(shown.decisions):
                del self._by_customer[customer]
            elif keep:
                del shown.times[:keep]
                del shown.decisions[:keep]
