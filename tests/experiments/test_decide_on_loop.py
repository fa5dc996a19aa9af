"""The service's decide path on the event loop: planned in memory, stored in shared batches
(:meth:`DecisionEngine.plan_in_memory`, :meth:`DecisionEngine.store_planned`,
:class:`experiments.service.batching.LoopBatcher`), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine

from experiments.engine import DecisionEngine, DecisionRequest
from experiments.engine.clock import ManualClock
from experiments.errors import ConflictError
from experiments.service.batching import LoopBatcher
from experiments.store.database import Database
from tests.experiments.test_engine import START, spec_dict

CONTEXT = {"tenure": 3, "plan": "prepaid"}


def test_planned_in_memory_only_while_the_cached_policy_is_trusted(engine: Engine) -> None:
    """No cached policy yet: None (decide reads the store). Once decide has cached it, the
    plan is made in memory, and stored it answers as decide does; a repeated request id gets
    the first answer, replayed."""
    core = DecisionEngine(Database(engine), clock=ManualClock(START), seed=3)
    core.create_experiment(spec_dict())
    first = DecisionRequest("c1", CONTEXT, request_id="r1")
    assert core.plan_in_memory("promo", first) is None
    answer = core.decide("promo", first)
    again = core.plan_in_memory("promo", first)
    assert again is not None
    (replayed,) = core.store_planned([again])
    assert replayed.replayed
    assert (replayed.decision_id, replayed.action) == (answer.decision_id, answer.action)
    fresh = core.plan_in_memory("promo", DecisionRequest("c2", CONTEXT, request_id="r2"))
    assert fresh is not None
    (stored,) = core.store_planned([fresh])
    assert not stored.replayed
    assert stored.decision_id == fresh.id


def test_a_stopped_experiment_is_refused_in_memory_too(engine: Engine) -> None:
    core = DecisionEngine(Database(engine), clock=ManualClock(START), seed=3)
    core.create_experiment(spec_dict())
    core.decide("promo", DecisionRequest("c1", CONTEXT))
    core.set_status("promo", "stopped")
    core.loaded_policy("promo")  # cached again, now stopped
    with pytest.raises(ConflictError, match="not running"):
        core.plan_in_memory("promo", DecisionRequest("c1", CONTEXT))


def test_a_contact_limit_is_planned_with_the_store(engine: Engine) -> None:
    """A contact limit counts the customer's recent decisions in the store: never in memory."""
    core = DecisionEngine(Database(engine), clock=ManualClock(START), seed=3)
    core.create_experiment(spec_dict(contact={"max_decisions": 1, "window": "7d"}))
    core.decide("promo", DecisionRequest("c1", CONTEXT))
    assert core.plan_in_memory("promo", DecisionRequest("c1", CONTEXT)) is None


def test_loop_batcher_shares_writes_and_fails_each_waiter_of_a_failed_batch() -> None:
    """Eight submits queued before the writer runs go in one call, in order; a write that
    raises fails each of its waiters, and the next batch goes on."""
    batches: list[list[int]] = []

    def write(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if 13 in items:
            raise RuntimeError("disk full")
        return [item * 10 for item in items]

    async def run() -> None:
        batcher: LoopBatcher[int, int] = LoopBatcher(write)
        assert await asyncio.gather(*(batcher.submit(item) for item in range(8))) == [
            item * 10 for item in range(8)
        ]
        assert batches == [list(range(8))]
        failed = await asyncio.gather(
            batcher.submit(12), batcher.submit(13), return_exceptions=True
        )
        assert [type(result) for result in failed] == [RuntimeError, RuntimeError]
        assert await batcher.submit(14) == 140

    asyncio.run(run())
    with pytest.raises(ValueError, match="'max_batch' parameter of LoopBatcher must be >= 1"):
        LoopBatcher(write, max_batch=0)
