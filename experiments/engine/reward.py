"""Rewards: a decision's outcomes turned into one number by the experiment's KPI definition.

Pure functions, no database: the engine passes a decision's time, the current time and the
outcomes attributed to it, and gets back the reward once it is known. Only outcomes of the
spec's event that occurred in the window ``[decided_at, decided_at + window)`` count; others
are ignored here (the engine reports outcomes after the window as late).

=========  ====================================================  =============================
kind       reward                                                known
=========  ====================================================  =============================
event      1 when the event occurs in the window, else default   at the event, or window close
sum        sum of the event's values in the window, else default  at window close
retained   0 when the (churn) event occurs, else default (1)      at the event, or window close
change     progress from baseline toward target, in [-1, 1]       at window close
funnel     sum of the weights (1 each) of the steps that occur  every step seen, or close
=========  ====================================================  =============================

A ``surrogate`` reward (an index of the KPI from early signals) needs the index fitted on
matured decisions; :mod:`experiments.engine.surrogate` joins it.

Every reward returned is final (it can no longer change); ``None`` means "not known yet".
All times must be timezone-aware; naive datetimes are refused rather than guessed at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Real

from experiments.spec import RewardSpec, SpecError


def _aware(value: object, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise SpecError(field, f"must be a timezone-aware datetime; got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise SpecError(
            field, f"must be timezone-aware (UTC); got the naive datetime {value.isoformat()}"
        )
    return value


def _finite(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise SpecError(field, f"must be a finite number; got {value!r}")
    return float(value)


@dataclass(frozen=True)
class OutcomeEvent:
    """One outcome attributed to a decision: event name, value and when it occurred."""

    event: str
    value: float
    occurred_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.event, str) or not self.event:
            raise SpecError("event", f"must be a non-empty string; got {self.event!r}")
        object.__setattr__(self, "value", _finite(self.value, "value"))
        _aware(self.occurred_at, "occurred_at")


@dataclass(frozen=True)
class RewardResult:
    """A decision's reward and whether it is final (can no longer change)."""

    value: float
    final: bool


@dataclass(frozen=True)
class JoinPage:
    """What one page of a reward join did (one transaction over at most ``limit`` candidates
    of each kind): ``written`` reward rows, ``settled`` decisions that left the open state
    (rewarded, or never activated), whether a candidate query came back ``full`` (it
    returned ``limit`` rows, so more may be waiting), and whether the query for decisions
    with fresh outcomes was one of them (``fresh_full``): if not, the next page need not read
    those decisions again."""

    written: int
    settled: int
    full: bool
    fresh_full: bool = False


def window_closes_at(spec: RewardSpec, decided_at: datetime) -> datetime:
    """The end of the reward window, ``decided_at + window`` in UTC (exclusive: an outcome
    at exactly this instant is outside the window)."""
    return _aware(decided_at, "decided_at").astimezone(UTC) + spec.window


def change_reward(kpi: float, *, baseline: float, target: float) -> float:
    """Share of the way from ``baseline`` to ``target`` that ``kpi`` reached, in [-1, 1].

        r = clip((kpi - baseline) / (target - baseline), -1, 1)

    1 means the target was reached (or passed), 0 no movement, negative a move away from
    the target; the direction comes from the sign of ``target - baseline``, so a target
    below the baseline rewards decreases. When ``target == baseline`` there is no gap and
    no direction: the rule is the limit of a baseline just below the target, 1 when
    ``kpi >= target`` and -1 otherwise (a target is a level to reach or keep).
    """
    gap = target - baseline
    if gap == 0.0:
        return 1.0 if kpi >= target else -1.0
    return float(min(1.0, max(-1.0, (kpi - baseline) / gap)))


def evaluate_reward(
    spec: RewardSpec,
    *,
    decided_at: datetime,
    now: datetime,
    outcomes: Sequence[OutcomeEvent],
    baseline: float | None = None,
) -> RewardResult | None:
    """The reward of a decision made at ``decided_at``, as known at ``now``, or ``None``.

    Args:
        spec: the experiment's reward definition.
        decided_at: when the decision was made; the window starts here (inclusive).
        now: the current time; the window is closed when ``now >= decided_at + window``.
        outcomes: the outcomes attributed to the decision, in any order; other events and
            outcomes outside the window are ignored.
        baseline: for ``kind = "change"`` (required there), the KPI at decision time (the
            context's ``baseline_field``).

    Returns:
        ``RewardResult(value, final=True)`` once the reward can no longer change, ``None``
        while it is not yet known. For ``change`` the KPI is the value of the last event
        in the window; events at the same instant resolve to the largest value, so the
        result never depends on the order of ``outcomes``. ``sum`` adds with
        :func:`math.fsum`, exactly rounded, so it is order-independent too. A ``funnel`` is
        the sum of the weights of the steps that occurred (1 each unless ``weights`` says),
        final once every step has occurred, else when the window closes.
    """
    if spec.kind == "surrogate":
        raise SpecError(
            "reward.kind",
            "a surrogate reward is joined by experiments.engine.surrogate, not evaluated alone",
        )
    start = _aware(decided_at, "decided_at")
    current = _aware(now, "now")
    target = baseline_value = 0.0
    if spec.kind == "change":
        if spec.target is None:
            raise SpecError("reward.target", "is required for kind = 'change'")
        if baseline is None:
            raise SpecError("baseline", "is required for kind = 'change': the KPI at decision time")
        target, baseline_value = spec.target, _finite(baseline, "baseline")
    closes = start + spec.window
    closed = current >= closes
    hits: list[tuple[datetime, float]] = []
    steps = spec.named_events
    reached: set[str] = set()
    for position, outcome in enumerate(outcomes):
        occurred = _aware(outcome.occurred_at, f"outcomes[{position}].occurred_at")
        if not start <= occurred < closes:
            continue
        if outcome.event == spec.event:
            hits.append((occurred, float(outcome.value)))
        if outcome.event in steps:
            reached.add(outcome.event)

    if spec.kind == "funnel":
        if len(reached) < len(steps) and not closed:  # a step may still occur
            return None
        if not reached:
            return RewardResult(spec.default, final=True)
        weights = spec.step_weights
        value = math.fsum(weights[steps.index(name)] for name in reached)
        return RewardResult(value, final=True)

    if spec.kind in ("event", "retained"):
        if hits:  # the event settles it at once
            return RewardResult(1.0 if spec.kind == "event" else 0.0, final=True)
        return RewardResult(spec.default, final=True) if closed else None
    if not closed:
        return None
    if not hits:
        return RewardResult(spec.default, final=True)
    if spec.kind == "sum":
        return RewardResult(math.fsum(value for _, value in hits), final=True)
    _, kpi = max(hits)  # the latest event; the largest value among ties
    return RewardResult(change_reward(kpi, baseline=baseline_value, target=target), final=True)


__all__ = [
    "OutcomeEvent",
    "RewardResult",
    "change_reward",
    "evaluate_reward",
    "window_closes_at",
]
