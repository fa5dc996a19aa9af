"""Safe promotion: a learned snapshot serves only once it is judged no worse than the one
serving, on logged rewards neither has learned.

With the spec's ``[promotion] enabled``, every snapshot the learner publishes is a *candidate*
with a pending record (:mod:`experiments.store.promotions`); decisions keep the serving version
(the newest snapshot not pending or rejected). At the next learning step the rewards not yet
learned are fresh for both the candidate and the serving version, so the candidate is judged
on them before they are learned: SNIPS values of both, and their paired difference
``Δ̂ = V̂_c - V̂_s`` with its delta-method interval (:func:`bandit.ope.snips_difference`).
The candidate is promoted when its value's lower bound ``V̂_s + Δ̂_low`` is at least
``V̂_s - margin``, i.e. ``Δ̂_low >= -margin``; otherwise it is rejected and the serving version
serves on. Either way the record keeps the estimates and the reason, and learning continues
from the candidate (the learned state is the sum of all rewards; a rejected candidate's
successors are judged in turn).

Judging on fresh rows is what catches a snapshot learned from bad rewards: judged on the very
rows it learned, a policy fitted to inverted rewards would look best. The learner waits until
``min_rows`` fresh rewards are there (:func:`judge_pending` answers :data:`WAIT`).

Target probabilities are the policies' own at the experiment's exploration floor, without
the logged request's exclusions, as the report's off-policy estimates are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
from sqlmodel import Session

from bandit import BanditValueError, Policy
from bandit.ope import Estimate, snips, snips_difference
from experiments.engine.snapshots import PolicyFactory, restore
from experiments.spec import ExperimentSpec, PromotionSpec
from experiments.store import models
from experiments.store.promotions import (
    insert_promotion,
    pending_promotion,
    serving_snapshot,
    serving_version,
)
from experiments.store.rewards import LearningRow
from experiments.store.snapshots import snapshot_at
from experiments.vocabulary import PromotionStatus

__all__ = ["WAIT", "Judgement", "judge", "judge_pending", "propose"]

#: :func:`judge_pending`'s answer when a candidate waits for more fresh rewards.
WAIT: Final = "wait"


@dataclass(frozen=True)
class Judgement:
    """The verdict on a candidate: its SNIPS estimate, the serving version's value, their
    paired difference, the margin in reward units, and the reason in words."""

    promoted: bool
    rows: int
    candidate: Estimate | None
    serving_value: float | None
    difference: Estimate | None
    margin: float | None
    reason: str


def _number(value: float) -> str:
    return f"{value:.4g}"


def judge(
    settings: PromotionSpec,
    *,
    reward: np.ndarray,
    action: np.ndarray,
    propensity: np.ndarray,
    candidate_probs: np.ndarray,
    serving_probs: np.ndarray,
    candidate_version: int,
    serving_version: int,
) -> Judgement:
    """Judge a candidate against the serving version on one log (arrays as in
    :mod:`bandit.ope`); promoted when ``Δ̂_low >= -margin`` (see the module docstring)."""
    log = {"reward": reward, "action": action, "propensity": propensity}
    level = float(settings.confidence)
    names = f"candidate v{candidate_version}", f"serving v{serving_version}"
    try:
        candidate = snips(**log, target_probs=candidate_probs, confidence=level)
        serving = snips(**log, target_probs=serving_probs, confidence=level)
        difference = snips_difference(
            **log, target_probs=candidate_probs, baseline_probs=serving_probs, confidence=level
        )
    except BanditValueError as error:
        who = names[0] if error.field == "target_probs" else names[1]
        reason = (
            f"rejected: {who} plays none of the {reward.size} fresh rewards' logged actions, "
            f"so SNIPS cannot judge it; {names[1]} keeps serving"
        )
        return Judgement(False, int(reward.size), None, None, None, None, reason)
    margin = settings.margin_for(serving.value)
    interval = (
        f"SNIPS {names[0]} {_number(candidate.value)} vs {names[1]} {_number(serving.value)} "
        f"on {reward.size} fresh rewards; difference {_number(difference.value)}, "
        f"{level:.0%} CI [{_number(difference.ci_low)}, {_number(difference.ci_high)}]"
    )
    promoted = difference.ci_low >= -margin
    if promoted:
        reason = f"promoted: {interval}; lower bound >= -margin {_number(margin)}"
    else:
        reason = (
            f"rejected: {interval}; lower bound < -margin {_number(margin)}, "
            f"so {names[1]} keeps serving"
        )
    return Judgement(
        promoted, int(reward.size), candidate, serving.value, difference, margin, reason
    )


def _loaded(
    factory: PolicyFactory,
    spec: ExperimentSpec,
    floor: float,
    snapshot: models.PolicySnapshot | None,
) -> tuple[Policy, int]:
    policy, _ = factory.build(spec, floor)
    return policy, restore(policy, snapshot)


def judge_pending(
    session: Session,
    *,
    key: str,
    spec: ExperimentSpec,
    floor: float,
    factory: PolicyFactory,
    rows: Sequence[LearningRow],
    X: np.ndarray,
    now: datetime,
) -> Judgement | str | None:
    """Judge the pending candidate of ``key`` on the fresh ``rows`` (contexts encoded in
    ``X``) and store the verdict; None when no candidate is pending, :data:`WAIT` when fewer
    than ``min_rows`` fresh rewards carry a propensity."""
    record = pending_promotion(session, experiment_key=key)
    if record is None:
        return None
    logged = np.array([row.propensity is not None for row in rows], dtype=bool)
    if int(logged.sum()) < spec.promotion.min_rows:
        return WAIT
    fresh = [row for row, keep in zip(rows, logged, strict=True) if keep]
    contexts = X[logged]
    candidate, _ = _loaded(
        factory, spec, floor, snapshot_at(session, experiment_key=key, version=record.version)
    )
    serving, serving_at = _loaded(
        factory, spec, floor, serving_snapshot(session, experiment_key=key)
    )
    verdict = judge(
        spec.promotion,
        reward=np.array([row.value for row in fresh], dtype=np.float64),
        action=np.array([row.action_index for row in fresh], dtype=np.int64),
        propensity=np.array([row.propensity for row in fresh], dtype=np.float64),
        candidate_probs=candidate.action_probabilities(contexts),
        serving_probs=serving.action_probabilities(contexts),
        candidate_version=record.version,
        serving_version=serving_at,
    )
    record.status = PromotionStatus.PROMOTED if verdict.promoted else PromotionStatus.REJECTED
    record.serving_version = serving_at
    record.estimator = spec.promotion.estimator
    record.rows = verdict.rows
    record.confidence = float(spec.promotion.confidence)
    record.margin = verdict.margin
    record.serving_value = verdict.serving_value
    if verdict.candidate is not None:
        record.candidate_value = verdict.candidate.value
        record.candidate_low = verdict.candidate.ci_low
        record.candidate_high = verdict.candidate.ci_high
    if verdict.difference is not None:
        record.difference = verdict.difference.value
        record.difference_low = verdict.difference.ci_low
        record.difference_high = verdict.difference.ci_high
    record.reason = verdict.reason
    record.decided_at = now
    session.add(record)
    return verdict


def propose(session: Session, *, key: str, version: int, now: datetime) -> None:
    """Record snapshot ``version`` of ``key`` as a pending candidate: it serves only once
    :func:`judge_pending` promotes it."""
    insert_promotion(
        session,
        promotion=models.PolicyPromotion(
            experiment_key=key,
            version=version,
            serving_version=serving_version(session, experiment_key=key),
            reason="pending: waiting for fresh rewards to judge it on",
            created_at=now,
        ),
    )
