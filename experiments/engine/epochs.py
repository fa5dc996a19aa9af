"""Strategy epochs once they close: each customer's epoch KPI, and the strategy policy learning
from it.

The strategy clock's reward join and learner. When an epoch has ended (``epoch_end <= now``)
:meth:`EpochJoin.measure` computes every assignment's KPI from all of the customer's outcomes
of the KPI's event that occurred in ``[epoch_start, epoch_end)``, whatever decision they were
attributed to (or none): ``sum`` adds their values (0 without any), ``retained`` is 0 when
one occurred (a churn) and 1 otherwise. Holdout assignments are measured the same way, for the
report's comparison. :func:`epoch_kpi` is the rule, pure.

:meth:`StrategyLearner.learn` then folds the measured treatment assignments into the strategy
policy, as ``(context at assignment, strategy, KPI, propensity)``, and publishes the next
strategy snapshot in the same transaction (with a panel, only the panel's assignments, each
with the customer's context at enrolment: what living under a strategy does, not what one epoch
of it does). A contextual policy adjusts for the customer's
pre-epoch value through its context (the spec requires the baseline fields in it); a policy
that ignores the context learns from the KPI regression-adjusted on the baseline within each
epoch (:func:`bandit.adjustment.regression_adjusted`). Only one process should learn at a
time: the background learner calls this under its lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
from sqlmodel import Session

from bandit.adjustment import regression_adjusted
from experiments.engine.clock import Clock
from experiments.engine.holdout import in_panel
from experiments.engine.registry import find_experiment
from experiments.engine.strategies import StrategyPolicies
from experiments.spec import SpecError, parse_spec
from experiments.spec.strategies import EpochKpiSpec, StrategySet
from experiments.store import models
from experiments.store.database import Database
from experiments.store.snapshots import pack_state, unpack_state
from experiments.store.strategies import (
    assignments_due,
    epoch_outcome_totals,
    first_assignments,
    insert_strategy_snapshot,
    latest_strategy_snapshot,
    mark_assignments_learned,
    set_assignment_kpis,
    unlearned_assignments,
)

__all__ = ["EpochJoin", "StrategyLearner", "epoch_kpi", "learning_rows"]


def epoch_kpi(kpi: EpochKpiSpec, total: float, count: int) -> float:
    """A customer's epoch KPI from the sum and count of their KPI-event outcomes in it."""
    if kpi.kind == "retained":
        return 0.0 if count else 1.0
    return float(total) if count else 0.0


class EpochJoin:
    """Measures closed epochs in one database.

    Args:
        database: where assignments and outcomes are stored.
        clock: the source of "now" (which epochs have closed).
        policies: the process's strategy policies (for the experiments' strategy sets).
    """

    def __init__(self, database: Database, clock: Clock, policies: StrategyPolicies) -> None:
        self._database = database
        self._clock = clock
        self._policies = policies

    def measure(self, key: str, *, limit: int = 100_000) -> int:
        """Write the KPI of every assignment whose epoch has closed; returns how many."""
        loaded = self._policies.get(key)
        if loaded is None:
            return 0
        kpi = loaded.strategies.kpi
        now = self._clock.now()
        with self._database.session() as session:
            due = assignments_due(session, experiment_key=key, now=now, limit=limit)
            by_epoch: dict[tuple[datetime, datetime], list[models.StrategyAssignment]] = {}
            for row in due:
                by_epoch.setdefault((row.epoch_start, row.epoch_end), []).append(row)
            values: dict[int, float] = {}
            for (start, end), rows in by_epoch.items():
                totals = epoch_outcome_totals(
                    session,
                    experiment_key=key,
                    customer_ids=[row.customer_id for row in rows],
                    event=kpi.event,
                    start=start,
                    end=end,
                )
                for row in rows:
                    total, count = totals.get(row.customer_id, (0.0, 0))
                    if row.id is not None:
                        values[row.id] = epoch_kpi(kpi, total, count)
            set_assignment_kpis(session, kpis=values, measured_at=now)
            session.commit()
        return len(values)


