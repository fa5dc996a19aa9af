"""The ``[report]`` section: how the lift report reads the experiment.

``covariates`` names numeric context fields measured before the experiment could touch the
customer (spend or usage over the 30 days before, say). The lift report then shows, beside
each lift's interval, the interval adjusted on them (CUPED / regression adjustment,
:func:`bandit.adjustment.cuped_lift`) and how much narrower it is::

    [report]
    covariates = ["spend_30d", "usage_30d"]

A covariate's value is the customer's at their first decision in the experiment (in
``engage run``: at day 0, before any decision), so no treatment has moved it yet; a field that
moves with the treatment would take part of the lift out with it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictStr, field_validator

from experiments.spec.values import FROZEN

#: Most covariates a report adjusts on: the slope is a least-squares fit per report.
MAX_COVARIATES = 16


class ReportSpec(BaseModel):
    """What the lift report adjusts on (see the module docstring)."""

    model_config = FROZEN

    covariates: list[StrictStr] = Field(default_factory=list, max_length=MAX_COVARIATES)

    @field_validator("covariates")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"must name each field once; {', '.join(map(repr, repeated))} repeat")
        return value
