"""The reward join of a surrogate reward (``[reward] kind = "surrogate"``,
:mod:`experiments.spec.surrogate`): rewards after the short window, the index refreshed as
decisions mature.

Two clocks per decision:

1. **short window closes** (``activated + surrogate.window``): the decision's surrogates ``s``
   (each signal's sum over the short window) and covariates ``x`` (numeric context fields) give
   its reward, the index ``h(s, x)`` of the newest fit, or the spec's ``fallback`` before the
   first fit. The reward row is written, so the learner folds it in; the decision stays
   ``open``, so its outcomes keep being attributed to it through the long window.
2. **long window closes** (``activated + window``, the ordinary reward window): the decision
   has *matured*. Its KPI (the sum of the reward's event over the long window, ``default``
   when none) is known; ``(s, x, KPI)`` is added to the sufficient statistics of the index
   (:class:`bandit.surrogate.SurrogateStats`) and the decision is marked ``rewarded``. The
   index is refitted once ``min_matured`` decisions have matured, then every ``refresh`` more
   (:func:`bandit.surrogate.fit_surrogate_index`, ridge ``ridge``).

The statistics live in memory, keyed by experiment. They are a function of the log (every
``rewarded`` decision of the experiment), so a process that starts, or finds that another
process matured decisions meanwhile (the count of ``rewarded`` decisions differs from what it
folded), rebuilds them from the log and refits on all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlmodel import Session

from bandit import BanditValueError
from bandit.surrogate import SurrogateIndex, SurrogateStats, fit_surrogate_index
from experiments.engine.reward import JoinPage
from experiments.spec import ExperimentSpec, SpecError
from experiments.spec.surrogate import EventLike, SurrogateSpec, signal_values, window_total
from experiments.store import models
from experiments.store.aggregates import decision_counts_by_status
from experiments.store.database import Database
from experiments.store.decisions import (
    decisions_due_for_early_reward,
    decisions_due_for_reward,
    decisions_with_status,
    expired_deferred_decisions,
    lock_decision_statuses,
    set_decision_status,
)
from experiments.store.outcomes import outcomes_for_decisions
from experiments.store.rewards import insert_rewards, reward_row
from experiments.vocabulary import Attribution, DecisionStatus

__all__ = ["SurrogateFit", "SurrogateJoin", "UnitRows", "surrogate_units"]


@dataclass
class SurrogateFit:
    """One experiment's matured statistics and index: ``matured`` decisions seen (those whose
    context no longer encodes add none to ``stats``), ``index`` fitted on ``fitted_on`` units
    (None before the first fit)."""

    stats: SurrogateStats
    matured: int = 0
    index: SurrogateIndex | None = None
    fitted_on: int = 0

    def rewards(self, units: UnitRows) -> np.ndarray:
        """The reward of each unit ``(n,)``: its index under the newest fit, or its fallback
        before the first fit (and where the context no longer encodes)."""
        values = units.fallback.copy()
        if self.index is not None and units.kept.any():
            kept = units.kept
            covariates = units.covariates[kept] if self.index.n_covariates else None
            values[kept] = self.index.predict(units.surrogates[kept], covariates)
        return values

    def fold(self, units: UnitRows, spec: SurrogateSpec, matured: int) -> None:
        """Add matured units, then refit when the refresh rule says so."""
        if units.kept.any():
            kept = units.kept
            covariates = units.covariates[kept] if spec.covariates else None
            self.stats = self.stats + SurrogateStats.from_units(
                units.surrogates[kept], units.kpi[kept], covariates
            )
        self.matured += matured
        due = self.stats.n >= spec.min_matured and (
            self.index is None or self.stats.n >= self.fitted_on + spec.refresh
        )
        if not due:
            return
        try:
            self.index = fit_surrogate_index(self.stats, ridge=spec.ridge)
        except BanditValueError:
            return  # singular (signals that never vary): keep the previous index
        self.fitted_on = self.stats.n


@dataclass(frozen=True)
class UnitRows:
    """Per decision: surrogates ``(n, m)``, covariates ``(n, c)``, the KPI over the long
    window ``(n,)``, the fallback reward ``(n,)``, and whether the context encoded (``kept``)."""

    surrogates: np.ndarray
    covariates: np.ndarray
    kpi: np.ndarray
    fallback: np.ndarray
    kept: np.ndarray


def surrogate_units(
    spec: ExperimentSpec,
    decisions: Sequence[models.Decision],
    outcomes: dict[str, list[EventLike]],
) -> UnitRows:
    """The surrogate units of ``decisions`` from their ``outcomes`` (by decision id); windows
    start at activation. Pure."""
    reward = spec.reward
    surrogate = _surrogate_of(spec)
    columns = [spec.feature_names.index(name) for name in surrogate.covariates]
    n = len(decisions)
    S = np.zeros((n, len(surrogate.signals)))
    X = np.zeros((n, len(columns)))
    kpi = np.full(n, reward.default)
    fallback = np.full(n, reward.default)
    kept = np.ones(n, dtype=bool)
    for row, decision in enumerate(decisions):
        start = decision.activated_at or decision.created_at
        events = outcomes.get(decision.id, [])
        S[row] = signal_values(surrogate, events, start)
        total = window_total(events, reward.event, start, reward.window)
        kpi[row] = reward.default if total is None else total
        early = window_total(events, reward.event, start, surrogate.window)
        if surrogate.fallback == "early_sum" and early is not None:
            fallback[row] = early
        if columns:
            try:
                X[row] = spec.encode_logged([decision.context])[0][columns]
            except SpecError:
                kept[row] = False  # erased context: no covariates
    return UnitRows(S, X, kpi, fallback, kept)


class SurrogateJoin:
    """Surrogate rewards in one database; keeps each experiment's :class:`SurrogateFit`.

    Args:
        database: where decisions, outcomes and rewards are stored.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._fits: dict[str, SurrogateFit] = {}

    def fit(self, key: str) -> SurrogateFit | None:
        """The experiment's statistics and index as this process last saw them."""
        return self._fits.get(key)

    def join(self, key: str, spec: ExperimentSpec, *, now: datetime, limit: int) -> JoinPage:
        """Write the surrogate rewards now due and fold in the decisions now matured, at most
        ``limit`` of each kind in one transaction (a page of
        :meth:`experiments.engine.join.RewardJoin.join`)."""
        surrogate = _surrogate_of(spec)
        with self._database.session() as session:
            fit = self._current(session, key, spec)
            expired = expired_deferred_decisions(
                session, experiment_key=key, created_before=now - spec.reward.window, limit=limit
            )
            set_decision_status(
                session,
                decision_ids=[row.id for row in expired],
                status=DecisionStatus.NEVER_ACTIVATED,
            )
            early = decisions_due_for_early_reward(
                session, experiment_key=key, activated_before=now - surrogate.window, limit=limit
            )
            units = surrogate_units(spec, early, _outcomes(session, spec, early))
            written = _insert(session, key, early, fit.rewards(units), now)
            due = decisions_due_for_reward(session, experiment_key=key, now=now, limit=limit)
            statuses = lock_decision_statuses(
                session, decision_ids=[row.id for row in due], shared=False
            )
            matured = [row for row in due if statuses.get(row.id) == DecisionStatus.OPEN]
            units = surrogate_units(spec, matured, _outcomes(session, spec, matured))
            # A matured decision the short join missed (a join after a long pause, or beyond
            # the limit) gets its reward now; rewards already written are kept.
            written += _insert(session, key, matured, fit.rewards(units), now)
            set_decision_status(
                session, decision_ids=[row.id for row in matured], status=DecisionStatus.REWARDED
            )
            session.commit()
        fit.fold(units, surrogate, len(matured))
        return JoinPage(
            written=written,
            settled=len(expired) + len(matured),
            full=limit in (len(expired), len(early), len(due)),
        )

    def _current(self, session: Session, key: str, spec: ExperimentSpec) -> SurrogateFit:
        """This process's fit, rebuilt from the log when the log has matured more or fewer
        decisions than it folded."""
        surrogate = _surrogate_of(spec)
        counts = decision_counts_by_status(session, experiment_key=key)
        matured = counts.get(DecisionStatus.REWARDED.value, 0)
        fit = self._fits.get(key)
        if fit is not None and fit.matured == matured:
            return fit
        fit = SurrogateFit(
            stats=SurrogateStats.empty(len(surrogate.signals), len(surrogate.covariates))
        )
        if matured:
            rows = decisions_with_status(
                session, experiment_key=key, status=DecisionStatus.REWARDED.value
            )
            units = surrogate_units(spec, rows, _outcomes(session, spec, rows))
            fit.fold(units, surrogate, len(rows))
        self._fits[key] = fit
        return fit


