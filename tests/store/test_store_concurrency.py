"""Concurrent writers: on SQLite (WAL, busy timeout) no "database is locked", on PostgreSQL no
deadlock; idempotency holds across threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from experiments.store.decisions import count_recent_decisions_by_customer, insert_decision
from experiments.store.experiments import create_experiment
from experiments.store.models import Decision, Experiment, Outcome
from experiments.store.outcomes import insert_outcomes

T0 = datetime(2025, 1, 6, tzinfo=UTC)
THREADS = 4
ROUNDS = 40
SHARED_OUTCOMES = 30


def test_concurrent_writers(engine: Engine) -> None:
    """Each thread runs the decide pattern (read the contact count, then write a decision) and
    posts overlapping outcome batches in its own order; every transaction commits separately."""
    with Session(engine) as session:
        create_experiment(session, experiment=Experiment(key="exp", status="running"))
        session.commit()

    errors: list[BaseException] = []
    accepted = [0] * THREADS
    start = threading.Barrier(THREADS)

    def work(worker: int) -> None:
        try:
            start.wait()
            for round_ in range(ROUNDS):
                now = T0 + timedelta(seconds=round_)
                with Session(engine) as session:
                    count_recent_decisions_by_customer(
                        session,
                        experiment_key="exp",
                        customer_ids=[f"c{round_ % 5}"],
                        since=now - timedelta(days=1),
                    )
                    insert_decision(
                        session,
                        decision=Decision(
                            experiment_key="exp",
                            customer_id=f"c{round_ % 5}",
                            created_at=now,
                            eligible_count=3,
                            action_index=worker % 3,
                            request_id=f"w{worker}-r{round_}",
                        ),
                    )
                    session.commit()
                ids = [f"o{(round_ + k) % SHARED_OUTCOMES}" for k in range(3)]
                if worker % 2:
                    ids.reverse()
                with Session(engine) as session:
                    result = insert_outcomes(
                        session,
                        outcomes=[
                            {"outcome_id": i, "event": "click", "occurred_at": now} for i in ids
                        ],
                    )
                    session.commit()
                accepted[worker] += result.accepted
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Decision)).one() == THREADS * ROUNDS
        assert session.exec(select(func.count()).select_from(Outcome)).one() == SHARED_OUTCOMES
    assert sum(accepted) == SHARED_OUTCOMES
