"""The background learner in-process, on SQLite and PostgreSQL: cadence (batch size or interval,
whichever first), one leader at a time across lock holders, and failures that never stop
decisions."""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, func, select

from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.engine.learner import FailureLog, Learner, LearnerLock
from experiments.engine.outcomes import OutcomeRecorder
from experiments.store.connection import make_engine
from experiments.store.database import Database
from experiments.store.models import Outcome, PolicySnapshot, Reward
from experiments.store.outcomes import insert_outcomes

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
KEY = "nudge"
WINDOW = timedelta(hours=1)
CUSTOMER_NUMBERS = itertools.count()


def spec(*, batch_size: int, interval_seconds: float) -> dict:
    return {
        "key": KEY,
        "factors": {"offer": ["none", "bundle"], "channel": ["sms", "push"]},
        "context": {"tenure": {"type": "numeric", "min": 0}},
        "policy": {"name": "linear_ts", "params": {}},
        "reward": {"kind": "event", "event": "click", "window": "1h"},
        "holdout": {"share": 0.0},
        "learner": {"batch_size": batch_size, "interval_seconds": interval_seconds},
    }


@pytest.fixture(autouse=True)
def fresh_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decisions check for a newer snapshot on every call, not once a second."""
    monkeypatch.setattr("experiments.engine.snapshots.SNAPSHOT_CHECK_SECONDS", 0.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def engines(migrated_database_url: str) -> Iterator[Callable[[], Engine]]:
    """Engines on one migrated database, as separate processes would each have one."""
    made: list[Engine] = []

    def make() -> Engine:
        made.append(make_engine(migrated_database_url))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


def build(engines: Callable[[], Engine], clock: ManualClock, **cadence: float) -> DecisionEngine:
    core = DecisionEngine(Database(engines()), clock=clock, seed=11)
    core.create_experiment(spec(**cadence))
    return core


def decide(core: DecisionEngine, customer: str):
    return core.decide(KEY, DecisionRequest(customer_id=customer, context={"tenure": 4}))


def rewarded_decisions(core: DecisionEngine, clock: ManualClock, count: int) -> None:
    """``count`` decisions whose windows have closed (default reward 0 once joined)."""
    for _ in range(count):
        decide(core, f"c{next(CUSTOMER_NUMBERS)}")
    clock.advance(WINDOW + timedelta(seconds=1))


def snapshot_versions(core: DecisionEngine) -> list[int]:
    with core.database.session() as session:
        stmt = select(PolicySnapshot.version).where(PolicySnapshot.experiment_key == KEY)
        return sorted(session.exec(stmt).all())


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_publishes_once_batch_size_rewards_are_pending(engines, clock: ManualClock) -> None:
    core = build(engines, clock, batch_size=3, interval_seconds=3600)
    learner = Learner(core)
    rewarded_decisions(core, clock, 2)
    assert learner.run_once() == []  # two rewards joined, fewer than the batch, interval far
    assert snapshot_versions(core) == []
    assert decide(core, "early").policy_version == 0

    # A click makes an event reward final before its window closes: the third reward.
    clicked = decide(core, "clicker")
    core.record([OutcomeInput("o-1", "click", 1.0, clock.now(), decision_id=clicked.decision_id)])
    assert learner.run_once() == [1]
    assert learner.status.leader
    assert learner.status.published == 1
    with core.database.session() as session:
        (snapshot,) = session.exec(select(PolicySnapshot)).all()
    assert snapshot.rows_learned == 3
    assert decide(core, "later").policy_version == 1
    assert learner.run_once() == []  # nothing new to learn
    learner.stop()


def test_publishes_after_the_interval_below_batch_size(engines, clock: ManualClock) -> None:
    core = build(engines, clock, batch_size=100, interval_seconds=0.3)
    learner = Learner(core)
    rewarded_decisions(core, clock, 1)
    assert learner.run_once() == []  # the interval starts with the first pending reward
    time.sleep(0.35)
    assert learner.run_once() == [1]
    rewarded_decisions(core, clock, 1)
    assert learner.run_once() == []  # the interval restarts at each publication
    time.sleep(0.35)
    assert learner.run_once() == [2]
    assert snapshot_versions(core) == [1, 2]
    learner.stop()


def test_background_thread_publishes_and_stops(engines, clock: ManualClock) -> None:
    core = build(engines, clock, batch_size=2, interval_seconds=3600)
    learner = Learner(core, poll_seconds=0.02)
    learner.start()
    try:
        assert learner.status.running
        rewarded_decisions(core, clock, 2)
        wait_for(lambda: learner.status.published == 1)
        assert learner.status.leader
        assert learner.status.last_error is None
    finally:
        learner.stop()
    assert not learner.status.running
    assert snapshot_versions(core) == [1]


def test_one_leader_at_a_time_and_the_other_takes_over_on_release(
    engines, clock: ManualClock
) -> None:
    first_core = build(engines, clock, batch_size=1, interval_seconds=3600)
    second_core = DecisionEngine(Database(engines()), clock=clock, seed=12)
    first, second = Learner(first_core), Learner(second_core)
    try:
        for _ in range(2):  # and it stays so: the leader renews, the other keeps failing
            first.run_once()
            second.run_once()
            assert (first.status.leader, second.status.leader) == (True, False)

        rewarded_decisions(first_core, clock, 1)
        assert second.run_once() == []  # due, but not its turn
        assert snapshot_versions(first_core) == []
        assert first.run_once() == [1]

        first.stop()  # releases the lock, and no longer claims the lead
        assert not first.status.leader
        rewarded_decisions(first_core, clock, 1)
        assert second.run_once() == [2]
        assert second.status.leader
        assert first.run_once() == []
        assert not first.status.leader
        assert snapshot_versions(first_core) == [1, 2]
    finally:
        first.stop()
        second.stop()


def test_a_leader_that_vanishes_without_releasing_loses_the_lock(
    engines, clock: ManualClock
) -> None:
    """SQLite: a leader that stops renewing loses its lease when it expires. PostgreSQL: a
    leader whose database session dies (process killed) loses its advisory lock at once."""
    first_core = build(engines, clock, batch_size=1, interval_seconds=3600)
    second_core = DecisionEngine(Database(engines()), clock=clock, seed=12)
    first = LearnerLock(first_core.database, lease_seconds=0.3)
    second = LearnerLock(second_core.database, lease_seconds=0.3)
    try:
        assert first.acquire()
        assert not second.acquire()
        if second.postgres:
            with second_core.database.connect() as connection:
                holders = connection.execute(
                    text(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND database = (SELECT oid FROM pg_database "
                        "WHERE datname = current_database())"
                    )
                ).scalars()
                (pid,) = holders.all()
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        else:
            time.sleep(0.35)  # the leader hung: no renewal within the lease
        wait_for(second.acquire, timeout=5)
        assert not first.acquire()  # the old leader notices and does not lead again
        assert second.acquire()
    finally:
        first.release()
        second.release()


def test_a_failing_learn_keeps_decisions_on_the_last_snapshot(
    engines, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = build(engines, clock, batch_size=1, interval_seconds=3600)
    learner = Learner(core, poll_seconds=0.02)
    rewarded_decisions(core, clock, 1)
    assert learner.run_once() == [1]

    failing = True
    learn = core.learn

    def flaky_learn(key: str, **kwargs: object) -> int | None:
        if failing:
            raise RuntimeError("snapshot store unavailable")
        return learn(key, **kwargs)

    monkeypatch.setattr(core, "learn", flaky_learn)
    rewarded_decisions(core, clock, 1)
    learner.start()
    try:
        wait_for(lambda: learner.status.last_error is not None)
        assert learner.status.last_error == "RuntimeError: snapshot store unavailable"
        assert learner.status.running
        served = decide(core, "during-outage")
        assert served.policy_version == 1
        assert snapshot_versions(core) == [1]

        failing = False
        wait_for(lambda: learner.status.published == 2)
        wait_for(lambda: learner.status.last_error is None)
    finally:
        learner.stop()
    assert snapshot_versions(core) == [1, 2]
    assert decide(core, "after-recovery").policy_version == 2
    with core.database.session() as session:
        assert session.exec(select(func.count()).select_from(PolicySnapshot)).one() == 2


def test_an_outcome_recorded_while_the_leader_joins_is_counted_or_labelled_late(
    engines, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server records a click that occurred inside the window just as the window closes,
    while the leader (another process) joins rewards: the click must either be in the reward
    or be reported as late, never attributed yet ignored.

    The leader joins between the server's attribution and its insert. On PostgreSQL the
    attribution share-locked the decision, so the join waits for the server's commit and then
    counts the click; on SQLite (no row locks) the join commits first and the server, re-checking
    under the write lock, labels the click late.
    """
    server = build(engines, clock, batch_size=1, interval_seconds=3600)
    leader = Learner(DecisionEngine(Database(engines()), clock=clock, seed=12))
    decision = decide(server, "c1")
    occurred = clock.now() + WINDOW - timedelta(minutes=1)
    clock.advance(WINDOW + timedelta(seconds=1))

    joined: list[list[int]] = []
    joins: list[threading.Thread] = []

    def leader_joins_meanwhile(session: Session, **kwargs: object):
        thread = threading.Thread(target=lambda: joined.append(leader.run_once()))
        thread.start()
        thread.join(timeout=0.5)  # SQLite: done; PostgreSQL: waits for this transaction
        joins.append(thread)
        return insert_outcomes(session, **kwargs)

    # The engine imports insert_outcomes by name: patch the name where the engine looks it up.
    monkeypatch.setattr(
        sys.modules[OutcomeRecorder.__module__], "insert_outcomes", leader_joins_meanwhile
    )
    server.record([OutcomeInput("o-1", "click", 1.0, occurred, decision_id=decision.decision_id)])
    joins[0].join(timeout=30)
    assert not joins[0].is_alive()
    leader.stop()
    assert joined == [[1]]
    with server.database.session() as session:
        attribution = session.exec(select(Outcome.attribution)).one()
        reward = session.exec(select(Reward.value)).one()
    assert attribution == "late" or reward == 1.0, (attribution, reward)
    if server.database.dialect == "postgresql":
        assert (attribution, reward) == ("attributed", 1.0)


def test_a_lasting_failure_is_logged_once_with_its_traceback_then_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = FailureLog(every_seconds=3600)

    def fail(description: str) -> None:
        try:
            raise RuntimeError(description)
        except RuntimeError:
            failures.failed(description)

    with caplog.at_level(logging.INFO, logger="engage.learner"):
        for _ in range(50):  # the database down, retried every poll
            fail("OperationalError: connection refused")
        fail("IntegrityError: duplicate key")  # a different cause is logged again
        failures.recovered()
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "learner step failed",
        "learner step failed",
        "learner step works again after: IntegrityError: duplicate key",
    ]
    assert all(record.exc_info for record in caplog.records[:2])

    caplog.clear()
    counted = FailureLog(every_seconds=0)
    with caplog.at_level(logging.INFO, logger="engage.learner"):
        for _ in range(3):
            try:
                raise RuntimeError("down")
            except RuntimeError:
                counted.failed("RuntimeError: down")
    assert [record.getMessage() for record in caplog.records] == [
        "learner step failed",
        "learner step still failing (1 more times): RuntimeError: down",
        "learner step still failing (1 more times): RuntimeError: down",
    ]
