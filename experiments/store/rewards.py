"""Queries on the ``reward`` table: store each decision's reward once, read rewards joined with
their decisions for the learner, and record which snapshot folded them in. The same queries
serve the ``short_term_reward`` table (a spec's ``[reward.short_term]``, same columns) when
given ``table=ShortTermReward``.

Plain functions taking a ``Session`` and keyword-only arguments; none commits (the caller owns
the transaction). Setting a decision's status to ``rewarded`` is the caller's, in the same
transaction as its reward.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from experiments.store._sql import chunks, insert_ignoring_conflicts, row_of, select_columns
from experiments.store.models import Decision, Reward, ShortTermReward

__all__ = [
    "LearningRow",
    "RewardTable",
    "count_rewards",
    "count_unlearned_rewards",
    "insert_rewards",
    "mark_rewards_learned",
    "reward_decision_ids",
    "reward_row",
    "reward_rows",
    "reward_rows_of",
    "unlearned_rewards",
]


#: A table of rewards: the reward, or the short-term reward (same columns).
RewardTable = type[Reward] | type[ShortTermReward]


def reward_row(
    *, decision_id: str, experiment_key: str, value: float, computed_at: datetime
) -> dict[str, Any]:
    """A new, not yet learned reward as an insertable row: what a join writes, without building
    an ORM object per reward (their validation cost more than the insert)."""
    return {
        "decision_id": decision_id,
        "experiment_key": experiment_key,
        "value": float(value),
        "computed_at": computed_at,
        "learned_version": None,
    }


def insert_rewards(
    session: Session,
    *,
    rewards: Sequence[Reward | ShortTermReward | Mapping[str, Any]],
    table: RewardTable = Reward,
) -> int:
    """Store rewards (models, or rows from :func:`reward_row`) in ``table``, skipping decisions
    that already have one there; returns how many were new."""
    rows: dict[str, dict[str, Any]] = {}
    for reward in rewards:
        row = row_of(reward) if isinstance(reward, Reward | ShortTermReward) else dict(reward)
        rows.setdefault(row["decision_id"], row)
    inserted = insert_ignoring_conflicts(
        session, table, list(rows.values()), conflict=["decision_id"], returning="decision_id"
    )
    return len(inserted)


@dataclass(frozen=True)
class LearningRow:
    """One reward not yet learned, with the decision fields a policy update needs."""

    decision_id: str
    value: float
    computed_at: datetime
    context: dict[str, Any]
    action_index: int
    propensity: float | None
    group: str
    policy_version: int
    customer_id: str
    created_at: datetime


def reward_rows(
    session: Session,
    *,
    experiment_key: str,
    learned: bool | None = None,
    limit: int | None = None,
    table: RewardTable = Reward,
) -> list[LearningRow]:
    """Rewards joined with their decisions, oldest first (suppressed decisions have no reward).

    Rewards computed at the same moment follow their decisions' time and customer, so the order
    (and what a learner or an estimator that draws per row makes of it) is the same in every run
    of the same log; the random decision id only breaks what is left.

    ``learned``: only rewards already folded into a snapshot (True), only those not yet
    (False), or all (None).
    """
    stmt = _learning_rows(
        _learning_columns(table), experiment_key=experiment_key, learned=learned, table=table
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [LearningRow(*row) for row in session.exec(stmt)]


def reward_decision_ids(session: Session, *, experiment_key: str) -> list[str]:
    """The decision ids of :func:`reward_rows` (all rewards), in the same order, without
    reading the rest: a caller that needs only some rows picks them by position first."""
    stmt = _learning_rows(select(Reward.decision_id), experiment_key=experiment_key, learned=None)
    return list(session.exec(stmt))


def reward_rows_of(
    session: Session, *, experiment_key: str, decision_ids: Sequence[str]
) -> list[LearningRow]:
    """The :func:`reward_rows` of ``decision_ids`` (those with a reward and an action), in
    the order of ``decision_ids``, one query per chunk of ids."""
    found: dict[str, LearningRow] = {}
    for chunk in chunks(list(dict.fromkeys(decision_ids))):
        stmt = _learning_rows(
            _learning_columns(),
            experiment_key=experiment_key,
            learned=None,
        ).where(col(Reward.decision_id).in_(chunk))
        found.update((row[0], LearningRow(*row)) for row in session.exec(stmt))
    return [found[id_] for id_ in decision_ids if id_ in found]


def _learning_columns(table: RewardTable = Reward) -> Any:
    """A select of the columns of :class:`LearningRow`, in its field order."""
    return select_columns(
        table.decision_id,
        table.value,
        table.computed_at,
        Decision.context,
        Decision.action_index,
        Decision.propensity,
        Decision.group,
        Decision.policy_version,
        Decision.customer_id,
        Decision.created_at,
    )


def _learning_rows(
    stmt: Any, *, experiment_key: str, learned: bool | None, table: RewardTable = Reward
) -> Any:
    """``stmt`` (a select of reward and decision columns) over the rewards of
    ``experiment_key`` in ``table`` joined with their decisions, in :func:`reward_rows`'
    order."""
    stmt = (
        stmt.select_from(table)
        .join(Decision, col(Decision.id) == col(table.decision_id))
        .where(table.experiment_key == experiment_key, col(Decision.action_index).is_not(None))
        .order_by(
            col(table.computed_at),
            col(Decision.created_at),
            col(Decision.customer_id),
            col(table.decision_id),
        )
    )
    if learned is not None:
        column = col(table.learned_version)
        stmt = stmt.where(column.is_not(None) if learned else column.is_(None))
    return stmt


def unlearned_rewards(
    session: Session, *, experiment_key: str, limit: int = 10_000, table: RewardTable = Reward
) -> list[LearningRow]:
    """Rewards with no ``learned_version`` yet, oldest first, joined with their decisions
    (decisions without an action, i.e. suppressed ones, are skipped)."""
    return reward_rows(
        session, experiment_key=experiment_key, learned=False, limit=limit, table=table
    )


def mark_rewards_learned(
    session: Session, *, decision_ids: Sequence[str], version: int, table: RewardTable = Reward
) -> int:
    """Record that snapshot ``version`` folded in these rewards of ``table`` (only those not
    yet learned); returns how many changed."""
    changed = 0
    for chunk in chunks(list(dict.fromkeys(decision_ids))):
        stmt = (
            update(table)
            .where(col(table.decision_id).in_(chunk), col(table.learned_version).is_(None))
            .values(learned_version=version)
            .execution_options(synchronize_session="fetch")
        )
        changed += session.exec(stmt).rowcount
    return changed


def count_rewards(
    session: Session,
    *,
    experiment_key: str,
    learned: bool | None = None,
    table: RewardTable = Reward,
) -> int:
    """How many rewards ``experiment_key`` has in ``table`` (only learned or unlearned ones if
    given)."""
    stmt = select(func.count()).select_from(table).where(table.experiment_key == experiment_key)
    if learned is True:
        stmt = stmt.where(col(table.learned_version).is_not(None))
    elif learned is False:
        stmt = stmt.where(col(table.learned_version).is_(None))
    return int(session.exec(stmt).one())


def count_unlearned_rewards(
    session: Session, *, experiment_key: str, table: RewardTable = Reward
) -> int:
    """How many rewards of ``experiment_key`` in ``table`` no snapshot has folded in yet."""
    return count_rewards(session, experiment_key=experiment_key, learned=False, table=table)
