"""The ``[reward.surrogate]`` table: a reward that predicts a long-term KPI from early signals.

With ``kind = "surrogate"`` the reward's ``event``, ``window`` and ``default`` define the
long-term KPI, as for ``kind = "sum"`` (say 28-day revenue), and this table defines the
surrogate index that stands in for it (Athey, Chetty, Imbens & Kang 2019), so feedback
arrives after the short ``window`` instead of the long one:

- ``signals``: events whose values are summed over the first ``window`` of each decision
  (a click or accept counts 1; revenue and usage add their amounts);
- ``covariates``: optional numeric context fields, known at decision time;
- the index ``h(s, x) = [1, s, x] . beta`` is a ridge fit (``ridge``) on *matured* decisions
  (their long window closed, so their KPI is known), first once ``min_matured`` have matured,
  then again every ``refresh`` more; each decision's reward is its index, computed when its
  short window closes with the newest fit (:mod:`experiments.engine.surrogate`);
- ``fallback``: the reward of decisions whose short window closes before the first fit:
  ``"early_sum"``, the sum of the KPI's event over the short window (the only part of the
  KPI known by then), or ``"default"``, the reward's ``default``.

Example::

    [reward]
    kind = "surrogate"
    event = "revenue"
    window = "28d"

    [reward.surrogate]
    window = "7d"
    signals = ["click", "accept", "revenue"]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field, StrictStr, field_validator

from experiments.spec.errors import SpecError, only_for_kind
from experiments.spec.limits import MAX_MAGNITUDE
from experiments.spec.values import FROZEN, Duration, Integer, Number

__all__ = [
    "EventLike",
    "SurrogateSpec",
    "check_surrogate_reward",
    "signal_values",
    "window_total",
]


class SurrogateSpec(BaseModel):
    """How the surrogate index is built and refreshed (module docstring)."""

    model_config = FROZEN

    window: Duration
    signals: list[StrictStr] = Field(min_length=1)
    covariates: list[StrictStr] = Field(default_factory=list)
    min_matured: Integer = Field(default=200, ge=2)
    refresh: Integer = Field(default=1000, ge=1)
    ridge: Number = Field(default=1.0, ge=0.0, le=MAX_MAGNITUDE)
    fallback: Literal["early_sum", "default"] = "early_sum"

    @field_validator("signals", "covariates")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"must name each event or field once; repeated {repeated}")
        return value

    @property
    def n_coefficients(self) -> int:
        """Intercept, one per signal, one per covariate."""
        return 1 + len(self.signals) + len(self.covariates)


def check_surrogate_reward(
    kind: str, long_window: timedelta, surrogate: SurrogateSpec | None
) -> None:
    """The cross-field rules of a surrogate reward: the table is given exactly when ``kind``
    is ``surrogate``, its window is shorter than the KPI's, and ``min_matured`` exceeds the
    number of coefficients (a fit needs more matured decisions than unknowns)."""
    needed_for = "the short window and the signals that predict the KPI"
    if (
        not only_for_kind(kind, "surrogate", "surrogate", surrogate, needed_for)
        or surrogate is None
    ):
        return
    if surrogate.window >= long_window:
        raise SpecError(
            "surrogate.window",
            "must be shorter than the reward's window (the KPI's); got "
            f"{surrogate.window.total_seconds():g}s >= {long_window.total_seconds():g}s",
        )
    if surrogate.min_matured <= surrogate.n_coefficients:
        raise SpecError(
            "surrogate.min_matured",
            f"must exceed the index's {surrogate.n_coefficients} coefficients; got "
            f"{surrogate.min_matured}",
        )


class EventLike(Protocol):
    """An outcome as far as the surrogate needs it (an engine ``OutcomeEvent``, a stored
    ``Outcome``)."""

    @property
    def event(self) -> str: ...

    @property
    def value(self) -> float: ...

    @property
    def occurred_at(self) -> datetime: ...


def window_total(
    events: Sequence[EventLike], name: str, start: datetime, length: timedelta
) -> float | None:
    """The sum of the values of ``name`` events in ``[start, start + length)`` (exactly
    rounded, so independent of order), or None when there is none."""
    values = [
        item.value
        for item in events
        if item.event == name and start <= item.occurred_at < start + length
    ]
    return math.fsum(values) if values else None


def signal_values(spec: SurrogateSpec, events: Sequence[EventLike], start: datetime) -> np.ndarray:
    """The surrogates of a decision made at ``start``, ``(m,)``: per signal, the sum of its
    events' values over the short window (0 when none)."""
    return np.array(
        [window_total(events, name, start, spec.window) or 0.0 for name in spec.signals]
    )
