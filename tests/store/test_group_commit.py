"""Group commit on SQLite and PostgreSQL: concurrent submitters share transactions, each gets
its own result only after the commit, a failed batch fails all of its submitters and stores
nothing, and one statement inserts a decision or finds the earlier one for its request id."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, func
from sqlmodel import Session, select

from experiments.store.database import Database
from experiments.store.decisions import store_decisions
from experiments.store.experiments import create_experiment
from experiments.store.group_commit import GroupCommit
from experiments.store.models import Decision, Experiment
from tests.thread_support import THREADS, run_threads

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def decision_row(request_id: str | None, *, customer: str = "c1") -> dict[str, Any]:
    return Decision(
        id=uuid.uuid4().hex,
        experiment_key="exp",
        customer_id=customer,
        request_id=request_id,
        created_at=T0,
        eligible_count=3,
        action_index=1,
        action={"offer": "b"},
        propensity=0.5,
    ).model_dump()


@pytest.fixture
def database(engine: Engine) -> Database:
    with Session(engine) as session:
        create_experiment(session, experiment=Experiment(key="exp", status="running"))
        session.commit()
    return Database(engine)


def stored_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Decision)).one()


def wait_for_pending(writer: GroupCommit[Any, Any], count: int) -> None:
    """Block the first batch until ``count`` other items wait: the next batch is then exactly
    those, whatever the scheduler does."""
    deadline = time.monotonic() + 30
    while len(writer._pending) < count:  # the test's one look inside
        assert time.monotonic() < deadline, "the other submitters never arrived"
        time.sleep(0.001)


def test_concurrent_submits_share_one_commit(database: Database, engine: Engine) -> None:
    """The first submitter commits alone while the seven others queue; they then share one
    transaction: 2 commits for 8 decisions, each answered None (stored), all 8 rows there."""
    batches: list[int] = []
    commits: list[int] = []
    event.listen(engine, "commit", lambda _connection: commits.append(1))

    def write(session: Session, rows: Sequence[dict[str, Any]]) -> list[Decision | None]:
        if not batches:
            wait_for_pending(writer, THREADS - 1)
        batches.append(len(rows))
        return store_decisions(session, decisions=rows)

    writer: GroupCommit[dict[str, Any], Decision | None] = GroupCommit(database, write)
    results, errors = run_threads(lambda i: writer.submit(decision_row(f"r{i}")))
    assert errors == []
    assert results == [None] * THREADS
    assert batches == [1, THREADS - 1]
    assert len(commits) == 2
    assert stored_count(engine) == THREADS


def test_max_batch_bounds_a_transaction(database: Database) -> None:
    """With ``max_batch=3``, the seven queued items go in batches of 3, 3 and 1."""
    batches: list[int] = []

    def write(session: Session, rows: Sequence[dict[str, Any]]) -> list[Decision | None]:
        if not batches:
            wait_for_pending(writer, THREADS - 1)
        batches.append(len(rows))
        return store_decisions(session, decisions=rows)

    writer: GroupCommit[dict[str, Any], Decision | None] = GroupCommit(database, write, max_batch=3)
    _, errors = run_threads(lambda i: writer.submit(decision_row(f"r{i}")))
    assert errors == []
    assert batches == [1, 3, 3, 1]
    with pytest.raises(ValueError, match="'max_batch' parameter of GroupCommit must be >= 1"):
        GroupCommit(database, write, max_batch=0)


def test_a_failed_batch_fails_each_submitter_and_stores_nothing(
    database: Database, engine: Engine
) -> None:
    """The second batch writes its seven rows, then fails: its seven submitters all get the
    error and none of the rows is stored; the first batch, committed, stays."""
    calls: list[int] = []

    def write(session: Session, rows: Sequence[dict[str, Any]]) -> list[Decision | None]:
        calls.append(len(rows))
        if len(calls) == 1:
            wait_for_pending(writer, THREADS - 1)
            return store_decisions(session, decisions=rows)
        store_decisions(session, decisions=rows)
        raise RuntimeError("disk full")

    writer: GroupCommit[dict[str, Any], Decision | None] = GroupCommit(database, write)
    results, errors = run_threads(lambda i: writer.submit(decision_row(f"r{i}")))
    assert calls == [1, THREADS - 1]
    assert len(errors) == THREADS - 1
    assert all(isinstance(error, RuntimeError) for error in errors)
    assert results.count(None) == THREADS  # the failed ones returned nothing either
    assert stored_count(engine) == 1


def test_write_must_answer_every_item(database: Database, engine: Engine) -> None:
    writer: GroupCommit[dict[str, Any], None] = GroupCommit(
        database, lambda session, rows: store_decisions(session, decisions=rows)[:-1]
    )
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        writer.submit(decision_row("r1"))
    assert stored_count(engine) == 0


def test_store_decisions_inserts_or_returns_the_earlier_answer(
    database: Database, engine: Engine
) -> None:
    """Batch 1 stores r1 and r2. Batch 2: a new r3, a retry of r1, r3 again, and two rows
    without request id: r3 and both id-less rows are stored (None), the retry of r1 gets
    batch 1's row, the second r3 gets the first r3 of its own batch."""
    first = [decision_row("r1"), decision_row("r2")]
    with Session(engine) as session:
        assert store_decisions(session, decisions=first) == [None, None]
        session.commit()
    second = [
        decision_row("r3"),
        decision_row("r1", customer="other"),
        decision_row("r3", customer="other"),
        decision_row(None),
        decision_row(None),
    ]
    with Session(engine, expire_on_commit=False) as session:  # as Database.session()
        answers = store_decisions(session, decisions=second)
        session.commit()
    assert [answers[0], answers[3], answers[4]] == [None, None, None]
    retried, repeated = answers[1], answers[2]
    assert retried is not None
    assert (retried.id, retried.customer_id) == (first[0]["id"], "c1")
    assert repeated is not None
    assert repeated.id == second[0]["id"]
    assert stored_count(engine) == 5
