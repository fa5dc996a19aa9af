"""Pre-period covariates of a live experiment's rewards, and the reward lift adjusted on them.

A live report's rows are rewarded decisions; a customer can have many. The covariates a
decision is adjusted on are its customer's values at their *first* rewarded decision
(``[report] covariates``, :mod:`experiments.spec.report`; one reward window for all, so
rewards close in decision order and this is their first decision): a later context may
already carry what earlier treatment did (spend that an offer raised), and adjusting on it
would take part of the lift out. A value missing from a stored context (an optional field
sent without it) takes the mean of the values present, which keeps the covariate
independent of the group and so the adjusted lift unbiased (the adjustment only narrows
less).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bandit.adjustment import cuped_lift
from experiments.analysis.lift import MIN_UNITS, LiftRow
from experiments.spec import ExperimentSpec
from experiments.store.rewards import LearningRow

__all__ = ["adjusted_reward_lift", "first_decision_covariates"]


def first_decision_covariates(rows: Sequence[LearningRow], names: Sequence[str]) -> np.ndarray:
    """``(len(rows), len(names))``: each row's customer's ``names`` at their first decision
    among ``rows`` (by ``created_at``); missing or non-numeric values become the column mean
    (0 when a column has none)."""
    first: dict[str, LearningRow] = {}
    for row in rows:
        seen = first.get(row.customer_id)
        if seen is None or row.created_at < seen.created_at:
            first[row.customer_id] = row
    values = np.array(
        [[_number(first[row.customer_id].context.get(name)) for name in names] for row in rows],
        dtype=np.float64,
    ).reshape(len(rows), len(names))
    known = np.isfinite(values)
    counts = known.sum(axis=0)
    means = np.where(known, values, 0.0).sum(axis=0) / np.maximum(counts, 1)
    return np.where(known, values, means[None, :])


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    return float(value)


def adjusted_reward_lift(
    spec: ExperimentSpec,
    lift: LiftRow,
    rows: Sequence[LearningRow],
    values: np.ndarray,
    holdout: np.ndarray,
) -> LiftRow:
    """``lift`` (of ``values`` ``(n,)``, treatment over ``holdout`` ``(n,)``) with the lift
    adjusted on the spec's covariates beside it; ``lift`` itself when there are none or too
    few rewards."""
    names = spec.report.covariates if spec.report is not None else []
    if not names or (~holdout).sum() < MIN_UNITS or holdout.sum() < MIN_UNITS:
        return lift
    baselines = first_decision_covariates(rows, names)
    return lift.adjusted_by(names, cuped_lift(values, holdout, baselines))
