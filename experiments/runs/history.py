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

import numpy as np

from experiments.engine import DecisionRequest
from experiments.engine.decide import DecisionResult
from experiments.runs.arm_day import (
    ArmDay,
    BlockDecider,
    close_day,
    decide_in_blocks,
    note_contacts,
)
from experiments.simulate.history import BurnInDay

__all__ = ["replay_burn_in"]


def replay_burn_in(arm: ArmDay, log: Sequence[BurnInDay], start: datetime) -> int:
    """Replay ``log`` into ``arm`` (day ``d`` at ``start + d`` days); returns the number of
    decisions logged. The clock is left at ``start``."""
    key = arm.spec.key
    logged = 0
    for day in log:
        day_start = start + timedelta(days=day.day)
        results = decide_in_blocks(
            arm, day_start, day.customers, day.hours, day.contexts, _from_log(arm, key, day)
        )
        note_contacts(
            arm, day_start, day.customers, day.hours, [result.decision_id for result in results]
        )
        arm.record(day.events, day.day, day_start)
        close_day(arm, day_start)
        logged += day.customers.size
    arm.clock.set(start)
    return logged


def _from_log(arm: ArmDay, key: str, day: BurnInDay) -> BlockDecider:
    """Logs a block of ``day``'s contacts as they happened, each with the law it was drawn
    from."""

    def log_block(requests: list[DecisionRequest], rows: np.ndarray) -> list[DecisionResult]:
        law = np.broadcast_to(day.law, (rows.size, day.law.size))
        return arm.engine.log_history(key, requests, day.actions[rows], law)

    return log_block
