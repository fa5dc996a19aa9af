"""The engine under concurrent callers (threads of one process, as the server's thread pool
runs them), on SQLite and PostgreSQL: decisions and outcomes share commits (group commit) and
stay exactly idempotent."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.store import models
from experiments.store.database import Database
from tests.experiments.test_engine import START, spec_dict
from tests.thread_support import THREADS, run_threads

ROUNDS = 10


def count(engine: Engine, model: type[models.Decision] | type[models.Outcome]) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_concurrent_retries_get_the_first_answer(engine: Engine) -> None:
    """Each round, eight threads send the same request id at once: one decision is stored,
    all eight answers are that decision (same id, action, propensity), exactly one is not a
    replay; and each thread's own request ids are stored once each."""
    core = DecisionEngine(Database(engine), clock=ManualClock(START), seed=3)
    core.create_experiment(spec_dict())
    context = {"tenure": 3, "plan": "prepaid"}

    def work(thread: int) -> list[Any]:
        answers = []
        for round_ in range(ROUNDS):
            shared = DecisionRequest("c1", context, request_id=f"shared-{round_}")
            answers.append(core.decide("promo", shared))
            own = DecisionRequest(f"c{thread}", context, request_id=f"own-{thread}-{round_}")
            assert not core.decide("promo", own).replayed
        return answers

    results, errors = run_threads(work)
    assert errors == []
    for round_ in range(ROUNDS):
        answers = [results[thread][round_] for thread in range(THREADS)]
        assert len({answer.decision_id for answer in answers}) == 1
        assert len({(str(answer.action), answer.propensity) for answer in answers}) == 1
        assert sum(not answer.replayed for answer in answers) == 1
    assert count(engine, models.Decision) == ROUNDS + THREADS * ROUNDS


def test_concurrent_outcomes_are_counted_once(engine: Engine) -> None:
    """Eight threads report the same five outcome ids (each in its own order) plus one of
    their own, ten times: of the 5 + 8 ids, each is accepted exactly once over all calls, and
    every call accounts for each of its items as accepted or duplicate."""
    clock = ManualClock(START)
    core = DecisionEngine(Database(engine), clock=clock, seed=3)
    core.create_experiment(spec_dict())
    decision = core.decide("promo", DecisionRequest("c1", {"tenure": 3, "plan": "prepaid"}))
    at = START + timedelta(minutes=1)

    def outcome(outcome_id: str) -> OutcomeInput:
        return OutcomeInput(outcome_id, "revenue", 2.0, at, decision_id=decision.decision_id)

    def work(thread: int) -> list[tuple[int, int]]:
        shared = [f"s{(thread + k) % 5}" for k in range(5)]
        counts = []
        for _ in range(ROUNDS):
            result = core.record([outcome(i) for i in [*shared, f"own-{thread}"]])
            counts.append((result.accepted, result.duplicates))
        return counts

    results, errors = run_threads(work)
    assert errors == []
    assert all(accepted + duplicates == 6 for calls in results for accepted, duplicates in calls)
    assert sum(accepted for calls in results for accepted, _ in calls) == 5 + THREADS
    assert count(engine, models.Outcome) == 5 + THREADS
    with Session(engine) as session:
        labels = Counter(session.exec(select(models.Outcome.attribution)).all())
    assert labels == {"attributed": 5 + THREADS}