def learning_rows(
    strategies: StrategySet,
    rows: Sequence[models.StrategyAssignment],
    enrolment: Mapping[str, Mapping[str, object]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Contexts ``(n, d)``, strategies ``(n,)``, KPIs ``(n,)`` and propensities ``(n,)`` of
    the rows the strategy policy can learn from.

    A row whose context was erased (stored as ``{}``) is skipped. ``enrolment`` (panel
    learning) maps customers to their context at enrolment, used instead of the row's own:
    after epochs under a strategy, the customer's recent spend is partly the strategy's doing,
    and adjusting on it would take out the effect being measured. Rows of customers it lacks
    are skipped. A policy that ignores the context gets each KPI regression-adjusted on the
    baseline fields (the slope fitted within epoch x strategy cells, applied around the epoch's
    mean).
    """
    contexts = [
        row.context if enrolment is None else enrolment.get(row.customer_id, {}) for row in rows
    ]
    usable = [(row, context) for row, context in zip(rows, contexts, strict=True) if context]
    X = strategies.encode([context for _, context in usable]) if usable else None
    if X is None:
        X = np.zeros((0, strategies.encoder.width))
    actions = np.array([row.strategy_index for row, _ in usable], dtype=np.int64)
    kpis = np.array([row.kpi for row, _ in usable], dtype=np.float64)
    propensities = np.array([row.propensity for row, _ in usable], dtype=np.float64)
    baseline = strategies.kpi.baseline
    if usable and baseline and not strategies.section.adjusts_through_context:
        values = np.array([[_number(context, name) for name in baseline] for _, context in usable])
        epochs = np.array([row.epoch for row, _ in usable])
        kpis = regression_adjusted(kpis, values, epochs, actions)
    return X, actions, kpis, propensities


def _number(context: Mapping[str, object], name: str) -> float:
    value = context.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"context.{name}", f"baseline must be a number; got {value!r}")
    return float(value)


def panel_rows(
    session: Session,
    key: str,
    salt: str,
    strategies: StrategySet,
    rows: Sequence[models.StrategyAssignment],
) -> tuple[list[models.StrategyAssignment], dict[str, Mapping[str, object]] | None]:
    """The rows the strategy policy learns from, and with a panel the contexts at enrolment.

    Without a panel: every row, and None. With one: the rows of customers who were in the
    panel in the row's epoch (so on their enrolment strategy since then) and had been under it
    for at least ``panel_settle`` epochs before, and each such customer's context at enrolment.
    """
    section = strategies.section
    if not section.has_panel:
        return list(rows), None
    learned = [
        row for row in rows if in_panel(salt, row.customer_id, section.panel_share(row.epoch))
    ]
    members = sorted({row.customer_id for row in learned})
    enrolled = first_assignments(session, experiment_key=key, customer_ids=members)
    settled = [
        row
        for row in learned
        if row.customer_id in enrolled
        and row.epoch - enrolled[row.customer_id].epoch >= section.panel_settle
    ]
    return settled, {customer: row.context for customer, row in enrolled.items()}


class StrategyLearner:
    """Learns and publishes strategy snapshots in one database.

    Args:
        database: where assignments and strategy snapshots are stored.
        clock: the source of the snapshots' ``created_at``.
        policies: builds the policy the newest strategy snapshot is loaded into.
    """

    def __init__(self, database: Database, clock: Clock, policies: StrategyPolicies) -> None:
        self._database = database
        self._clock = clock
        self._policies = policies

    def learn(self, key: str, *, limit: int = 100_000) -> int | None:
        """Fold up to ``limit`` measured, unlearned treatment assignments into the strategy
        policy and publish the next strategy snapshot version; None when there was nothing."""
        with self._database.session() as session:
            experiment = find_experiment(session, key)
            # Most calls (the learner polls) find nothing: ask before parsing the spec.
            rows = unlearned_assignments(session, experiment_key=key, limit=limit)
            spec = parse_spec(experiment.spec) if rows else None
            strategies = None if spec is None else spec.strategy_set()
            if spec is None or strategies is None:
                return None
            policy = self._policies.build(strategies)
            latest = latest_strategy_snapshot(session, experiment_key=key)
            version, learned = 0, 0
            if latest is not None:
                policy.set_state(unpack_state(latest.state))
                version, learned = latest.version, latest.rows_learned
            learned_rows, enrolment = panel_rows(session, key, spec.holdout_salt, strategies, rows)
            X, actions, kpis, propensities = learning_rows(strategies, learned_rows, enrolment)
            policy.update(X, actions, kpis, propensities)
            new_version = version + 1
            insert_strategy_snapshot(
                session,
                snapshot=models.StrategySnapshot(
                    experiment_key=key,
                    version=new_version,
                    state=pack_state(policy.get_state()),
                    rows_learned=learned + int(actions.shape[0]),
                    created_at=self._clock.now(),
                ),
            )
            mark_assignments_learned(
                session,
                assignment_ids=[row.id for row in rows if row.id is not None],
                version=new_version,
            )
            session.commit()
        return new_version
