"""The ``[reward]`` section: how a decision's outcomes become its reward.

The engine computes rewards by this definition (:mod:`experiments.engine.reward`, and
:mod:`experiments.engine.surrogate` for a surrogate reward); the ``[reward.surrogate]`` table
lives in :mod:`experiments.spec.surrogate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictStr, field_validator, model_validator

from experiments.spec.errors import SpecError
from experiments.spec.limits import MAX_MAGNITUDE
from experiments.spec.surrogate import SurrogateSpec, check_surrogate_reward
from experiments.spec.values import FROZEN, Duration, Number

__all__ = ["RewardSpec"]


class RewardSpec(BaseModel):
    """How a decision's outcomes become its reward (see :mod:`experiments.engine.reward`).

    ``event``: 1 when the named event occurs within the window. ``sum``: the sum of the
    named event's values within the window. ``retained``: 0 when the named (churn) event
    occurs within the window, else the default, which is 1 unless given. ``change``: the
    share of the way from ``baseline_field`` (the KPI at decision time, a numeric context
    field) to ``target`` that the last named KPI event within the window reached, in
    [-1, 1]. ``surrogate``: the index of the ``sum`` KPI predicted from early signals
    (the ``[reward.surrogate]`` table, :mod:`experiments.spec.surrogate`). ``default``
    applies when the window closes with nothing.
    """

    model_config = FROZEN

    kind: Literal["event", "sum", "retained", "change", "surrogate"]
    event: StrictStr = Field(min_length=1)
    window: Duration
    default: Number = 0.0
    target: Number | None = None
    baseline_field: StrictStr | None = None
    surrogate: SurrogateSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _retained_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("kind") == "retained" and "default" not in data:
            return {**data, "default": 1.0}
        return data

    @field_validator("default", "target")
    @classmethod
    def _bounded(cls, value: float | None) -> float | None:
        # Rewards are squared in learning: 1e308 would overflow to inf there, long after
        # the spec was accepted.
        if value is not None and abs(value) > MAX_MAGNITUDE:
            raise ValueError(
                f"must be a number within +-{MAX_MAGNITUDE:g}, the bound on outcome values; "
                f"got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _change_fields(self) -> RewardSpec:
        for name in ("target", "baseline_field"):
            given = getattr(self, name) is not None
            if self.kind == "change" and not given:
                raise SpecError(name, "is required when kind = 'change'")
            if self.kind != "change" and given:
                raise SpecError(name, f"only applies to kind = 'change'; kind is {self.kind!r}")
        check_surrogate_reward(self.kind, self.window, self.surrogate)
        return self
