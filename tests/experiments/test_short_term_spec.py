"""The ``[reward.short_term]`` table: a gated lookahead_ts policy's short-term reward. It round-
trips through the spec's stored form, and a spec that cannot be served is refused by name."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from experiments.spec import SpecError, parse_spec

CLICK = {"kind": "event", "event": "click", "window": 86_400.0}
SPEC: dict[str, Any] = {
    "key": "short-term",
    "factors": {"message": ["calm", "urgent"]},
    "context": {"spend": {"type": "numeric", "min": 0}},
    "policy": {"name": "lookahead_ts", "params": {"gate_level": 0.05, "short_term_reward": "own"}},
    "reward": {
        "kind": "funnel",
        "events": ["click", "accept"],
        "window": 86_400.0,
        "short_term": CLICK,
    },
    "state": {"contact_half_life": "7d", "lookback": "28d"},
}


def _changed(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = copy.deepcopy(SPEC)
    change(data)
    return data


def test_the_short_term_reward_round_trips() -> None:
    spec = parse_spec(SPEC)
    assert spec.reward.short_term is not None
    assert (spec.reward.short_term.kind, spec.reward.short_term.event) == ("event", "click")
    stored = spec.to_json_dict()
    assert stored["reward"]["short_term"] == {
        "kind": "event",
        "event": "click",
        "events": None,
        "weights": None,
        "window": 86_400.0,
        "default": 0.0,
        "target": None,
        "baseline_field": None,
    }
    assert parse_spec(stored) == spec
    # A spec without one stores no trace of it.
    plain = _changed(lambda data: data.update(policy={"name": "linear_ts", "params": {}}))
    del plain["reward"]["short_term"], plain["state"]
    assert "short_term" not in parse_spec(plain).to_json_dict()["reward"]


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (
            lambda data: data["policy"]["params"].pop("short_term_reward"),
            "reward.short_term",
            "gated lookahead_ts",
        ),
        (
            lambda data: data["policy"]["params"].update(gate_level=0.0),
            "reward.short_term",
            "gate_level > 0",
        ),
        (
            lambda data: data["reward"].pop("short_term"),
            "reward.short_term",
            "is required by policy.params.short_term_reward = 'own'",
        ),
        (
            lambda data: data["reward"]["short_term"].update(window=2 * 86_400.0),
            "reward.short_term.window",
            "must not exceed the reward's window (86400 s)",
        ),
        (
            lambda data: data["reward"]["short_term"].update(kind="surrogate"),
            "reward.short_term.kind",
            "surrogate",
        ),
        (
            lambda data: data["reward"]["short_term"].update(short_term=CLICK),
            "reward.short_term.short_term",
            "none of its own",
        ),
        (
            lambda data: data["reward"]["short_term"].update(event=""),
            "reward.short_term.event",
            "",
        ),
        (
            lambda data: data["reward"]["short_term"].update(kind="change", target=1.0),
            "reward.short_term.baseline_field",
            "required",
        ),
        (
            lambda data: data["reward"]["short_term"].update(
                kind="change", target=1.0, baseline_field="tenure"
            ),
            "reward.short_term.baseline_field",
            "tenure",
        ),
        (
            lambda data: data["policy"]["params"].update(short_term_cap=1.0),
            "policy.params",
            "short_term_cap",
        ),
    ],
)
def test_a_bad_short_term_reward_is_refused_by_name(
    change: Callable[[dict[str, Any]], object], field: str, says: str
) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(_changed(change))
    assert error.value.field == field
    assert says in str(error.value)