def _insert(
    session: Session,
    key: str,
    decisions: Sequence[models.Decision],
    values: np.ndarray,
    now: datetime,
) -> int:
    """Reward rows for ``decisions``; a decision that has one keeps it."""
    rewards = [
        reward_row(decision_id=decision.id, experiment_key=key, value=value, computed_at=now)
        for decision, value in zip(decisions, values, strict=True)
    ]
    return insert_rewards(session, rewards=rewards) if rewards else 0


def _outcomes(
    session: Session, spec: ExperimentSpec, decisions: Sequence[models.Decision]
) -> dict[str, list[EventLike]]:
    """The attributed outcomes of the events the surrogate reads, by decision id."""
    surrogate = _surrogate_of(spec)
    found: dict[str, list[EventLike]] = {}
    for outcome in outcomes_for_decisions(
        session,
        decision_ids=[decision.id for decision in decisions],
        attributions=[Attribution.ATTRIBUTED],
        events=sorted({*surrogate.signals, spec.reward.event}),
    ):
        found.setdefault(str(outcome.decision_id), []).append(outcome)
    return found


def _surrogate_of(spec: ExperimentSpec) -> SurrogateSpec:
    if spec.reward.surrogate is None:
        raise ValueError(f"experiment '{spec.key}' has no surrogate reward")
    return spec.reward.surrogate
