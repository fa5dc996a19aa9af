"""The engine's side of one simulated day of an arm, shared by the days of a run and the
replay of the burn-in's log before them (:mod:`experiments.runs.history`).

A day's contacts are logged in blocks of hours (:func:`decide_in_blocks`), each contact is
noted for the outcome router (:func:`note_contacts`), the day's events are reported
(``ArmDay.record``), and the day ends with its windows closed, rewards joined and learned
(:func:`close_day`). What each contact is (the policy's choice, or the log's) is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from experiments.engine import DecisionEngine, DecisionRequest
from experiments.engine.clock import ManualClock
from experiments.engine.decide import DecisionResult
from experiments.runs.routing import OutcomeRouter, block_hours
from experiments.spec import ExperimentSpec

__all__ = ["ArmDay", "BlockDecider", "close_day", "decide_in_blocks", "note_contacts"]

#: Logs one block's decisions: ``(requests, rows)`` -> one result per request, where ``rows``
#: are the requests' positions in the day's arrays.
BlockDecider = Callable[[list[DecisionRequest], np.ndarray], Sequence[DecisionResult]]


class ArmDay(Protocol):
    """An arm's runner as a day sees it: its engine and spec, clock, customer ids (``c<i>``),
    outcome router, the customers who have had a decision, and how it reports a day's
    events."""

    engine: DecisionEngine
    spec: ExperimentSpec
    clock: ManualClock
    customer_ids: np.ndarray
    router: OutcomeRouter
    decided: set[int]

    def record(self, events: Any, day: int, day_start: datetime) -> None: ...


def decide_in_blocks(
    arm: ArmDay,
    day_start: datetime,
    customers: np.ndarray,
    visit: np.ndarray,
    contexts: Sequence[dict[str, Any]],
    decide: BlockDecider,
) -> list[DecisionResult]:
    """Log the day's decisions for ``customers`` (visiting at hours ``visit``, with
    ``contexts``), each at the start of its block of hours (:func:`block_hours`), so its
    responses follow the logged decision time; ``decide`` is called once per block. Returns
    the results in the customers' order."""
    hours = block_hours(visit)
    results: list[DecisionResult | None] = [None] * customers.size
    for hour in np.unique(hours):
        rows = np.flatnonzero(hours == hour)
        arm.clock.set(day_start + timedelta(hours=int(hour)))
        requests = [
            DecisionRequest(
                customer_id=str(arm.customer_ids[customers[row]]), context=contexts[row]
            )
            for row in rows.tolist()
        ]
        for row, result in zip(rows.tolist(), decide(requests, rows), strict=True):
            results[row] = result
    return [result for result in results if result is not None]


def note_contacts(
    arm: ArmDay,
    day_start: datetime,
    customers: np.ndarray,
    visit: np.ndarray,
    decision_ids: Sequence[str],
) -> None:
    """Note the day's contacts: their customers have had a decision, and the router routes
    their events (:meth:`OutcomeRouter.add_day`)."""
    arm.decided.update(customers.tolist())
    arm.router.add_day(day_start, customers, visit, decision_ids, arm.spec.reward.window)


def close_day(arm: ArmDay, day_start: datetime) -> tuple[int, int | None]:
    """End the day that started at ``day_start``: the clock moves to the next day, windows
    closed by then are forgotten, rewards are joined and learned. Returns the rewards joined
    and the new policy version (None: nothing learned)."""
    next_day = day_start + timedelta(days=1)
    arm.clock.set(next_day)
    arm.router.forget_closed(next_day)
    return arm.engine.join_rewards(arm.spec.key), arm.engine.learn(arm.spec.key)
