"""Request and response bodies of the HTTP API: the contract clients code against.

Unknown fields are rejected (``extra="forbid"``), numbers must be finite, and timestamps
must carry a timezone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Text = Field(min_length=1, max_length=256)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DecisionIn(Strict):
    customer_id: str = Text
    context: dict[str, Any] = Field(default_factory=dict)
    exclude: list[dict[str, str]] | None = Field(default=None, max_length=1000)
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    defer: bool = False


class DecisionOut(BaseModel):
    decision_id: str
    action: dict[str, str] | None
    propensity: float | None
    group: Literal["treatment", "holdout"]
    policy_version: int
    deferred: bool = False
    suppressed: str | None = None


class OutcomeIn(Strict):
    outcome_id: str = Text
    decision_id: str | None = Field(default=None, min_length=1, max_length=64)
    experiment: str | None = Field(default=None, min_length=1, max_length=64)
    customer_id: str | None = Field(default=None, min_length=1, max_length=256)
    event: str = Text
    value: float = 1.0
    occurred_at: AwareDatetime


class OutcomesIn(Strict):
    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=1000)


class OutcomesOut(BaseModel):
    accepted: int
    duplicates: int


class ExperimentOut(BaseModel):
    key: str
    description: str
    status: str
    exploration_floor: float
    apprentice: bool
    created_at: datetime
    updated_at: datetime
    spec: dict[str, Any]


class ExperimentPatch(Strict):
    exploration_floor: float | None = Field(default=None, ge=0.0, le=1.0)
    apprentice: bool | None = None


class ErrorBody(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody
