"""Deciding: a decision is answered only after it is stored, and a retried request gets its
first answer.

:class:`Decider` loads what planning needs (the cached policy, the customers' recent contacts),
plans in memory (:func:`~experiments.engine.planning.plan_decisions`), then stores the planned
rows in one transaction and answers from them. A single decision shares its transaction and
commit with the concurrent decisions of the process (group commit), and is inserted or
replayed by one statement. :class:`DecisionResult` is the one shape of an
answer, built by :meth:`DecisionResult.of` from a planned row or a stored one alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from experiments.engine.clock import Clock
from experiments.engine.customer_state import customer_state
from experiments.engine.planning import (
    DecisionRequest,
    Encoded,
    PlannedDecision,
    encode_batch,
    encode_single,
    plan_decisions,
    plan_history,
)
from experiments.engine.reward import window_closes_at
from experiments.engine.snapshots import LoadedPolicy, PolicyCache
from experiments.engine.strategies import StrategyAssigner
from experiments.errors import ConflictError, InvalidInputError, NotFoundError
from experiments.store import models
from experiments.store.database import Database
from experiments.store.decisions import (
    activate_decision,
    count_recent_decisions_by_customer,
    get_decision,
    insert_decisions,
    store_decisions,
)
from experiments.store.group_commit import GroupCommit
from experiments.vocabulary import DecisionStatus, ExperimentStatus, Group


@dataclass(frozen=True)
class DecisionResult:
    """What the engine decided, as logged."""

    decision_id: str
    action: dict[str, str] | None
    action_index: int | None
    propensity: float | None
    group: Group
    policy_version: int
    deferred: bool = False
    suppressed_reason: str | None = None
    replayed: bool = False
    #: The customer's strategy for the epoch (strategy experiments; None otherwise).
    strategy: str | None = None

    @classmethod
    def of(
        cls, row: PlannedDecision | models.Decision, *, replayed: bool = False
    ) -> DecisionResult:
        """The answer for a decision row; ``deferred`` while it awaits activation."""
        return cls(
            decision_id=row.id,
            action=row.action,
            action_index=row.action_index,
            propensity=row.propensity,
            group=Group(row.group),
            policy_version=row.policy_version,
            deferred=row.deferred and row.activated_at is None,
            suppressed_reason=row.suppressed_reason,
            replayed=replayed,
            strategy=row.strategy,
        )


class Decider:
    """Decide and activate over one database.

    Args:
        database: where decisions are stored.
        clock: the source of decision times.
        policies: the process's cache of loaded policies.
        strategies: assigns the customers' strategies (experiments with ``[strategies]``).
    """

    def __init__(
        self,
        database: Database,
        clock: Clock,
        policies: PolicyCache,
        strategies: StrategyAssigner | None = None,
    ) -> None:
        self._database = database
        self._clock = clock
        self._policies = policies
        self._strategies = strategies
        self._writer: GroupCommit[Mapping[str, Any], models.Decision | None] = GroupCommit(
            database, lambda session, rows: store_decisions(session, decisions=rows)
        )

    def decide(self, key: str, request: DecisionRequest) -> DecisionResult:
        """Choose an action for one customer and store it before answering.

        A request whose ``request_id`` was seen before gets the first answer again. The
        decision is planned in memory first, then stored by one statement that inserts it or
        finds the earlier answer, in a transaction shared with the concurrent requests of this
        process (:class:`~experiments.store.group_commit.GroupCommit`): the answer goes out
        after that commit.
        """
        loaded = self._running_policy(key)
        encoded = encode_single(loaded.spec, request)
        (planned,) = self._plan(key, loaded, [request], encoded)
        earlier = self._writer.submit(planned.as_row())
        if earlier is not None:
            return DecisionResult.of(earlier, replayed=True)
        return DecisionResult.of(planned)

    def decide_many(self, key: str, requests: Sequence[DecisionRequest]) -> list[DecisionResult]:
        """Decide for a batch of customers in one transaction (simulations, bulk scoring).

        Same rules as :meth:`decide`; requests must not carry request ids (bulk calls are not
        retried one by one). Context errors name ``contexts[i].<field>``.
        """
        if any(request.request_id is not None for request in requests):
            raise InvalidInputError(
                "decide_many takes no request ids; use decide for retried requests",
                field="request_id",
            )
        if not requests:
            return []
        loaded = self._running_policy(key)
        planned = self._plan(key, loaded, requests, encode_batch(loaded.spec, requests))
        return self._store_batch(planned)

    def log_history(
        self,
        key: str,
        requests: Sequence[DecisionRequest],
        actions: np.ndarray,
        probabilities: np.ndarray,
    ) -> list[DecisionResult]:
        """Store decisions another system made at the clock's time, with the laws they were
        drawn from (:func:`~experiments.engine.planning.plan_history`), so this experiment's
        learners and contact state start from a business-as-usual log. The customers' state
        is appended and logged as for a decision of the policy's; no contact rule applies.
        """
        if not requests:
            return []
        loaded = self._running_policy(key)
        now = self._clock.now()
        planned = self._with_state(
            key,
            loaded,
            requests,
            encode_batch(loaded.spec, requests),
            now,
            lambda encoded: plan_history(
                key,
                loaded,
                requests,
                encoded,
                now=now,
                actions=actions,
                probabilities=probabilities,
            ),
        )
        return self._store_batch(planned)

    def _store_batch(self, planned: list[PlannedDecision]) -> list[DecisionResult]:
        """Insert a batch's rows in one transaction and answer from them."""
        with self._database.session() as session:
            insert_decisions(session, decisions=[row.as_row() for row in planned])
            session.commit()
        return [DecisionResult.of(row) for row in planned]

    def activate(self, decision_id: str) -> DecisionResult:
        """Activate a deferred decision: its reward window starts now (idempotent)."""
        now = self._clock.now()
        with self._database.session() as session:
            row = get_decision(session, decision_id=decision_id)
            if row is None:
                raise NotFoundError(f"unknown decision '{decision_id}'", field="decision_id")
            if not row.deferred:
                raise ConflictError(
                    f"decision '{decision_id}' was not deferred", field="decision_id"
                )
            if row.activated_at is None:
                if row.status != DecisionStatus.OPEN:
                    raise ConflictError(
                        f"decision '{decision_id}' is {row.status}", field="decision_id"
                    )
                spec = self._policies.get(row.experiment_key).spec
                activate_decision(
                    session,
                    decision_id=decision_id,
                    activated_at=now,
                    window_closes_at=window_closes_at(spec.reward, now),
                )
                session.commit()
                session.refresh(row)
            return DecisionResult.of(row)

    def _running_policy(self, key: str) -> LoadedPolicy:
        loaded = self._policies.get(key)
        if loaded.status not in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED):
            raise ConflictError(
                f"experiment '{key}' is {loaded.status}, not running", field="experiment"
            )
        return loaded

    def _plan(
        self,
        key: str,
        loaded: LoadedPolicy,
        requests: Sequence[DecisionRequest],
        encoded: Encoded,
    ) -> list[PlannedDecision]:
        """Load the customers' recent contacts when a contact limit applies, their strategies
        when the experiment has them, and their state when the spec adds one (appended to the
        contexts and logged), then plan."""
        now = self._clock.now()
        contact = loaded.spec.contact
        recent: dict[str, int] = {}
        if contact.max_decisions is not None:
            recent = self._recent_contacts(key, requests, since=now - contact.window)
        strategies = None
        if self._strategies is not None:
            strategies = self._strategies.plan(
                key,
                loaded,
                [request.context for request in requests],
                [request.customer_id for request in requests],
                now=now,
            )
        return self._with_state(
            key,
            loaded,
            requests,
            encoded,
            now,
            lambda augmented: plan_decisions(
                key, loaded, requests, augmented, now=now, recent=recent, strategies=strategies
            ),
        )

    def _with_state(
        self,
        key: str,
        loaded: LoadedPolicy,
        requests: Sequence[DecisionRequest],
        encoded: Encoded,
        now: datetime,
        plan: Callable[[Encoded], list[PlannedDecision]],
    ) -> list[PlannedDecision]:
        """``plan`` the requests with the customers' state appended to their contexts when
        the spec adds one, and logged in each row's context."""
        state = customer_state(self._database, key, loaded.spec, requests, now)
        if state is not None:
            encoded = state.augment(encoded)
        planned = plan(encoded)
        return planned if state is None else state.log(planned)

    def _recent_contacts(
        self, key: str, requests: Sequence[DecisionRequest], *, since: datetime
    ) -> dict[str, int]:
        with self._database.session() as session:
            return count_recent_decisions_by_customer(
                session,
                experiment_key=key,
                customer_ids=[request.customer_id for request in requests],
                since=since,
            )
