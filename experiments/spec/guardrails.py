"""The ``[guardrails]`` section: KPIs a treatment must not harm, and what happens when it does.

::

    [guardrails]
    confidence = 0.95          # of the always-valid intervals guardrails are read from
    sample_ratio = "stop"      # a mismatched treatment/holdout split: "stop" or "alert"

    [[guardrails.kpi]]
    measure = "retention"      # retention | sum | count | contacts
    event = "churn"            # the event measured (retention: the churn event)
    margin = 0.02              # the loss tolerated, in the KPI's units (here 2 points)
    direction = "higher"       # which way is better; by default the measure's own
    action = "stop"            # "stop" (the default) or "alert"

Every KPI is measured per customer, over the customers the experiment served
(:mod:`experiments.analysis.guardrails`): ``retention`` is 1 for a customer with no ``event``
since the first decision, ``sum`` the sum of ``event``'s values, ``count`` the number of
``event``s (unsubscribes, complaints) and ``contacts`` the decisions served. A guardrail is
breached when the always-valid interval of ``treatment - holdout`` lies beyond the margin on
the bad side (:func:`bandit.guardrails.non_inferiority`); with action ``stop`` the experiment
then falls back to its control policy by itself (:mod:`experiments.engine.guardrails`).
The section is optional: without it, a mismatched split still stops the experiment.

The actions are the one part an admin changes on a running experiment
(:meth:`GuardrailsSpec.with_actions`, ``engage experiments set KEY --guardrail
retention:churn=alert --sample-ratio alert``, ``PATCH /v1/experiments/{key}``): each guardrail
is named there by its :attr:`GuardrailSpec.label`, as the reports name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

from pydantic import BaseModel, Field, StrictStr, field_validator, model_validator

from experiments.spec.errors import SpecError, clip, names
from experiments.spec.values import FROZEN, Number

__all__ = ["GuardrailAction", "GuardrailSpec", "GuardrailsSpec"]

#: Which way is better for each measure unless a guardrail says otherwise.
BETTER = {"retention": "higher", "sum": "higher", "count": "lower", "contacts": "lower"}

#: Most guardrails per experiment: each is one query per check.
MAX_GUARDRAILS = 20

#: What a failing check does: fall back to control by itself ("stop") or only report ("alert").
GuardrailAction = Literal["stop", "alert"]
ACTIONS: tuple[str, ...] = get_args(GuardrailAction)


def _action(value: object, field: str) -> GuardrailAction:
    """``value`` as an :data:`GuardrailAction`; ``SpecError`` naming ``field`` if it is none."""
    if value == "stop" or value == "alert":
        return value
    raise SpecError(field, f"must be one of {names(ACTIONS)}; got {clip(value)}")


class GuardrailSpec(BaseModel):
    """One guardrail KPI (see the module docstring)."""

    model_config = FROZEN

    measure: Literal["retention", "sum", "count", "contacts"]
    event: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    margin: Number = Field(ge=0.0)
    direction: Literal["higher", "lower"] | None = None
    action: GuardrailAction = "stop"
    name: StrictStr | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _event(self) -> GuardrailSpec:
        if self.measure == "contacts" and self.event is not None:
            raise SpecError("event", "does not apply to measure = 'contacts' (decisions served)")
        if self.measure in ("sum", "count") and self.event is None:
            raise SpecError("event", f"is required when measure = {self.measure!r}")
        return self

    @property
    def event_name(self) -> str | None:
        """The event measured: ``event``, ``"churn"`` for retention, None for contacts."""
        if self.measure == "retention":
            return self.event or "churn"
        return self.event

    @property
    def label(self) -> str:
        """How reports name it: ``name``, else ``measure:event`` (``contacts`` alone)."""
        if self.name is not None:
            return self.name
        return self.measure if self.event_name is None else f"{self.measure}:{self.event_name}"

    @property
    def higher_is_better(self) -> bool:
        return (self.direction or BETTER[self.measure]) == "higher"


class GuardrailsSpec(BaseModel):
    """The guardrail KPIs, the confidence they are read at, and what a mismatched split does."""

    model_config = FROZEN

    confidence: Number = Field(default=0.95, gt=0.5, lt=1.0)
    sample_ratio: GuardrailAction = "stop"
    kpi: list[GuardrailSpec] = Field(default_factory=list, max_length=MAX_GUARDRAILS)

    @field_validator("kpi")
    @classmethod
    def _unique_labels(cls, value: list[GuardrailSpec]) -> list[GuardrailSpec]:
        seen: set[str] = set()
        for guardrail in value:
            if guardrail.label in seen:
                raise ValueError(
                    f"must name each guardrail once; {guardrail.label!r} appears twice "
                    "(give one a 'name')"
                )
            seen.add(guardrail.label)
        return value

    def with_actions(
        self, actions: Mapping[str, str], *, sample_ratio: str | None = None
    ) -> GuardrailsSpec:
        """This section with the named guardrails' actions, and the split's if given, changed.

        ``actions`` maps a guardrail's :attr:`~GuardrailSpec.label` to ``"stop"`` or
        ``"alert"``. ``SpecError`` names the request's field, ``guardrail_actions`` for a label
        the section does not have (listing those it has) and ``guardrail_actions.<label>`` or
        ``sample_ratio_action`` for a value that is no action, so the CLI and HTTP say alike.
        """
        known = [guardrail.label for guardrail in self.kpi]
        for label, value in actions.items():
            if label not in known:
                listed = names(known) if known else "none (the spec has no [[guardrails.kpi]])"
                raise SpecError(
                    "guardrail_actions",
                    f"has no guardrail {clip(label)}; the guardrails are {listed}",
                )
            _action(value, f"guardrail_actions.{label}")
        kpi = [
            guardrail.model_copy(update={"action": actions[guardrail.label]})
            if guardrail.label in actions
            else guardrail
            for guardrail in self.kpi
        ]
        split = (
            self.sample_ratio
            if sample_ratio is None
            else _action(sample_ratio, "sample_ratio_action")
        )
        return self.model_copy(update={"kpi": kpi, "sample_ratio": split})
