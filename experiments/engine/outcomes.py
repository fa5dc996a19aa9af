"""Outcomes: store reported events, idempotent by ``outcome_id``, each labelled with how it was
attributed to a decision.

An outcome names its decision, or names the experiment and the customer (then it goes to the
customer's latest open decision made before the event). Nothing is dropped: an outcome naming
an unknown decision, arriving after its decision's window or reward, or matching no decision is
stored with its :class:`~experiments.vocabulary.Attribution` label for the report: one that
names its decision but occurred before the decision's reward window opened is
``before_decision``. Only ``attributed`` outcomes count in rewards
(:mod:`experiments.engine.join`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from experiments.engine.clock import Clock
from experiments.errors import InvalidInputError
from experiments.store import models
from experiments.store.attribution import (
    DecisionHead,
    decision_heads,
    latest_open_decisions,
    locks_rows,
)
from experiments.store.database import Database
from experiments.store.decisions import lock_decision_statuses
from experiments.store.group_commit import GroupCommit
from experiments.store.outcomes import insert_outcomes, mark_outcomes_late
from experiments.vocabulary import Attribution, DecisionStatus


@dataclass(frozen=True)
class OutcomeInput:
    """An outcome event as a client reports it."""

    outcome_id: str
    event: str
    value: float
    occurred_at: datetime
    decision_id: str | None = None
    experiment: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True)
class RecordResult:
    """How many outcomes were stored, and how many were repeats of stored ones."""

    accepted: int
    duplicates: int


def before_window(opens: datetime | None, *, occurred: datetime, received: datetime) -> bool:
    """Whether an outcome that ``occurred`` (and was ``received``) precedes the reward window
    of its decision, which ``opens`` at the decision's creation or activation.

    The reward counts only outcomes in ``[opens, opens + window)``
    (:func:`~experiments.engine.reward.evaluate_reward`). A deferred decision not yet activated
    (``opens`` is ``None``) opens its window at its activation, after ``received``: an outcome
    that occurred before it was received cannot fall in that window.
    """
    if opens is None:
        return occurred < received
    return occurred < opens


def attribute(
    session: Session,
    outcome: OutcomeInput,
    received: datetime,
    named: Mapping[str, DecisionHead],
    by_customer: Mapping[tuple[str, str, datetime], DecisionHead],
) -> dict[str, Any]:
    """The outcome row to store: ``outcome`` with its decision and its attribution label.

    ``named`` holds the decisions the batch names by id; ``by_customer`` the customer's latest
    open decision in the experiment made before the outcome occurred, by ``(experiment,
    customer, occurred_at)`` (:func:`customer_decisions`), for outcomes naming none.
    """
    decision: models.Decision | DecisionHead | None = None
    attribution = Attribution.ATTRIBUTED
    if outcome.decision_id is not None:
        decision = named.get(outcome.decision_id)
        if decision is None:
            attribution = Attribution.UNKNOWN_DECISION
    elif outcome.experiment is not None and outcome.customer_id is not None:
        decision = by_customer.get((outcome.experiment, outcome.customer_id, outcome.occurred_at))
        if decision is None:
            attribution = Attribution.UNATTRIBUTED
    else:
        check_names(outcome)  # raises: it names neither
    if decision is not None:
        closes = decision.window_closes_at
        if before_window(decision.activated_at, occurred=outcome.occurred_at, received=received):
            attribution = Attribution.BEFORE_DECISION
        elif decision.status != DecisionStatus.OPEN or (
            closes is not None and outcome.occurred_at >= closes
        ):
            attribution = Attribution.LATE
    return {
        "outcome_id": outcome.outcome_id,
        "decision_id": decision.id if decision is not None else outcome.decision_id,
        "experiment_key": (decision.experiment_key if decision is not None else outcome.experiment),
        "customer_id": decision.customer_id if decision is not None else outcome.customer_id,
        "event": outcome.event,
        "value": float(outcome.value),
        "occurred_at": outcome.occurred_at,
        "received_at": received,
        "attribution": attribution,
    }


def customer_decisions(
    session: Session, items: Sequence[OutcomeInput]
) -> dict[tuple[str, str, datetime], DecisionHead]:
    """For the outcomes naming a customer but no decision: the customer's latest open decision
    made before each occurred (:func:`~experiments.store.decisions.latest_open_decisions`),
    looked up per experiment in bulk, by ``(experiment, customer, occurred_at)``."""
    lookups: dict[str, list[tuple[str, datetime]]] = {}
    for item in items:
        if item.decision_id is None and item.experiment is not None and item.customer_id:
            lookups.setdefault(item.experiment, []).append((item.customer_id, item.occurred_at))
    found: dict[tuple[str, str, datetime], DecisionHead] = {}
    for experiment, pairs in lookups.items():
        heads = latest_open_decisions(session, experiment_key=experiment, lookups=pairs)
        found.update({(experiment, *pair): head for pair, head in heads.items()})
    return found


def relabel_raced(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Outcomes attributed to a decision whose reward was joined meanwhile become late.

    The decision rows are share-locked first, so a concurrent reward join either finished
    before (then its status shows here) or starts after this commit (then it sees them); see
    :meth:`experiments.engine.join.RewardJoin.join` for the other side.
    """
    attributed = {
        row["outcome_id"]: row["decision_id"]
        for row in rows
        if row["attribution"] == Attribution.ATTRIBUTED
    }
    if not attributed:
        return
    statuses = lock_decision_statuses(
        session, decision_ids=list(set(attributed.values())), shared=True
    )
    raced = [
        outcome
        for outcome, decision in attributed.items()
        if statuses.get(decision) != DecisionStatus.OPEN
    ]
    mark_outcomes_late(session, outcome_ids=raced)


@dataclass(frozen=True)
class _Report:
    """One call's outcomes and when they were received: an item of a shared transaction."""

    items: Sequence[OutcomeInput]
    received: datetime


def check_names(outcome: OutcomeInput) -> None:
    """Refuse an outcome that names neither its decision nor its experiment and customer."""
    if outcome.decision_id is None and (outcome.experiment is None or outcome.customer_id is None):
        raise InvalidInputError(
            "an outcome needs 'decision_id' or both 'experiment' and 'customer_id'",
            field="decision_id",
        )


class OutcomeRecorder:
    """Records outcomes in one database.

    Concurrent calls of one process share a transaction and its commit
    (:class:`~experiments.store.group_commit.GroupCommit`); each returns once the outcomes it
    reported are committed, and counts as accepted exactly what a call on its own would have:
    of two calls in one transaction reporting the same ``outcome_id``, the first stores it and
    the second counts a duplicate.

    Args:
        database: where outcomes are stored.
        clock: the source of ``received_at``.
    """

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        self._writer: GroupCommit[_Report, RecordResult] = GroupCommit(database, self._write)

    def record(self, outcomes: Iterable[OutcomeInput]) -> RecordResult:
        """Store outcome events, idempotent by ``outcome_id``, in one transaction."""
        items = list(outcomes)
        for item in items:  # before sharing a transaction: one bad item must not fail others
            check_names(item)
        return self._writer.submit(_Report(items, self._clock.now()))

    @staticmethod
    def _write(session: Session, reports: Sequence[_Report]) -> list[RecordResult]:
        """Attribute and store the outcomes of ``reports`` (not committed); one result each.

        Where the database locks rows and every outcome names its decision (the usual case),
        the decisions are share-locked as they are read, so their statuses cannot change
        before the commit and no re-check after the insert is needed: one round trip fewer.
        Otherwise (SQLite; outcomes attributed by customer, whose decisions are found only
        after) the attributed outcomes are re-checked under lock after the insert
        (:func:`relabel_raced`).
        """
        items = [item for report in reports for item in report.items]
        locked = locks_rows(session) and all(item.decision_id is not None for item in items)
        named = decision_heads(
            session,
            decision_ids=[item.decision_id for item in items if item.decision_id is not None],
            share_lock=locked,
        )
        by_customer = customer_decisions(session, items)
        rows = [
            attribute(session, item, report.received, named, by_customer)
            for report in reports
            for item in report.items
        ]
        result = insert_outcomes(session, outcomes=rows)
        # Only the rows written here: a duplicate's stored row was labelled (and maybe
        # counted in a reward) by the request that stored it, and a retry changes nothing.
        first: dict[str, dict[str, Any]] = {}
        for row in rows:
            first.setdefault(row["outcome_id"], row)
        if not locked:
            relabel_raced(session, [first[outcome] for outcome in result.inserted])
        stored = {id(first[outcome]) for outcome in result.inserted}
        answers = []
        start = 0
        for report in reports:
            mine = rows[start : start + len(report.items)]
            start += len(report.items)
            accepted = sum(1 for row in mine if id(row) in stored)
            answers.append(RecordResult(accepted=accepted, duplicates=len(mine) - accepted))
        return answers
