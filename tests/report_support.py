"""A small live experiment with rewards over several days, for the report tests (importable as
``report_support``: the ``tests`` folder is on ``sys.path`` through its own conftest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.store.database import Database
from experiments.vocabulary import Group

KEY = "reported"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SPEC = {
    "key": KEY,
    "factors": {"offer": ["none", "bundle", "discount"], "channel": ["sms", "push"]},
    "context": {"tenure": {"type": "numeric", "min": 0}},
    "policy": {"name": "linear_ts", "params": {}},
    "reward": {"kind": "sum", "event": "revenue", "window": "1d"},
    "holdout": {"share": 0.4},
}


def populate(
    database: Engine, *, days: int = 3, customers_per_day: int = 12, holdout_pays: bool = True
) -> None:
    """Decide for ``customers_per_day`` new customers a day, book revenue two hours later for
    two in three (holdout customers pay nothing unless ``holdout_pays``), then close every
    window, join every reward and learn once: nothing is left for a learner to do."""
    clock = ManualClock(START)
    core = DecisionEngine(Database(database), clock=clock, seed=0)
    core.create_experiment(SPEC)
    for day in range(days):
        made = [
            core.decide(
                KEY, DecisionRequest(customer_id=f"c{day}-{index}", context={"tenure": index})
            )
            for index in range(customers_per_day)
        ]
        clock.advance(timedelta(hours=2))
        core.record(
            OutcomeInput(
                outcome_id=f"o{day}-{index}",
                event="revenue",
                value=float(1 + (7 * index + day) % 5),
                occurred_at=clock.now(),
                decision_id=result.decision_id,
            )
            for index, result in enumerate(made)
            if index % 3 != 1 and (holdout_pays or result.group == Group.TREATMENT)
        )
        clock.advance(timedelta(hours=22))
    clock.advance(timedelta(days=1))
    core.join_rewards(KEY)
    core.learn(KEY)
