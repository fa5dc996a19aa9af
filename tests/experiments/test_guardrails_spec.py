"""The ``[guardrails]`` spec section: defaults, labels and directions, and every bad input
named by its field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from experiments.spec import ExperimentSpec, SpecError, example_spec_text, parse_spec


def with_guardrails(section: dict[str, Any]) -> dict[str, Any]:
    return {**tomllib.loads(example_spec_text()), "guardrails": section}


def test_default_is_no_kpi_and_a_stopping_sample_ratio_check() -> None:
    spec = parse_spec(tomllib.loads(example_spec_text()))
    assert spec.guardrails.kpi == []
    assert spec.guardrails.sample_ratio == "stop"
    assert spec.guardrails.confidence == 0.95
    # A spec at the defaults stores no guardrails section, as before the section existed.
    assert "guardrails" not in spec.to_json_dict()


def test_guardrails_parse_and_round_trip() -> None:
    spec = parse_spec(
        with_guardrails(
            {
                "confidence": 0.9,
                "sample_ratio": "alert",
                "kpi": [
                    {"measure": "retention", "margin": 0.02},
                    {"measure": "sum", "event": "revenue", "margin": 1.5, "action": "alert"},
                    {"measure": "count", "event": "unsubscribe", "margin": 0.0},
                    {"measure": "contacts", "margin": 0.5, "direction": "higher", "name": "reach"},
                ],
            }
        )
    )
    labels = [g.label for g in spec.guardrails.kpi]
    assert labels == ["retention:churn", "sum:revenue", "count:unsubscribe", "reach"]
    assert [g.higher_is_better for g in spec.guardrails.kpi] == [True, True, False, True]
    assert [g.action for g in spec.guardrails.kpi] == ["stop", "alert", "stop", "stop"]
    assert parse_spec(spec.to_json_dict()) == spec
    assert isinstance(spec, ExperimentSpec)


@pytest.mark.parametrize(
    ("section", "field", "fragment"),
    [
        ({"kpi": [{"measure": "retention"}]}, "guardrails.kpi[0].margin", "required"),
        ({"kpi": [{"measure": "retention", "margin": -1}]}, "guardrails.kpi[0].margin", "0"),
        ({"kpi": [{"measure": "sum", "margin": 1}]}, "guardrails.kpi[0].event", "required"),
        (
            {"kpi": [{"measure": "contacts", "event": "x", "margin": 1}]},
            "guardrails.kpi[0].event",
            "does not apply",
        ),
        ({"kpi": [{"measure": "clicks", "margin": 1}]}, "guardrails.kpi[0].measure", "retention"),
        (
            {"kpi": [{"measure": "retention", "margin": 1, "action": "page"}]},
            "guardrails.kpi[0].action",
            "stop",
        ),
        ({"kpi": [{"measure": "retention", "margin": 1, "typo": 1}]}, "guardrails.kpi[0].typo", ""),
        (
            {"kpi": [{"measure": "retention", "margin": 1}, {"measure": "retention", "margin": 2}]},
            "guardrails.kpi",
            "twice",
        ),
        ({"confidence": 1.0}, "guardrails.confidence", "1"),
        ({"sample_ratio": "ignore"}, "guardrails.sample_ratio", "alert"),
    ],
)
def test_bad_guardrails_name_the_field(section: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(with_guardrails(section))
    assert caught.value.field == field, str(caught.value)
    assert fragment in str(caught.value)


def test_the_readme_section_is_a_valid_guardrails_section() -> None:
    """The README's ```toml block that starts with [guardrails] parses on the quickstart."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [part.split("```")[0] for part in readme.split("```toml\n")[1:]]
    (block,) = [block for block in blocks if block.startswith("[guardrails]")]
    spec = parse_spec(with_guardrails(tomllib.loads(block)["guardrails"]))
    assert [g.label for g in spec.guardrails.kpi] == ["retention:churn", "count:unsubscribe"]
    assert [g.higher_is_better for g in spec.guardrails.kpi] == [True, False]
    assert [g.action for g in spec.guardrails.kpi] == ["stop", "alert"]
