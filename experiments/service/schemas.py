"""Request and response bodies of the HTTP API: the contract clients code against.

Unknown fields are rejected (``extra="forbid"``), numbers must be finite, timestamps must
carry a timezone, and text must be storable as is on every database: no NUL character
(PostgreSQL text cannot hold it) and no lone surrogate (not Unicode, cannot be encoded).
Anything else, markup and quotes included, is stored and returned verbatim.

Each boundary has one converter: a request body becomes the engine's input with
:meth:`DecisionIn.as_request` or :meth:`OutcomeIn.as_input`, and the engine's answer becomes a
response body with ``model_validate`` (the response models read attributes: ``from_attributes``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from experiments.analysis.promotions import PromotionRecord
from experiments.engine import DecisionRequest, OutcomeInput
from experiments.spec import GuardrailAction
from experiments.spec.guardrails import MAX_GUARDRAILS
from experiments.spec.text import text_problem
from experiments.vocabulary import ExperimentStatus, Group

#: Largest magnitude of an outcome value: larger ones are unit errors, and their squares would
#: overflow the report's variance sums.
MAX_OUTCOME_VALUE = 1e12


def storable(value: str) -> str:
    """``value`` itself if it can be stored verbatim, else ``ValueError`` saying why."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _iso_text(value: Any) -> Any:
    """Only ISO 8601 text is a timestamp here: pydantic would also read numbers as seconds or
    milliseconds since the epoch, guessing which by size."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError(
            "must be an ISO 8601 date-time with a timezone, such as 2026-01-31T12:00:00Z; "
            f"got {value!r}"
        )
    return value


#: An aware timestamp written as ISO 8601 text (``2026-01-31T12:00:00+01:00``).
IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]

#: Text the store can hold verbatim (see the module docstring).
SafeStr = Annotated[str, AfterValidator(storable)]
Text = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(storable)]
ShortText = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(storable)]


class Strict(BaseModel):
    """A request body: unknown fields and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Answer(BaseModel):
    """A response body, read from the attributes of what the engine returned."""

    model_config = ConfigDict(from_attributes=True)


class DecisionIn(Strict):
    customer_id: Text
    # Values are checked against the experiment's context schema (numbers, levels, booleans).
    context: dict[SafeStr, Any] = Field(default_factory=dict)
    exclude: list[dict[SafeStr, SafeStr]] | None = Field(default=None, max_length=1000)
    request_id: Text | None = None
    defer: bool = False

    def as_request(self) -> DecisionRequest:
        """The engine's request for this body."""
        return DecisionRequest(
            customer_id=self.customer_id,
            context=self.context,
            exclude=self.exclude or (),
            request_id=self.request_id,
            defer=self.defer,
        )


class DecisionOut(Answer):
    decision_id: str
    action: dict[str, str] | None
    propensity: float | None
    group: Group
    policy_version: int
    deferred: bool = False
    #: Why a contact rule suppressed the decision (the engine's ``suppressed_reason``).
    suppressed: str | None = Field(
        default=None, validation_alias=AliasChoices("suppressed_reason", "suppressed")
    )
    #: The customer's strategy for the current epoch; null for holdout customers and for
    #: experiments without strategies.
    strategy: str | None = None


class OutcomeIn(Strict):
    outcome_id: Text
    decision_id: ShortText | None = None
    experiment: ShortText | None = None
    customer_id: Text | None = None
    event: Text
    value: float = Field(default=1.0, ge=-MAX_OUTCOME_VALUE, le=MAX_OUTCOME_VALUE)
    #: When it happened; the service refuses instants implausibly far from now (see app.py).
    occurred_at: IsoDatetime

    def as_input(self) -> OutcomeInput:
        """The engine's outcome for this body."""
        return OutcomeInput(**self.model_dump())


class OutcomesIn(Strict):
    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=1000)


class OutcomesOut(Answer):
    accepted: int
    duplicates: int


class ExperimentOut(Answer):
    key: str
    description: str
    status: ExperimentStatus
    exploration_floor: float
    apprentice: bool
    created_at: datetime
    updated_at: datetime
    spec: dict[str, Any]
    #: Why and when the experiment stopped itself (null unless it did and was not resumed),
    #: and when an admin last resumed one that had.
    stop_reason: str | None = None
    stopped_at: datetime | None = None
    resumed_at: datetime | None = None


class ExperimentDetail(ExperimentOut):
    """One experiment as ``GET /v1/experiments/{key}`` answers: with safe promotion's newest
    verdicts, newest first (empty without ``[promotion] enabled``), as ``engage experiments
    show --json`` prints it."""

    promotions: list[PromotionRecord]


class ExperimentPatch(Strict):
    exploration_floor: float | None = Field(default=None, ge=0.0, le=1.0)
    apprentice: bool | None = None
    #: ``running`` resumes (clearing an automatic stop), ``paused`` pauses, ``stopped`` stops.
    status: ExperimentStatus | None = None
    #: Guardrail label (``retention:churn``, as reports name it) -> ``stop`` or ``alert``.
    guardrail_actions: dict[ShortText, GuardrailAction] | None = Field(
        default=None, max_length=MAX_GUARDRAILS
    )
    #: What a mismatched treatment/holdout split does: ``stop`` or ``alert``.
    sample_ratio_action: GuardrailAction | None = None


class ErrorBody(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody
