"""What reports count, computed in SQL: reward sums per group, and decisions, outcomes and
rewards per status, group and attribution.

Plain functions taking a ``Session`` and keyword-only arguments; they only read. Sums of rewards
and of their squares are enough for means, variances and Welch's lift interval, so no reward
rows travel to Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from experiments.store.models import Decision, Outcome, Reward
from experiments.store.rewards import count_rewards
from experiments.vocabulary import Attribution, DecisionStatus, Group

__all__ = [
    "RewardAggregate",
    "decision_counts_by_group",
    "decision_counts_by_status",
    "experiment_counts",
    "outcome_counts_by_attribution",
    "reward_aggregates",
]


@dataclass(frozen=True, slots=True)
class RewardAggregate:
    """Count, sum and sum of squares of rewards: enough for means, variances and Welch lift.
    Unpacks as ``count, total, total_sq`` (a dataclass, not a NamedTuple: ``count`` would shadow
    ``tuple.count``).

    ``m2 = Σx² - (Σx)²/n`` loses precision when the mean is huge relative to the spread; rewards
    (revenue, rates) are far from that regime.
    """

    count: int
    total: float
    total_sq: float

    def __iter__(self) -> Iterator[float]:
        return iter((self.count, self.total, self.total_sq))

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")

    @property
    def m2(self) -> float:
        """Sum of squared deviations from the mean (clipped at 0 against round-off)."""
        if not self.count:
            return 0.0
        return max(self.total_sq - self.total * self.total / self.count, 0.0)

    @property
    def variance(self) -> float:
        """Sample variance (``n - 1`` denominator); NaN below two rewards."""
        return self.m2 / (self.count - 1) if self.count > 1 else float("nan")


def _reward_aggregate_columns() -> tuple[Any, Any, Any]:
    return (
        func.count(col(Reward.decision_id)),
        func.coalesce(func.sum(Reward.value), 0.0),
        func.coalesce(func.sum(col(Reward.value) * col(Reward.value)), 0.0),
    )


def reward_aggregates(session: Session, *, experiment_key: str) -> dict[str, RewardAggregate]:
    """Reward count, sum and sum of squares per group (``treatment``, ``holdout``)."""
    stmt = (
        select(Decision.group, *_reward_aggregate_columns())
        .select_from(Reward)
        .join(Decision, col(Decision.id) == col(Reward.decision_id))
        .where(Reward.experiment_key == experiment_key)
        .group_by(col(Decision.group))
    )
    return {
        group: RewardAggregate(int(n), float(total), float(total_sq))
        for group, n, total, total_sq in session.exec(stmt)
    }


def decision_counts_by_group(session: Session, *, experiment_key: str) -> dict[str, int]:
    """Decisions per group (suppressed ones included)."""
    stmt = (
        select(Decision.group, func.count())
        .where(Decision.experiment_key == experiment_key)
        .group_by(col(Decision.group))
    )
    return {group: int(n) for group, n in session.exec(stmt)}


def decision_counts_by_status(session: Session, *, experiment_key: str) -> dict[str, int]:
    """Decisions per status (``open``, ``rewarded``, ``never_activated``, ``suppressed``)."""
    stmt = (
        select(Decision.status, func.count())
        .where(Decision.experiment_key == experiment_key)
        .group_by(col(Decision.status))
    )
    return {status: int(n) for status, n in session.exec(stmt)}


def outcome_counts_by_attribution(
    session: Session, *, experiment_key: str | None
) -> dict[str, int]:
    """Outcomes per attribution for ``experiment_key``; ``None`` counts outcomes of every
    experiment and those tied to none (unknown decisions)."""
    stmt = select(Outcome.attribution, func.count()).group_by(col(Outcome.attribution))
    if experiment_key is not None:
        stmt = stmt.where(Outcome.experiment_key == experiment_key)
    return {attribution: int(n) for attribution, n in session.exec(stmt)}


def experiment_counts(session: Session, *, experiment_key: str) -> dict[str, dict[str, Any]]:
    """The report's counts, JSON-ready, with every status/group/attribution present (0 if none):

    ``{"decisions": {"total", "by_status", "by_group"}, "outcomes": {"total", "by_attribution"},
    "rewards": {"total", "learned", "unlearned"}}``
    """
    by_status = dict.fromkeys((s.value for s in DecisionStatus), 0)
    by_status.update(decision_counts_by_status(session, experiment_key=experiment_key))
    by_group = dict.fromkeys((g.value for g in Group), 0)
    by_group.update(decision_counts_by_group(session, experiment_key=experiment_key))
    by_attribution = dict.fromkeys((a.value for a in Attribution), 0)
    by_attribution.update(outcome_counts_by_attribution(session, experiment_key=experiment_key))
    learned = count_rewards(session, experiment_key=experiment_key, learned=True)
    unlearned = count_rewards(session, experiment_key=experiment_key, learned=False)
    return {
        "decisions": {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "by_group": by_group,
        },
        "outcomes": {"total": sum(by_attribution.values()), "by_attribution": by_attribution},
        "rewards": {"total": learned + unlearned, "learned": learned, "unlearned": unlearned},
    }
