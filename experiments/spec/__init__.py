"""The experiment spec: what an experiment decides, for whom, how it learns and what it rewards.

Importers write ``from experiments.spec import X``; the modules behind this package each do
one job.
"""

from __future__ import annotations

from experiments.spec.model import (
    MAX_ACTIONS,
    BooleanField,
    CategoricalField,
    ContactSpec,
    ContextField,
    Duration,
    ExperimentSpec,
    HoldoutSpec,
    LearnerSpec,
    NumericField,
    PolicySpec,
    RewardSpec,
    SpecError,
    example_spec_text,
    load_spec,
    parse_spec,
)

__all__ = [
    "MAX_ACTIONS",
    "BooleanField",
    "CategoricalField",
    "ContactSpec",
    "ContextField",
    "Duration",
    "ExperimentSpec",
    "HoldoutSpec",
    "LearnerSpec",
    "NumericField",
    "PolicySpec",
    "RewardSpec",
    "SpecError",
    "example_spec_text",
    "load_spec",
    "parse_spec",
]
