"""The background learner: one at a time across processes, never in the decision path.

Each server process runs a :class:`Learner` thread, but only the one holding the learner lock
works: on PostgreSQL a session-level advisory lock held on a dedicated connection (released
by the server if the process dies), on SQLite a lease row with an expiry that the holder
renews (another process takes over once the lease runs out). The leader joins due rewards
and publishes a snapshot every ``batch_size`` new rewards or ``interval_seconds``, whichever
comes first, and checks each experiment's guardrails every ``interval_seconds``. Decisions
read snapshots and never wait for it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from experiments.engine.facade import DecisionEngine
from experiments.store.database import Database, SessionLock
from experiments.store.experiments import list_experiments
from experiments.store.leases import acquire_lease, release_lease
from experiments.store.models import ShortTermReward
from experiments.store.rewards import count_unlearned_rewards
from experiments.vocabulary import ExperimentStatus

logger = logging.getLogger("engage.learner")

#: Advisory lock id of the learner on PostgreSQL (any constant shared by all processes).
ADVISORY_LOCK_ID = 0x656E6761  # "enga"
LEASE_NAME = "learner"


class LearnerLock:
    """Cross-process mutual exclusion for the learner: on PostgreSQL the session-level
    advisory lock :data:`ADVISORY_LOCK_ID` (:meth:`Database.try_session_lock`), on SQLite the
    store's lease row :data:`LEASE_NAME`.

    Args:
        database: the database the competing learners share.
        lease_seconds: SQLite only: how long a lease lasts without renewal.
    """

    def __init__(self, database: Database, *, lease_seconds: float = 10.0) -> None:
        self.database = database
        self.holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lease = timedelta(seconds=lease_seconds)
        self._held: SessionLock | None = None
        self.postgres = database.dialect == "postgresql"

    def acquire(self) -> bool:
        """Try to become (or stay) the leader; never blocks."""
        if self.postgres:
            return self._acquire_advisory()
        return self._acquire_lease()

    def _acquire_advisory(self) -> bool:
        if self._held is not None:
            if self._held.alive():
                return True
            self.release()
        self._held = self.database.try_session_lock(ADVISORY_LOCK_ID)
        return self._held is not None

    def _acquire_lease(self) -> bool:
        with self.database.session() as session:
            taken = acquire_lease(
                session,
                name=LEASE_NAME,
                holder=self.holder,
                now=datetime.now(UTC),
                ttl=self.lease,
            )
            session.commit()
        return taken

    def release(self) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None
        elif not self.postgres:
            with contextlib.suppress(Exception), self.database.session() as session:
                release_lease(session, name=LEASE_NAME, holder=self.holder)
                session.commit()


def describe_error(error: BaseException) -> str:
    """``Type: first line of the message``, at most 300 characters: what /healthz shows.

    /healthz needs no key, and a database error's full text carries the statement and its
    parameters (decision and customer ids); the log keeps the whole of it.
    """
    first_line = str(error).strip().split("\n", 1)[0]
    return f"{type(error).__name__}: {first_line}"[:300]


class FailureLog:
    """Logs a failing learner step without flooding the log while the cause lasts.

    The first failure, and any failure that differs from the one before, is logged with its
    traceback; the same failure again (the database down, retried every poll) only as a
    one-line count at most every ``every_seconds``; recovery is logged once.
    """

    def __init__(self, every_seconds: float = 60.0) -> None:
        self.every_seconds = every_seconds
        self._current: str | None = None
        self._repeats = 0
        self._logged_at = 0.0

    def failed(self, description: str) -> None:
        """Call from inside the ``except`` block (the traceback is the active exception's)."""
        now = time.monotonic()
        if description != self._current:
            self._current, self._repeats, self._logged_at = description, 0, now
            logger.exception("learner step failed")
            return
        self._repeats += 1
        if now - self._logged_at >= self.every_seconds:
            logger.error(
                "learner step still failing (%d more times): %s", self._repeats, description
            )
            self._repeats, self._logged_at = 0, now

    def recovered(self) -> None:
        if self._current is not None:
            logger.warning("learner step works again after: %s", self._current)
        self._current, self._repeats = None, 0


@dataclass
class LearnerStatus:
    """What /healthz reports about this process's learner."""

    running: bool = False
    leader: bool = False
    last_run_at: float | None = None
    last_error: str | None = None
    published: int = 0


class Learner:
    """Runs join + learn in a background thread, publishing snapshots on size or time."""

    def __init__(
        self,
        engine: DecisionEngine,
        *,
        poll_seconds: float = 0.5,
        lock: LearnerLock | None = None,
    ) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.lock = lock or LearnerLock(engine.database)
        self.status = LearnerStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_publish: dict[str, float] = {}
        #: Rewards still unlearned after the last learning step (waiting for a next state).
        self._waiting: dict[str, int] = {}
        self._last_check: dict[str, float] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="engage-learner", daemon=True)
        self.status.running = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.lock.release()
        # The lock is gone: /healthz, still answering while the server shuts down, must not
        # show this process as a second leader beside the one that takes over.
        self.status.leader = False
        self.status.running = False

    def _run(self) -> None:
        """Learn until stopped. A failed step is logged with its traceback, shown by /healthz
        (``last_error``) and retried at the next poll; decisions keep the last published
        snapshot meanwhile. Should the thread itself end any other way, the status says so
        (``running`` false, ``last_error`` set) instead of claiming a learner that is gone."""
        repeats = FailureLog()
        try:
            while not self._stop.is_set():
                try:
                    self.run_once()
                    self.status.last_error = None
                    repeats.recovered()
                except Exception as error:  # keep serving from the last good snapshot
                    self.status.last_error = describe_error(error)
                    repeats.failed(self.status.last_error)
                self._stop.wait(self.poll_seconds)
        except BaseException as error:  # the thread's last word: nothing above it would log
            # The lock goes first, so whoever reads the status below may already take the lead.
            self.lock.release()
            self.status.leader = False
            self.status.running = False
            self.status.last_error = f"learner stopped: {describe_error(error)}"
            logger.critical("learner thread died; no snapshot will be published", exc_info=True)
        finally:
            self.status.running = False

    def run_once(self) -> list[int]:
        """One pass over running experiments if this process leads; new versions published."""
        self.status.leader = self.lock.acquire()
        self.status.last_run_at = time.time()
        if not self.status.leader:
            return []
        published = []
        with self.engine.database.session() as session:
            keys = [
                row.key
                for row in list_experiments(session)
                if row.status == ExperimentStatus.RUNNING
            ]
        for key in keys:
            version = self._learn_if_due(key)
            if version is not None:
                published.append(version)
            self._check_if_due(key)
        self.status.published += len(published)
        return published

    def _learn_if_due(self, key: str) -> int | None:
        spec = self.engine.loaded_policy(key).spec
        self.engine.join_rewards(key)
        if spec.strategies is not None:  # the long clock: closed epochs, measured and learned
            self.engine.measure_epochs(key)
            self.engine.learn_strategies(key)
        with self.engine.database.session() as session:
            pending = count_unlearned_rewards(session, experiment_key=key)
            if spec.reward.short_term is not None:
                pending += count_unlearned_rewards(
                    session, experiment_key=key, table=ShortTermReward
                )
        if not pending:
            return None
        last = self._last_publish.setdefault(key, time.monotonic())
        # Rewards a value-function policy left waiting for their next state count once.
        fresh = pending - self._waiting.get(key, 0)
        due = fresh >= spec.learner.batch_size or (
            time.monotonic() - last >= spec.learner.interval_seconds
        )
        if not due:
            return None
        version = self.engine.learn(key)
        self._last_publish[key] = time.monotonic()
        with self.engine.database.session() as session:
            self._waiting[key] = count_unlearned_rewards(session, experiment_key=key)
        return version

    def _check_if_due(self, key: str) -> None:
        """Check the guardrails and the split at most every ``learner.interval_seconds``
        (:meth:`DecisionEngine.check_guardrails`, which may fall back to control): they read
        every customer, too much for each poll, and need no reward to have joined yet."""
        now = time.monotonic()
        interval = self.engine.loaded_policy(key).spec.learner.interval_seconds
        if now - self._last_check.get(key, -math.inf) < interval:
            return
        self._last_check[key] = now
        self.engine.check_guardrails(key)
