"""The experiment spec: what an experiment decides, for whom, how it learns and what it rewards.

A spec is written in TOML (see ``examples/``) or posted as JSON with the same fields, and is
validated here once, with errors that name the field by its dotted path and say what was
expected and what was received::

    reward.window: must be a duration such as '14d', '36h', '90m', '30s', ISO-8601 'P14D'
    or a number of seconds; got '14 days'

Every model is frozen and rejects unknown fields, so a typo never silently falls back to a
default. :func:`parse_spec` is the entry point for mappings, :func:`load_spec` for files;
both raise :class:`SpecError` and nothing else for bad input.

Importers use this package's names (``from experiments.spec import ExperimentSpec``); the
modules behind it each do one job:

- ``values``: the value types fields are written in (durations, strict numbers, hours);
- ``errors``: :class:`SpecError` and the translation of pydantic errors into it;
- ``context``: the context schema and the encoding of a context to a vector;
- ``model``: the sections and :class:`ExperimentSpec`, which also builds the policies;
- ``reward``: the ``[reward]`` section; ``surrogate`` its ``[reward.surrogate]`` table;
- ``state``: the ``[state]`` section, the customer state decisions see and log;
- ``guardrails``: the ``[guardrails]`` section, KPIs a treatment must not harm;
- ``simulation``: the ``[simulation]`` section, the world ``engage run`` simulates in;
- ``limits``: the bounds on sizes and hyper-parameters that scale memory or time;
- ``loading``: :func:`parse_spec`, :func:`load_spec`, and the packaged quickstart spec;
- ``text``: which text the store can hold verbatim (checked on every spec parsed).
"""

from __future__ import annotations

from experiments.spec.context import BooleanField, CategoricalField, ContextField, NumericField
from experiments.spec.errors import SpecError
from experiments.spec.guardrails import GuardrailAction, GuardrailSpec, GuardrailsSpec
from experiments.spec.limits import MAX_ACTIONS
from experiments.spec.loading import example_spec_text, load_spec, parse_spec
from experiments.spec.model import (
    ContactSpec,
    ExperimentSpec,
    HoldoutSpec,
    LearnerSpec,
    PolicySpec,
    PromotionSpec,
)
from experiments.spec.reward import RewardSpec
from experiments.spec.simulation import SimulationSpec
from experiments.spec.values import Duration

__all__ = [
    "MAX_ACTIONS",
    "BooleanField",
    "CategoricalField",
    "ContactSpec",
    "ContextField",
    "Duration",
    "ExperimentSpec",
    "GuardrailAction",
    "GuardrailSpec",
    "GuardrailsSpec",
    "HoldoutSpec",
    "LearnerSpec",
    "NumericField",
    "PolicySpec",
    "PromotionSpec",
    "RewardSpec",
    "SimulationSpec",
    "SpecError",
    "example_spec_text",
    "load_spec",
    "parse_spec",
]
