"""Lift of treatment over holdout for an experiment, from the store's aggregates."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlmodel import Session

from bandit.lift import Lift, RunningMoments, welch_lift_from_moments
from experiments.holdout import HOLDOUT, TREATMENT
from experiments.store import queries


@dataclass(frozen=True)
class GroupKpi:
    """Count, mean and variance of a KPI in one group."""

    group: str
    n: int
    mean: float | None
    variance: float | None


def _moments(count: int, total: float, total_squares: float) -> RunningMoments:
    mean = total / count if count else 0.0
    m2 = max(total_squares - count * mean * mean, 0.0) if count else 0.0
    return RunningMoments(count=np.array(count), mean=np.array(mean), m2=np.array(m2))


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def lift_dict(lift: Lift | None) -> dict[str, Any] | None:
    """A JSON-safe view of a Lift (NaN and infinity become null)."""
    if lift is None:
        return None
    out: dict[str, Any] = {}
    for name, value in asdict(lift).items():
        if isinstance(value, tuple):
            out[name] = [_finite(item) for item in value]
        elif isinstance(value, float):
            out[name] = _finite(value)
        else:
            out[name] = value
    return out


def reward_lift(session: Session, *, experiment_key: str) -> tuple[list[GroupKpi], Lift | None]:
    """Per-group reward summaries and the Welch lift of treatment over holdout."""
    aggregates = queries.reward_aggregates(session, experiment_key=experiment_key)
    groups, moments = [], {}
    for group in (TREATMENT, HOLDOUT):
        count, total, squares = aggregates.get(group, (0, 0.0, 0.0))
        summary = _moments(count, total, squares)
        moments[group] = summary
        variance = float(summary.variance) if count > 1 else None
        groups.append(GroupKpi(group, count, total / count if count else None, variance))
    lift = None
    if moments[TREATMENT].count >= 2 and moments[HOLDOUT].count >= 2:
        lift = welch_lift_from_moments(moments[TREATMENT], moments[HOLDOUT])
    return groups, lift
