"""The spec's sections other than the whole: policy, holdout, contact rules, learner, safe
promotion (the reward is :mod:`experiments.spec.reward`).

Each validates itself; checks that need several sections (a policy that learns from [0, 1]
rewards needs a 0/1 reward, a fixed holdout action must be one the rules allow) live in
:class:`experiments.spec.model.ExperimentSpec`. Every model is frozen and rejects unknown
fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

from bandit import POLICIES
from experiments.spec.errors import SpecError, names
from experiments.spec.values import FROZEN, Duration, Hour, Integer, Number


class PolicySpec(BaseModel):
    """The bandit algorithm (a name registered in :data:`bandit.POLICIES`) and its
    hyper-parameters, passed to :func:`bandit.make_policy` as keyword arguments."""

    model_config = FROZEN

    name: StrictStr
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in POLICIES:
            raise ValueError(f"must be one of {names(sorted(POLICIES))}; got {value!r}")
        return value

    @field_validator("params")
    @classmethod
    def _not_engine_owned(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "exploration_floor" in value:
            raise ValueError(
                "must not set 'exploration_floor': the spec's top-level 'exploration_floor' sets it"
            )
        if "seed" in value:
            raise ValueError("must not set 'seed': the engine seeds the policy")
        problem = _json_problem(value, "")
        if problem:
            raise ValueError(problem)
        return value


def _json_problem(value: object, where: str) -> str | None:
    """Why ``value`` would not survive a JSON round trip (non-finite numbers, dates, ...)."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where or 'value'} must be finite; got {value}"
    if isinstance(value, list | tuple):
        for position, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{position}]")
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            problem = _json_problem(item, f"{where}.{key}".lstrip("."))
            if problem:
                return problem
        return None
    return (
        f"{where or 'value'} must be a number, string, boolean, list or table; "
        f"got {type(value).__name__}"
    )


class HoldoutSpec(BaseModel):
    """The randomized control group: its share of customers and the policy that serves it
    (uniform random, or always the business-as-usual ``action``). Customers are assigned by
    a stable hash of the experiment key, or of ``salt`` when given: experiments with the same
    salt and share hold out the same customers (the arms of an ``engage run`` do)."""

    model_config = FROZEN

    share: Number = Field(default=0.1, ge=0.0, lt=1.0)
    policy: Literal["uniform", "fixed"] = "uniform"
    action: dict[str, StrictStr] | None = None
    salt: StrictStr | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _action_iff_fixed(self) -> HoldoutSpec:
        if self.policy == "fixed" and self.action is None:
            raise SpecError(
                "action",
                "is required when policy = 'fixed': the business-as-usual action, "
                "one level per factor",
            )
        if self.policy != "fixed" and self.action is not None:
            raise SpecError("action", "only applies to policy = 'fixed'; policy is 'uniform'")
        return self


class ContactSpec(BaseModel):
    """Contact rules: at most ``max_decisions`` per customer per ``window``; no decisions
    while the customer's local hour (context field ``local_hour_field``) is in
    ``quiet_hours = (start, end)``, which wraps midnight when ``start > end``."""

    model_config = FROZEN

    max_decisions: Integer | None = Field(default=None, ge=1)
    window: Duration = timedelta(days=7)
    quiet_hours: tuple[Hour, Hour] | None = None
    local_hour_field: StrictStr | None = None

    @model_validator(mode="after")
    def _quiet_hours(self) -> ContactSpec:
        if self.quiet_hours is not None:
            start, end = self.quiet_hours
            if start == end:
                raise SpecError(
                    "quiet_hours", f"must be [start, end] with start != end; got [{start}, {end}]"
                )
            if self.local_hour_field is None:
                raise SpecError(
                    "local_hour_field",
                    "is required with quiet_hours: the numeric context field holding the "
                    "customer's local hour",
                )
        return self

    def is_quiet(self, local_hour: float) -> bool:
        """True when ``local_hour`` (0 <= h < 24; fractions allowed) falls in the quiet hours.

        The quiet period is ``[start, end)``: (22, 8) is quiet from 22:00 to 07:59.
        """
        if self.quiet_hours is None:
            return False
        start, end = self.quiet_hours
        hour = math.floor(local_hour) % 24
        return start <= hour < end if start < end else hour >= start or hour < end


class LearnerSpec(BaseModel):
    """Publish a new policy snapshot every ``batch_size`` new rewards or every
    ``interval_seconds``, whichever comes first."""

    model_config = FROZEN

    batch_size: Integer = Field(default=100, ge=1)
    interval_seconds: Number = Field(default=60.0, gt=0.0)


class PromotionSpec(BaseModel):
    """Safe promotion: a learned snapshot serves only once off-policy evaluation on fresh
    logged rewards says it is at least as good as the serving version, up to a margin.

    With ``enabled``, each snapshot the learner publishes is a candidate. At the next learning
    step, on the ``min_rows`` or more rewards neither it nor the serving version has learned
    (the learner waits for that many), the candidate's SNIPS value ``V̂_c`` and the serving
    version's ``V̂_s`` are compared through their paired difference ``Δ̂ = V̂_c - V̂_s``
    (:func:`bandit.ope.snips_difference`); the candidate is promoted when the lower bound of
    its value, ``V̂_s + Δ̂_low`` at ``confidence``, is at least ``V̂_s - margin``, i.e. when
    ``Δ̂_low >= -margin``. Otherwise the previous version keeps serving and the reason is
    stored. ``margin`` is in reward units; left unset it is ``relative_margin · |V̂_s|``.

    Off by default: the gate holds each snapshot back one learning step and makes the
    learner wait for ``min_rows`` fresh rewards.
    """

    model_config = FROZEN

    enabled: StrictBool = False
    estimator: Literal["snips"] = "snips"
    margin: Number | None = Field(default=None, ge=0.0)
    relative_margin: Number = Field(default=0.05, ge=0.0, le=1.0)
    min_rows: Integer = Field(default=200, ge=2)
    confidence: Number = Field(default=0.95, gt=0.0, lt=1.0)

    def margin_for(self, serving_value: float) -> float:
        """The margin in reward units, against the serving version's estimated value."""
        if self.margin is not None:
            return float(self.margin)
        return float(self.relative_margin) * abs(serving_value)
