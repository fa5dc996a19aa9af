"""Queries on the ``policy_promotion`` table, and the snapshot that serves.

Safe promotion (:mod:`experiments.engine.promotion`) records every snapshot the learner
publishes under the gate: pending until judged, then promoted or rejected. The snapshot that
serves is the newest one that is not pending or rejected (a snapshot with no record was
published without the gate and serves as before). Plain functions taking a ``Session`` and
keyword-only arguments; none commits (the caller owns the transaction).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from experiments.store.models import PolicyPromotion, PolicySnapshot
from experiments.vocabulary import PromotionStatus

__all__ = [
    "insert_promotion",
    "list_promotions",
    "pending_promotion",
    "serving_snapshot",
    "serving_version",
]


def insert_promotion(session: Session, *, promotion: PolicyPromotion) -> PolicyPromotion:
    """Record a candidate (or its judgement); the unique ``(experiment, version)`` key keeps
    one record per snapshot."""
    session.add(promotion)
    session.flush()
    return promotion


def pending_promotion(session: Session, *, experiment_key: str) -> PolicyPromotion | None:
    """The newest candidate of ``experiment_key`` still waiting to be judged, or None."""
    stmt = (
        select(PolicyPromotion)
        .where(
            PolicyPromotion.experiment_key == experiment_key,
            PolicyPromotion.status == PromotionStatus.PENDING,
        )
        .order_by(col(PolicyPromotion.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def list_promotions(
    session: Session, *, experiment_key: str, limit: int | None = None
) -> list[PolicyPromotion]:
    """The promotion records of ``experiment_key``, newest version first."""
    stmt = (
        select(PolicyPromotion)
        .where(PolicyPromotion.experiment_key == experiment_key)
        .order_by(col(PolicyPromotion.version).desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))


def _may_serve(experiment_key: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """Snapshots of ``experiment_key`` whose promotion record, if any, lets them serve."""
    held_back = select(PolicyPromotion.version).where(
        PolicyPromotion.experiment_key == experiment_key,
        col(PolicyPromotion.status).in_([PromotionStatus.PENDING, PromotionStatus.REJECTED]),
    )
    return (
        col(PolicySnapshot.experiment_key) == experiment_key,
        col(PolicySnapshot.version).not_in(held_back),
    )


def serving_snapshot(session: Session, *, experiment_key: str) -> PolicySnapshot | None:
    """The newest snapshot of ``experiment_key`` that may serve (see the module docstring),
    or None: decisions are then made by the policy's prior (version 0)."""
    stmt = (
        select(PolicySnapshot)
        .where(*_may_serve(experiment_key))
        .order_by(col(PolicySnapshot.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def serving_version(session: Session, *, experiment_key: str) -> int:
    """The version of :func:`serving_snapshot` without loading its state; 0 without one."""
    stmt = select(func.max(PolicySnapshot.version)).where(*_may_serve(experiment_key))
    version = session.exec(stmt).one()
    return 0 if version is None else int(version)
