"""The tables of engage's store, as SQLModel table models.

Every timestamp is a timezone-aware UTC ``datetime``: :class:`UTCDateTime` refuses naive values on
the way in and hands back aware UTC values on the way out, on SQLite (which keeps no zone) as on
PostgreSQL. Status-like columns are plain strings; the allowed values are the ``StrEnum`` classes
of :mod:`experiments.vocabulary`, so callers can write ``DecisionStatus.OPEN`` or ``"open"`` alike.

Constraint and index names are spelled out so migrations name the same objects on every dialect.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from experiments.vocabulary import (
    Attribution,
    DecisionStatus,
    ExperimentStatus,
    Group,
    PromotionStatus,
)

__all__ = [
    "TABLES",
    "ApiKey",
    "Decision",
    "Experiment",
    "LearnerLease",
    "NullableJSON",
    "Outcome",
    "PolicyPromotion",
    "PolicySnapshot",
    "Reward",
    "ShortTermReward",
    "StrategyAssignment",
    "StrategySnapshot",
    "UTCDateTime",
    "new_decision_id",
    "new_decision_ids",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def new_decision_id() -> str:
    """A fresh decision id: 32 lowercase hex digits of a random UUID4."""
    return uuid.uuid4().hex


def new_decision_ids(count: int) -> list[str]:
    """``count`` fresh decision ids, as :func:`new_decision_id` makes them (random UUID4s:
    122 random bits with the version and variant bits set, RFC 4122 section 4.4), drawn from
    the operating system's generator in one call for a batch."""
    raw = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # variant RFC 4122
    text = raw.tobytes().hex()
    return [text[start : start + 32] for start in range(0, 32 * count, 32)]


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only accepts and only returns aware UTC datetimes.

    SQLite stores datetimes as ISO text without a zone, and compares them as text, so every value
    is converted to UTC before it is written: comparisons then order correctly on both dialects.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite never comes here: its bind_processor writes the text in one step.
        return _checked_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _aware_utc(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, one step from an aware datetime to the text SQLAlchemy's SQLite
        ``DATETIME`` stores (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC); elsewhere the decorator's
        usual two. The text is the same; it costs a tenth as much, and the store binds a few
        timestamps per row it writes."""
        if dialect.name == "sqlite":
            return _sqlite_utc_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """On SQLite, the stored text straight to an aware UTC datetime (see
        :meth:`bind_processor`); elsewhere the decorator's usual path."""
        if dialect.name == "sqlite":
            return _sqlite_utc_value
        return super().result_processor(dialect, coltype)


def _checked_utc(value: object) -> datetime:
    """``value`` at UTC; a value that is not an aware datetime is refused."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(
            f"naive datetime {value.isoformat()}: engage stores timezone-aware UTC datetimes"
        )
    return value.astimezone(UTC) if offset else value


def _sqlite_utc_text(value: object) -> str | None:
    """``value`` (an aware datetime) at UTC as SQLite ``DATETIME`` text, with microseconds."""
    if value is None:
        return None
    return _utc_text(_checked_utc(value))


# Formatting or parsing a datetime costs a few microseconds, and the rows written or read
# together mostly share their timestamps (a batch's decision time, its window's close), so
# recent conversions are kept. Equal datetimes are the same instant, hence the same UTC text.
@functools.lru_cache(maxsize=4096)
def _utc_text(value: datetime) -> str:
    # The first 26 characters leave out the offset: "2026-12-01 15:34:04.000000".
    return value.isoformat(" ", "microseconds")[:26]


@functools.lru_cache(maxsize=4096)
def _sqlite_utc_value(value: str | None) -> datetime | None:
    """SQLite ``DATETIME`` text (UTC, no zone) as an aware UTC datetime."""
    if value is None:
        return None
    return _aware_utc(datetime.fromisoformat(value))


def _aware_utc(value: datetime) -> datetime:
    """A stored datetime at UTC: a naive one (SQLite keeps no zone) is read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON ``None`` is stored as SQL NULL (not the JSON literal ``null``), so ``IS NULL`` works.
NullableJSON = JSON(none_as_null=True)


class Experiment(SQLModel, table=True):
    """One experiment: its spec (as JSON) and its lifecycle state."""

    __tablename__ = "experiment"

    key: str = Field(primary_key=True, sa_type=String(64))
    description: str = Field(default="", sa_type=Text)
    spec: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default=ExperimentStatus.DRAFT.value, sa_type=String(16))
    exploration_floor: float = Field(default=0.0)
    apprentice: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: Why the experiment stopped itself (a guardrail or the split), and when; None after an
    #: admin resumes it. ``resumed_at``: the last such resume (checks look at what follows it).
    stop_reason: str | None = Field(default=None, sa_type=Text)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resumed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Decision(SQLModel, table=True):
    """One decision: what was chosen for whom, when, among what, with which propensity.

    ``action_index`` and ``action`` are ``None`` for suppressed decisions (contact rules).
    A deferred decision gets ``activated_at`` and ``window_closes_at`` when it is activated.
    """

    __tablename__ = "decision"
    __table_args__ = (
        UniqueConstraint("experiment_key", "request_id", name="uq_decision_experiment_request"),
        Index(
            "ix_decision_experiment_customer_created", "experiment_key", "customer_id", "created_at"
        ),
        # The reward join's open decisions by window (migration 0006).
        Index(
            "ix_decision_experiment_status_window", "experiment_key", "status", "window_closes_at"
        ),
        # The short-term reward join's decisions by activation (migration 0007).
        Index("ix_decision_experiment_activated", "experiment_key", "activated_at"),
    )

    id: str = Field(default_factory=new_decision_id, primary_key=True, sa_type=String(32))
    experiment_key: str = Field(
        index=True,
        sa_type=String(64),
        sa_column_args=[ForeignKey("experiment.key", name="fk_decision_experiment_key")],
    )
    customer_id: str = Field(index=True, sa_type=String(255))
    request_id: str | None = Field(default=None, sa_type=String(255))
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=UTCDateTime)
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    eligible_count: int
    excluded: list[Any] = Field(default_factory=list, sa_type=JSON)
    action_index: int | None = None
    action: dict[str, Any] | None = Field(default=None, sa_type=NullableJSON)
    propensity: float | None = None
    group: str = Field(default=Group.TREATMENT.value, sa_type=String(16))
    policy_version: int = 0
    deferred: bool = False
    activated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    window_closes_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default=DecisionStatus.OPEN.value, sa_type=String(16))
    suppressed_reason: str | None = Field(default=None, sa_type=String(255))
    #: The customer's strategy for the epoch (experiments with strategies; None otherwise).
    strategy: str | None = Field(default=None, sa_type=String(64))


class Outcome(SQLModel, table=True):
    """One reported event. Kept whatever its attribution: unknown or late outcomes are reported,
    never dropped."""

    __tablename__ = "outcome"
    __table_args__ = (
        UniqueConstraint("outcome_id", name="uq_outcome_outcome_id"),
        # A customer's outcomes in a time range: the KPI of a strategy epoch.
        Index(
            "ix_outcome_experiment_customer_occurred",
            "experiment_key",
            "customer_id",
            "occurred_at",
        ),
        # The outcomes received since the reward join's last pass (migration 0006).
        Index("ix_outcome_experiment_received", "experiment_key", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    outcome_id: str = Field(sa_type=String(255))
    decision_id: str | None = Field(default=None, index=True, sa_type=String(32))
    experiment_key: str | None = Field(default=None, index=True, sa_type=String(64))
    customer_id: str | None = Field(default=None, sa_type=String(255))
    event: str = Field(sa_type=String(255))
    value: float = 1.0
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    attribution: str = Field(default=Attribution.ATTRIBUTED.value, sa_type=String(32))


class Reward(SQLModel, table=True):
    """A decision's reward; ``learned_version`` is the snapshot that folded it in, if any."""

    __tablename__ = "reward"
    # The rewards no snapshot has learned yet (migration 0006).
    __table_args__ = (Index("ix_reward_experiment_learned", "experiment_key", "learned_version"),)

    decision_id: str = Field(
        primary_key=True,
        sa_type=String(32),
        sa_column_args=[ForeignKey("decision.id", name="fk_reward_decision_id")],
    )
    experiment_key: str = Field(index=True, sa_type=String(64))
    value: float
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    learned_version: int | None = None


class ShortTermReward(SQLModel, table=True):
    """A decision's short-term reward (the spec's ``[reward.short_term]``), joined apart from
    its reward and as soon as it is known, for a gated policy's short-term learner;
    ``learned_version`` is the snapshot that folded it in, if any (migration 0007)."""

    __tablename__ = "short_term_reward"
    __table_args__ = (
        Index("ix_short_term_reward_experiment_learned", "experiment_key", "learned_version"),
    )

    decision_id: str = Field(
        primary_key=True,
        sa_type=String(32),
        sa_column_args=[ForeignKey("decision.id", name="fk_short_term_reward_decision_id")],
    )
    experiment_key: str = Field(sa_type=String(64))
    value: float
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    learned_version: int | None = None


class PolicySnapshot(SQLModel, table=True):
    """A policy's learned state (npz bytes) at one version of one experiment."""

    __tablename__ = "policy_snapshot"
    __table_args__ = (
        UniqueConstraint("experiment_key", "version", name="uq_policy_snapshot_experiment_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_key: str = Field(index=True, sa_type=String(64))
    version: int
    state: bytes = Field(sa_type=LargeBinary)
    rows_learned: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PolicyPromotion(SQLModel, table=True):
    """Safe promotion's record of one learned snapshot: pending until judged, then promoted
    (served) or rejected (never served), with the off-policy estimates and the reason.

    A snapshot with no row here was published without the gate and is served as before;
    one whose row is pending or rejected is never served. The estimates are SNIPS on ``rows``
    fresh logged rewards: the candidate's value and interval, the serving version's value, and
    the paired difference (candidate minus serving) with its interval, against ``margin``.
    """

    __tablename__ = "policy_promotion"
    __table_args__ = (
        UniqueConstraint(
            "experiment_key", "version", name="uq_policy_promotion_experiment_version"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_key: str = Field(index=True, sa_type=String(64))
    #: The candidate snapshot's version.
    version: int
    #: The version that served when the candidate was learned, then when it was judged.
    serving_version: int
    status: str = Field(default=PromotionStatus.PENDING.value, sa_type=String(16))
    estimator: str | None = Field(default=None, sa_type=String(32))
    rows: int | None = None
    candidate_value: float | None = None
    candidate_low: float | None = None
    candidate_high: float | None = None
    serving_value: float | None = None
    difference: float | None = None
    difference_low: float | None = None
    difference_high: float | None = None
    margin: float | None = None
    confidence: float | None = None
    reason: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class StrategyAssignment(SQLModel, table=True):
    """A customer's strategy for one epoch of a strategy experiment, and the epoch's KPI.

    One row per (experiment, customer, epoch): the unique key makes the assignment stable
    across processes (insert-or-return). Holdout customers get a row with no strategy, so
    their epoch KPI is measured for comparison. ``kpi`` is set once the epoch has closed;
    ``learned_version`` is the strategy snapshot that folded it in.
    """

    __tablename__ = "strategy_assignment"
    __table_args__ = (
        UniqueConstraint(
            "experiment_key",
            "customer_id",
            "epoch",
            name="uq_strategy_assignment_experiment_customer_epoch",
        ),
        Index("ix_strategy_assignment_experiment_epoch_end", "experiment_key", "epoch_end"),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_key: str = Field(
        sa_type=String(64),
        sa_column_args=[ForeignKey("experiment.key", name="fk_strategy_assignment_experiment_key")],
    )
    customer_id: str = Field(sa_type=String(255))
    epoch: int
    epoch_start: datetime = Field(sa_type=UTCDateTime)
    epoch_end: datetime = Field(sa_type=UTCDateTime)
    group: str = Field(default=Group.TREATMENT.value, sa_type=String(16))
    strategy: str | None = Field(default=None, sa_type=String(64))
    strategy_index: int | None = None
    propensity: float | None = None
    policy_version: int = 0
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    assigned_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    kpi: float | None = None
    measured_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    learned_version: int | None = None


class StrategySnapshot(SQLModel, table=True):
    """The strategy policy's learned state (npz bytes) at one version of one experiment."""

    __tablename__ = "strategy_snapshot"
    __table_args__ = (
        UniqueConstraint(
            "experiment_key", "version", name="uq_strategy_snapshot_experiment_version"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_key: str = Field(index=True, sa_type=String(64))
    version: int
    state: bytes = Field(sa_type=LargeBinary)
    rows_learned: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """An API key, stored as a salted hash; ``prefix`` finds the row, the hash proves the key."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(unique=True, index=True, sa_type=String(16))
    key_hash: str = Field(sa_type=String(255))
    salt: str = Field(sa_type=String(64))
    scopes: str = Field(sa_type=String(64))
    name: str = Field(default="", sa_type=String(255))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def scope_set(self) -> frozenset[str]:
        """The scopes as a set (``scopes`` is stored comma-separated)."""
        return frozenset(s for s in self.scopes.split(",") if s)


class LearnerLease(SQLModel, table=True):
    """Who runs the learner for ``name`` until ``expires_at`` (SQLite has no advisory locks)."""

    __tablename__ = "learner_lease"

    name: str = Field(primary_key=True, sa_type=String(64))
    holder: str = Field(sa_type=String(255))
    expires_at: datetime = Field(sa_type=UTCDateTime)
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


TABLES: tuple[type[SQLModel], ...] = (
    Experiment,
    Decision,
    Outcome,
    Reward,
    ShortTermReward,
    PolicySnapshot,
    ApiKey,
    LearnerLease,
    StrategyAssignment,
    StrategySnapshot,
    PolicyPromotion,
)
"""Every table model, in dependency order."""
