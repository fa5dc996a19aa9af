"""The burn-in's business as usual, replayed into an arm's store before day 0.

With ``[simulation] learn_from_burn_in`` an arm does not start from an empty store: the
burn-in's contacts (:class:`~experiments.simulate.history.BurnInDay`) are logged as the
experiment's decisions, each with the law business as usual drew it from
(:meth:`~experiments.engine.DecisionEngine.log_history`), at the time they happened, and the
events that followed come back through the outcome path as any day's do. Rewards are joined
and learned at the end of every replayed day, so by day 0 the arm's policy has learned from
the log and its customers' contact state holds the burn-in's contacts, as a deployment would
start from its predecessor's campaign log.

The burn-in's responses that would land after day 0 are not in the log (the world drops them),
so the last replayed day's rewards miss those; nobody churns in a burn-in, so an arm's churn
model learns only from decisions made from day 0 on
(:func:`~experiments.engine.churn_labels.matured_churn_labels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np

from experiments.engine import DecisionEngine, DecisionRequest
from experiments.engine.clock import ManualClock
from experiments.runs.routing import OutcomeRouter, block_hours
from experiments.simulate.events import Events
from experiments.simulate.history import BurnInDay
from experiments.spec import ExperimentSpec

__all__ = ["ReplayTarget", "replay_burn_in"]


class ReplayTarget(Protocol):
    """Where a replay goes (an arm's runner): its engine and spec, clock, customer ids
    (``c<i>``), outcome router, the customers who have had a decision, and how it reports a
    day's events."""

    engine: DecisionEngine
    spec: ExperimentSpec
    clock: ManualClock
    customer_ids: np.ndarray
    router: OutcomeRouter
    decided: set[int]

    def record(self, events: Events, day: int, day_start: datetime) -> None: ...


def replay_burn_in(target: ReplayTarget, log: Sequence[BurnInDay], start: datetime) -> int:
    """Replay ``log`` into ``target`` (day ``d`` at ``start + d`` days); returns the number of
    decisions logged. The clock is left at ``start``."""
    key = target.spec.key
    logged = 0
    for day in log:
        day_start = start + timedelta(days=day.day)
        hours = block_hours(day.hours)
        decision_ids: list[str] = [""] * day.customers.size
        for hour in np.unique(hours):
            rows = np.flatnonzero(hours == hour)
            target.clock.set(day_start + timedelta(hours=int(hour)))
            results = target.engine.log_history(
                key,
                [
                    DecisionRequest(
                        customer_id=str(target.customer_ids[day.customers[row]]),
                        context=day.contexts[row],
                    )
                    for row in rows
                ],
                day.actions[rows],
                np.broadcast_to(day.law, (rows.size, day.law.size)),
            )
            for row, result in zip(rows, results, strict=True):
                decision_ids[row] = result.decision_id
        logged += day.customers.size
        target.decided.update(day.customers.tolist())
        target.router.add_day(
            day_start, day.customers, day.hours, decision_ids, target.spec.reward.window
        )
        target.record(day.events, day.day, day_start)
        target.clock.set(day_start + timedelta(days=1))
        target.router.forget_closed(day_start + timedelta(days=1))
        target.engine.join_rewards(key)
        target.engine.learn(key)
    target.clock.set(start)
    return logged
