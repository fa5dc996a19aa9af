"""The experiment spec: the examples load, specs round-trip through JSON, every bad input
names its field, and contexts encode to hand-built vectors."""

from __future__ import annotations

import ast
import copy
import datetime
import json
import math
import tomllib
from collections.abc import Callable
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bandit import POLICIES, make_policy
from experiments.spec import (
    MAX_ACTIONS,
    ContactSpec,
    ExperimentSpec,
    SpecError,
    example_spec_text,
    load_spec,
    parse_spec,
)
from experiments.spec.limits import policy_cost

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ENGAGEMENT = EXAMPLES / "engagement.toml"
QUICKSTART = EXAMPLES / "quickstart.toml"


def quickstart_data() -> dict[str, Any]:
    return tomllib.loads(example_spec_text())


def engagement_data() -> dict[str, Any]:
    return tomllib.loads(ENGAGEMENT.read_text())


# --------------------------------------------------------------------------- the examples
def test_engagement_example_loads() -> None:
    spec = load_spec(ENGAGEMENT)
    space = spec.decision_space()
    assert list(spec.factors) == ["offer", "message", "channel", "timing"]
    assert space.factor_sizes == (8, 5, 4, 5)
    assert space.n_actions == 800
    assert int(space.allowed.sum()) >= 200
    # no push at night, whatever the offer and message
    night_push = space.index_of(
        {"offer": "discount_10", "message": "educational", "channel": "push", "timing": "night"}
    )
    assert not space.allowed[night_push]
    assert spec.policy.name in POLICIES
    assert (spec.reward.kind, spec.reward.event) == ("sum", "revenue")
    assert spec.reward.window == timedelta(days=14)
    assert (spec.holdout.share, spec.holdout.policy) == (0.1, "uniform")
    assert spec.contact.max_decisions == 3
    assert spec.contact.window == timedelta(days=7)
    assert spec.contact.quiet_hours == (22, 8)
    assert spec.contact.local_hour_field == "local_hour"
    assert spec.n_context == len(spec.feature_names)


def test_quickstart_example_loads_and_matches_example_spec_text() -> None:
    assert QUICKSTART.read_text() == example_spec_text()
    spec = load_spec(QUICKSTART)
    assert spec.key == "quickstart"
    assert (spec.reward.kind, spec.reward.event) == ("event", "click")
    assert spec.reward.window == timedelta(days=1)
    assert spec.decision_space().n_actions == 9


def test_packaged_quickstart_is_the_example_file_and_a_valid_spec() -> None:
    """``engage init`` writes package data (experiments/spec/quickstart.toml), which must
    be there in an installed package, parse, and equal the example in the repository."""
    packaged = resources.files("experiments.spec").joinpath("quickstart.toml")
    assert packaged.is_file()
    text = packaged.read_text(encoding="utf-8")
    assert text == example_spec_text() == QUICKSTART.read_text(encoding="utf-8")
    spec = parse_spec(tomllib.loads(text))
    assert spec == load_spec(QUICKSTART)


@pytest.mark.parametrize("path", [ENGAGEMENT, QUICKSTART], ids=lambda p: p.name)
def test_round_trip_through_json(path: Path) -> None:
    spec = load_spec(path)
    data = spec.to_json_dict()
    assert isinstance(data["reward"]["window"], float)  # windows travel as seconds
    assert data["reward"]["window"] == spec.reward.window.total_seconds()
    again = parse_spec(json.loads(json.dumps(data)))
    assert again == spec
    assert again.to_json_dict() == data
    assert again.feature_names == spec.feature_names


def test_spec_is_frozen_and_builds_the_space_once() -> None:
    spec = load_spec(QUICKSTART)
    with pytest.raises(ValueError, match="frozen"):
        spec.key = "other"  # type: ignore[misc]
    assert spec.decision_space() is spec.decision_space()


def test_build_policy_uses_params_and_floor() -> None:
    data = quickstart_data()
    data["policy"] = {"name": "linear_ts", "params": {"ridge": 2.0, "n_samples": 7}}
    data["exploration_floor"] = 0.2
    spec = parse_spec(data)
    policy = spec.build_policy(seed=0)
    assert (policy.ridge, policy.n_samples, policy.exploration_floor) == (2.0, 7, 0.2)
    assert policy.n_context == spec.n_context
    assert spec.build_holdout_policy(seed=0).name == "uniform"


@pytest.mark.parametrize("floor", [None, 0.0, 0.3, 1.0])
def test_build_policy_takes_an_exploration_floor(floor: float | None) -> None:
    """The engine builds the treatment policy with an experiment's current floor; None
    means the spec's own, and 0.0 is a floor like any other, not a missing one."""
    data = quickstart_data()
    data["exploration_floor"] = 0.2
    spec = parse_spec(data)
    policy = spec.build_policy(seed=0, exploration_floor=floor)
    assert policy.exploration_floor == (0.2 if floor is None else floor)
    assert (policy.name, policy.n_context) == ("logistic_ts", spec.n_context)


def test_build_policy_equals_make_policy_with_the_same_arguments() -> None:
    """``spec.build_policy(seed=rng, exploration_floor=floor)`` is the call the engine
    spells out with make_policy today: same generator, same choices and propensities. Params
    without ``noise_variance`` give a linear policy ``noise_variance="auto"``."""
    data = quickstart_data()
    data["policy"] = {"name": "linear_ts", "params": {"ridge": 2.0}}
    spec = parse_spec(data)
    contexts = spec.encode_contexts(
        [{"tenure_months": float(month), "plan": "prepaid"} for month in range(6)]
    )
    built = spec.build_policy(seed=np.random.default_rng(7), exploration_floor=0.25)
    made = make_policy(
        "linear_ts",
        space=spec.decision_space(),
        n_context=spec.n_context,
        seed=np.random.default_rng(7),
        exploration_floor=0.25,
        ridge=2.0,
        noise_variance="auto",
    )
    ours, theirs = built.select(contexts), made.select(contexts)
    np.testing.assert_array_equal(ours.actions, theirs.actions)
    np.testing.assert_array_equal(ours.propensities, theirs.propensities)


def test_fixed_holdout_serves_the_business_as_usual_action() -> None:
    data = quickstart_data()
    data["holdout"] = {
        "share": 0.2,
        "policy": "fixed",
        "action": {"offer": "none", "channel": "sms"},
    }
    spec = parse_spec(data)
    holdout = spec.build_holdout_policy(seed=0)
    decision = holdout.select(np.zeros((3, spec.n_context)))
    names = [spec.decision_space().action_name(int(a)) for a in decision.actions]
    assert names == ["offer=none|channel=sms"] * 3
    np.testing.assert_array_equal(decision.propensities, 1.0)


# --------------------------------------------------------------------------- windows
@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("14d", timedelta(days=14)),
        ("36h", timedelta(hours=36)),
        ("90m", timedelta(minutes=90)),
        ("30s", timedelta(seconds=30)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(hours=36)),
        ("1.5d", timedelta(hours=36)),
        ("P14D", timedelta(days=14)),
        ("PT36H", timedelta(hours=36)),
        (86_400, timedelta(days=1)),
        (0.5, timedelta(milliseconds=500)),
    ],
)
def test_window_formats(window: object, expected: timedelta) -> None:
    data = quickstart_data()
    data["reward"]["window"] = window
    assert parse_spec(data).reward.window == expected


@given(number=st.integers(min_value=1, max_value=10_000), unit=st.sampled_from("wdhms"))
def test_short_durations_mean_what_they_say(number: int, unit: str) -> None:
    seconds = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}[unit]
    data = quickstart_data()
    data["contact"] = {"window": f"{number}{unit}"}
    assert parse_spec(data).contact.window == timedelta(seconds=number * seconds)


def test_retained_default_is_one_unless_given() -> None:
    data = quickstart_data()
    data["reward"] = {"kind": "retained", "event": "churn", "window": "30d"}
    assert parse_spec(data).reward.default == 1.0
    data["reward"]["default"] = 0.5
    assert parse_spec(data).reward.default == 0.5


def test_change_reward_spec() -> None:
    data = quickstart_data()
    data["policy"] = {"name": "kalman_ts"}
    data["context"]["data_usage_30d"] = {"type": "numeric", "min": 0}
    data["reward"] = {
        "kind": "change",
        "event": "data_usage",
        "window": "30d",
        "target": 10.0,
        "baseline_field": "data_usage_30d",
    }
    spec = parse_spec(data)
    assert (spec.reward.target, spec.reward.baseline_field) == (10.0, "data_usage_30d")
    assert parse_spec(spec.to_json_dict()) == spec


# --------------------------------------------------------------------------- bad specs
Mutation = Callable[[dict[str, Any]], Any]


def _set(*path: str | int, value: object) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        target = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


def _drop(*path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        target = data
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return mutate


CHANGE = {"kind": "change", "event": "usage", "window": "30d", "target": 10.0}
BAD_SPECS: list[tuple[str, Mutation, str, str]] = [
    # (id, mutation of the quickstart spec, field, fragment of the message)
    ("unknown top-level field", _set("colour", value="red"), "colour", "unknown field"),
    (
        "promotion on too few rows",
        _set("promotion", value={"enabled": True, "min_rows": 1}),
        "promotion.min_rows",
        "greater than or equal to 2",
    ),
    (
        "promotion margin below zero",
        _set("promotion", value={"margin": -0.1}),
        "promotion.margin",
        "greater than or equal to 0",
    ),
    (
        "promotion by an unknown estimator",
        _set("promotion", value={"estimator": "ips"}),
        "promotion.estimator",
        "'snips'",
    ),
    (
        "promotion of a value-function policy",
        lambda data: data.update(
            policy={"name": "fitted_q", "params": {}}, promotion={"enabled": True}
        ),
        "promotion.enabled",
        "cannot judge",
    ),
    ("unknown reward field", _set("reward", "colour", value="red"), "reward.colour", "'kind'"),
    (
        "unknown context-field field",
        _set("context", "plan", "colour", value=1),
        "context.plan.colour",
        "expected one of ['type', 'levels', 'required', 'default']",
    ),
    ("unknown holdout field", _set("holdout", "shares", value=0.1), "holdout.shares", "unknown"),
    ("missing key", _drop("key"), "key", "required field is missing"),
    ("missing reward", _drop("reward"), "reward", "required field is missing"),
    ("bad key", _set("key", value="Bad Key"), "key", "got 'Bad Key'"),
    ("long key", _set("key", value="k" * 65), "key", "1 to 64 characters"),
    ("description not a string", _set("description", value=3), "description", "got 3"),
    ("bad window", _set("reward", "window", value="14 days"), "reward.window", "'14 days'"),
    ("zero window", _set("reward", "window", value="0s"), "reward.window", "positive"),
    ("negative window", _set("reward", "window", value=-5), "reward.window", "positive"),
    ("negative ISO window", _set("reward", "window", value="-P1D"), "reward.window", "positive"),
    ("bool window", _set("reward", "window", value=True), "reward.window", "got True"),
    ("NaN window", _set("reward", "window", value=math.nan), "reward.window", "got nan"),
    ("bad reward kind", _set("reward", "kind", value="clicks"), "reward.kind", "'clicks'"),
    ("empty event", _set("reward", "event", value=""), "reward.event", "at least 1"),
    ("NaN default", _set("reward", "default", value=math.nan), "reward.default", "finite"),
    ("NUL in event", _set("reward", "event", value="a\x00b"), "reward.event", "NUL"),
    ("lone surrogate", _set("description", value="\ud800"), "description", "surrogate"),
    ("string default", _set("reward", "default", value="0"), "reward.default", "got '0'"),
    ("target off change", _set("reward", "target", value=1.0), "reward.target", "only applies"),
    (
        "change without target",
        _set("reward", value={**CHANGE, "target": None}),
        "reward.target",
        "required",
    ),
    ("change without baseline", _set("reward", value=CHANGE), "reward.baseline_field", "required"),
    ("negative share", _set("holdout", "share", value=-0.1), "holdout.share", "got -0.1"),
    ("share of one", _set("holdout", "share", value=1.0), "holdout.share", "less than 1"),
    ("bad holdout policy", _set("holdout", "policy", value="bau"), "holdout.policy", "'bau'"),
    (
        "fixed holdout without action",
        _set("holdout", value={"policy": "fixed"}),
        "holdout.action",
        "required",
    ),
    (
        "uniform holdout with action",
        _set("holdout", value={"action": {"offer": "none", "channel": "sms"}}),
        "holdout.action",
        "only applies",
    ),
    (
        "holdout action with unknown level",
        _set("holdout", value={"policy": "fixed", "action": {"offer": "gift", "channel": "sms"}}),
        "holdout.action",
        "'gift'",
    ),
    (
        "holdout action missing a factor",
        _set("holdout", value={"policy": "fixed", "action": {"offer": "none"}}),
        "holdout.action",
        "missing ['channel']",
    ),
    (
        "holdout action excluded by the rules",
        _set(
            "holdout",
            value={"policy": "fixed", "action": {"offer": "data_bundle", "channel": "email"}},
        ),
        "holdout.action",
        "excluded",
    ),
    ("unknown policy", _set("policy", "name", value="bogus"), "policy.name", "got 'bogus'"),
    (
        "bad policy param value",
        _set("policy", "params", value={"ridge": -1}),
        "policy.params",
        "'ridge'",
    ),
    (
        "unknown policy param",
        _set("policy", "params", value={"rigde": 1}),
        "policy.params.rigde",
        "is not a hyper-parameter of policy 'logistic_ts'; expected one of ['fit_intercept',",
    ),
    ("seed in params", _set("policy", "params", value={"seed": 1}), "policy.params", "'seed'"),
    (
        "infinite policy param",
        _set("policy", "params", value={"ridge": math.inf}),
        "policy.params",
        "ridge must be finite",
    ),
    (
        "date policy param",
        _set("policy", "params", value={"ridge": datetime.date(2024, 1, 1)}),
        "policy.params",
        "got date",
    ),
    (
        "floor in params",
        _set("policy", "params", value={"exploration_floor": 0.1}),
        "policy.params",
        "'exploration_floor'",
    ),
    (
        "binary policy with a sum reward",
        _set("reward", value={"kind": "sum", "event": "revenue", "window": "14d"}),
        "policy.name",
        "rewards in [0, 1]",
    ),
    ("floor above one", _set("exploration_floor", value=1.5), "exploration_floor", "got 1.5"),
    ("bool floor", _set("exploration_floor", value=True), "exploration_floor", "got True"),
    ("no factors", _set("factors", value={}), "factors", "at least one factor"),
    ("factor without levels", _set("factors", "offer", value=[]), "factors.offer", "non-empty"),
    ("duplicate levels", _set("factors", "offer", value=["a", "a"]), "factors.offer", "duplicate"),
    ("numeric level", _set("factors", "offer", value=["a", 2]), "factors.offer[1]", "got 2"),
    ("empty level", _set("factors", "offer", value=["a", ""]), "factors.offer[1]", "got ''"),
    ("blank level", _set("factors", "offer", value=[" ", "a"]), "factors.offer[0]", "got ' '"),
    (
        "level with a trailing space",
        _set("factors", "channel", value=["sms", "push "]),
        "factors.channel[1]",
        "without leading or trailing spaces; got 'push '",
    ),
    (
        "level with a separator",
        _set("factors", "channel", value=["sms", "push=1"]),
        "factors.channel[1]",
        "must be a level without '='",
    ),
    (
        "factor name of 5,000 characters",
        _set("factors", value={"f" * 5_000: ["a", "b"]}),
        f"factors.{'f' * 5_000}",
        "must be a factor name of at most 64 characters; got 5,000",
    ),
    (
        "level of 129 characters",
        _set("factors", "offer", value=["a", "b" * 129]),
        "factors.offer[1]",
        "must be a level of at most 128 characters; got 129",
    ),
    (
        "factor name with a separator",
        _set("factors", value={"offer|channel": ["a", "b"]}),
        "factors.offer|channel",
        "must be a factor name without '|'",
    ),
    (
        "too many actions",
        _set("factors", value={f"f{i}": [str(j) for j in range(10)] for i in range(6)}),
        "factors",
        f"at most {MAX_ACTIONS:,}",
    ),
    (
        "rule with unknown factor",
        _set("rules", value=[{"offer": "none"}, {"chanel": "sms"}]),
        "rules[1]",
        "'chanel'",
    ),
    ("rule with unknown level", _set("rules", value=[{"offer": "gift"}]), "rules[0]", "'gift'"),
    ("empty rule", _set("rules", value=[{}]), "rules[0]", "at least one factor"),
    (
        "rule with empty level list",
        _set("rules", value=[{"offer": []}]),
        "rules[0].offer",
        "got []",
    ),
    ("rule with a number", _set("rules", value=[{"offer": 3}]), "rules[0].offer", "got 3"),
    (
        "rules exclude everything",
        _set("rules", value=[{"channel": ["sms", "email", "push"]}]),
        "rules",
        "no action",
    ),
    (
        "unknown context type",
        _set("context", "x", value={"type": "text"}),
        "context.x.type",
        "'text'",
    ),
    ("context type missing", _set("context", "x", value={"min": 1}), "context.x.type", "missing"),
    (
        "bad context field name",
        _set("context", "bad name", value={"type": "boolean"}),
        "context.bad name",
        "names",
    ),
    (
        "min above max",
        _set("context", "x", value={"type": "numeric", "min": 3, "max": 1}),
        "context.x.max",
        ">= min",
    ),
    (
        "infinite bound",
        _set("context", "x", value={"type": "numeric", "max": math.inf}),
        "context.x.max",
        "finite",
    ),
    (
        "bool bound",
        _set("context", "x", value={"type": "numeric", "min": True}),
        "context.x.min",
        "got True",
    ),
    (
        "numeric default out of bounds",
        _set("context", "x", value={"type": "numeric", "min": 0, "default": -1}),
        "context.x.default",
        "[0, inf]",
    ),
    (
        "optional field without default",
        _set("context", "x", value={"type": "numeric", "required": False}),
        "context.x.default",
        "needs a default",
    ),
    (
        "required field with default",
        _set("context", "x", value={"type": "boolean", "required": True, "default": True}),
        "context.x.default",
        "takes no default",
    ),
    (
        "no levels",
        _set("context", "x", value={"type": "categorical", "levels": []}),
        "context.x.levels",
        "at least 1",
    ),
    (
        "repeated level",
        _set("context", "x", value={"type": "categorical", "levels": ["a", "b", "a"]}),
        "context.x.levels[2]",
        "unique",
    ),
    (
        "default not a level",
        _set("context", "x", value={"type": "categorical", "levels": ["a"], "default": "b"}),
        "context.x.default",
        "got 'b'",
    ),
    (
        "int boolean default",
        _set("context", "x", value={"type": "boolean", "default": 1}),
        "context.x.default",
        "got 1",
    ),
    (
        "zero max decisions",
        _set("contact", value={"max_decisions": 0}),
        "contact.max_decisions",
        "got 0",
    ),
    (
        "quiet hours without local hour field",
        _set("contact", value={"quiet_hours": [22, 8]}),
        "contact.local_hour_field",
        "required",
    ),
    (
        "quiet hour 24",
        _set("contact", value={"quiet_hours": [22, 24], "local_hour_field": "tenure_months"}),
        "contact.quiet_hours[1]",
        "got 24",
    ),
    (
        "empty quiet hours",
        _set("contact", value={"quiet_hours": [8, 8], "local_hour_field": "tenure_months"}),
        "contact.quiet_hours",
        "start != end",
    ),
    (
        "local hour field unknown",
        _set("contact", value={"quiet_hours": [22, 8], "local_hour_field": "hour"}),
        "contact.local_hour_field",
        "got 'hour'",
    ),
    (
        "local hour field categorical",
        _set("contact", value={"quiet_hours": [22, 8], "local_hour_field": "plan"}),
        "contact.local_hour_field",
        "categorical",
    ),
    (
        "bad contact window",
        _set("contact", value={"window": "a week"}),
        "contact.window",
        "'a week'",
    ),
    ("zero batch size", _set("learner", value={"batch_size": 0}), "learner.batch_size", "got 0"),
    (
        "string interval",
        _set("learner", value={"interval_seconds": "60"}),
        "learner.interval_seconds",
        "got '60'",
    ),
    (
        "zero interval",
        _set("learner", value={"interval_seconds": 0}),
        "learner.interval_seconds",
        "greater than 0",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [case[1:] for case in BAD_SPECS],
    ids=[case[0] for case in BAD_SPECS],
)
def test_bad_spec_names_the_field(mutate: Mutation, field: str, fragment: str) -> None:
    data = quickstart_data()
    mutate(data)
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert str(caught.value) == f"{field}: {caught.value.message}"
    assert caught.value.errors[0] == (field, caught.value.message)


@pytest.mark.parametrize(
    ("baseline_field", "fragment"),
    [("plan", "categorical"), ("usage", "got 'usage'"), ("usage_optional", "optional")],
)
def test_change_baseline_must_be_a_required_numeric_field(
    baseline_field: str, fragment: str
) -> None:
    data = quickstart_data()
    data["policy"] = {"name": "linear_ts"}
    data["context"]["usage_optional"] = {"type": "numeric", "default": 0}
    data["reward"] = {**CHANGE, "baseline_field": baseline_field}
    with pytest.raises(SpecError, match="must name") as caught:
        parse_spec(data)
    assert caught.value.field == "reward.baseline_field"
    assert fragment in caught.value.message


def test_every_error_is_listed() -> None:
    data = quickstart_data()
    data["key"] = "Bad"
    data["holdout"] = {"share": 2}
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert [field for field, _ in caught.value.errors] == ["key", "holdout.share"]


def test_spec_must_be_a_mapping() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(["key", "quickstart"])  # type: ignore[arg-type]
    assert caught.value.field == "spec"


def test_load_spec_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no spec file") as caught:
        load_spec(tmp_path / "missing.toml")
    assert caught.value.field == "file"
    broken = tmp_path / "broken.toml"
    broken.write_text('key = "x"\nkey = "y"\n')
    with pytest.raises(SpecError, match="not valid TOML") as caught:
        load_spec(broken)
    assert caught.value.field == "file"
    assert "line" in caught.value.message
    with pytest.raises(SpecError, match="is a directory, not a file") as caught:
        load_spec(tmp_path)
    assert caught.value.field == "file"
    invalid = tmp_path / "invalid.toml"
    invalid.write_text(example_spec_text().replace('window = "1d"', 'window = "one day"'))
    with pytest.raises(SpecError) as caught:
        load_spec(invalid)
    assert caught.value.field == "reward.window"


# --------------------------------------------------------------------------- contexts
FULL_CONTEXT = {
    "device": "ios",
    "plan": "hybrid",
    "region": "west",
    "tenure_months": 27,
    "usage_7d": 1.5,
    "usage_30d": 6.25,
    "spend_7d": 4.0,
    "spend_30d": 19.5,
    "local_hour": 13,
    "days_since_contact": 3,
    "is_roaming": True,
}


def test_engagement_context_encodes_to_the_hand_built_vector() -> None:
    spec = load_spec(ENGAGEMENT)
    assert spec.feature_names == [
        "device=android", "device=ios", "device=feature_phone",
        "plan=prepaid", "plan=postpaid", "plan=hybrid",
        "region=north", "region=south", "region=east", "region=west", "region=central",
        "tenure_months", "usage_7d", "usage_30d", "spend_7d", "spend_30d", "local_hour",
        "days_since_contact", "is_roaming",
    ]  # fmt: skip
    expected = np.array(
        [0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 27, 1.5, 6.25, 4.0, 19.5, 13, 3, 1], dtype=np.float64
    )
    encoded = spec.encode_context(FULL_CONTEXT)
    assert encoded.dtype == np.float64
    assert encoded.shape == (spec.n_context,) == (19,)
    np.testing.assert_array_equal(encoded, expected)


def test_optional_fields_take_their_defaults() -> None:
    spec = load_spec(ENGAGEMENT)
    context = {
        k: v for k, v in FULL_CONTEXT.items() if k not in ("days_since_contact", "is_roaming")
    }
    encoded = spec.encode_context(context)
    names = spec.feature_names
    assert encoded[names.index("days_since_contact")] == 30.0
    assert encoded[names.index("is_roaming")] == 0.0
    # null counts as missing
    with_nulls = {**context, "days_since_contact": None, "is_roaming": None}
    np.testing.assert_array_equal(spec.encode_context(with_nulls), encoded)


def test_quickstart_context_by_hand() -> None:
    """[tenure_months, plan=prepaid, plan=postpaid, is_roaming]."""
    spec = load_spec(QUICKSTART)
    assert spec.feature_names == ["tenure_months", "plan=prepaid", "plan=postpaid", "is_roaming"]
    np.testing.assert_array_equal(
        spec.encode_context({"tenure_months": 5, "plan": "prepaid"}), [5, 1, 0, 0]
    )
    np.testing.assert_array_equal(
        spec.encode_context(
            {"tenure_months": np.float32(0.5), "plan": "postpaid", "is_roaming": np.bool_(True)}
        ),
        [0.5, 0, 1, 1],
    )


BAD_CONTEXTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown field", {"colour": "red"}, "context.colour", "unknown context field"),
    ("unknown level", {"plan": "enterprise"}, "context.plan", "got 'enterprise'"),
    ("level of wrong type", {"plan": 1}, "context.plan", "got 1"),
    ("NaN", {"tenure_months": math.nan}, "context.tenure_months", "finite"),
    ("infinity", {"tenure_months": math.inf}, "context.tenure_months", "finite"),
    ("minus infinity", {"tenure_months": -math.inf}, "context.tenure_months", "finite"),
    ("huge finite", {"tenure_months": 1e308}, "context.tenure_months", "within +-1e+12"),
    ("bool as number", {"tenure_months": True}, "context.tenure_months", "got True"),
    ("numpy bool as number", {"tenure_months": np.bool_(False)}, "context.tenure_months", "number"),
    ("string as number", {"tenure_months": "12"}, "context.tenure_months", "got '12'"),
    ("below min", {"tenure_months": -1}, "context.tenure_months", "[0, inf]; got -1"),
    ("above max", {"local_hour": 24}, "context.local_hour", "[0, 23]; got 24"),
    ("int as boolean", {"is_roaming": 1}, "context.is_roaming", "true or false"),
    ("string as boolean", {"is_roaming": "true"}, "context.is_roaming", "true or false"),
]


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [case[1:] for case in BAD_CONTEXTS],
    ids=[case[0] for case in BAD_CONTEXTS],
)
def test_bad_context_names_the_field(change: dict[str, Any], field: str, fragment: str) -> None:
    spec = load_spec(ENGAGEMENT)
    with pytest.raises(SpecError) as caught:
        spec.encode_context({**FULL_CONTEXT, **change})
    assert caught.value.field == field
    assert fragment in caught.value.message


@pytest.mark.parametrize("name", ["device", "tenure_months"])
def test_missing_required_context_field(name: str) -> None:
    spec = load_spec(ENGAGEMENT)
    context = {k: v for k, v in FULL_CONTEXT.items() if k != name}
    with pytest.raises(SpecError, match="missing") as caught:
        spec.encode_context(context)
    assert caught.value.field == f"context.{name}"
    with pytest.raises(SpecError, match="missing"):
        spec.encode_context({**context, name: None})


def test_context_must_be_a_mapping() -> None:
    spec = load_spec(QUICKSTART)
    with pytest.raises(SpecError) as caught:
        spec.encode_context([5, "prepaid"])  # type: ignore[arg-type]
    assert caught.value.field == "context"


def test_encode_contexts_stacks_rows_and_names_the_row() -> None:
    spec = load_spec(ENGAGEMENT)
    second = {**FULL_CONTEXT, "plan": "prepaid", "is_roaming": False}
    batch = spec.encode_contexts([FULL_CONTEXT, second])
    assert batch.shape == (2, spec.n_context)
    np.testing.assert_array_equal(batch[0], spec.encode_context(FULL_CONTEXT))
    np.testing.assert_array_equal(batch[1], spec.encode_context(second))
    assert spec.encode_contexts([]).shape == (0, spec.n_context)
    with pytest.raises(SpecError) as caught:
        spec.encode_contexts([FULL_CONTEXT, {**second, "region": "mars"}])
    assert caught.value.field == "contexts[1].region"
    with pytest.raises(SpecError) as caught:
        spec.encode_contexts(FULL_CONTEXT)  # type: ignore[arg-type]
    assert caught.value.field == "contexts"


@given(
    tenure=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    plan=st.sampled_from(["prepaid", "postpaid"]),
    roaming=st.one_of(st.none(), st.booleans()),
)
def test_encoding_matches_the_schema(tenure: float, plan: str, roaming: bool | None) -> None:
    spec = load_spec(QUICKSTART)
    context: dict[str, Any] = {"tenure_months": tenure, "plan": plan}
    if roaming is not None:
        context["is_roaming"] = roaming
    expected = [tenure, plan == "prepaid", plan == "postpaid", bool(roaming)]
    np.testing.assert_array_equal(spec.encode_context(context), np.array(expected, dtype=float))


def test_spec_rejects_direct_unknown_fields_too() -> None:
    """Built directly (not through parse_spec), pydantic's own error still refuses extras."""
    with pytest.raises(ValueError, match="colour"):
        ExperimentSpec.model_validate({**quickstart_data(), "colour": "red"})


# --------------------------------------------------------------------------- contact rules
@pytest.mark.parametrize(
    ("hours", "quiet", "loud"),
    [
        ((22, 8), [22, 23, 0, 3, 7, 7.99, 23.5], [8, 12, 21, 21.99]),
        ((1, 5), [1, 2, 4, 4.5], [0, 5, 12, 23]),
    ],
)
def test_quiet_hours(hours: tuple[int, int], quiet: list[float], loud: list[float]) -> None:
    contact = ContactSpec(quiet_hours=hours, local_hour_field="local_hour")
    assert all(contact.is_quiet(hour) for hour in quiet)
    assert not any(contact.is_quiet(hour) for hour in loud)
    assert not ContactSpec().is_quiet(23)


def test_deep_copy_of_example_data_is_not_mutated() -> None:
    data = engagement_data()
    before = copy.deepcopy(data)
    parse_spec(data)
    assert data == before


# --------------------------------------------------------------------------- public surface
PUBLIC = [
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


def test_public_names_are_pinned() -> None:
    """The package's ``__all__`` is its public surface; changing it is a decision, not a
    side effect of moving code between its modules."""
    import experiments.spec

    assert experiments.spec.__all__ == PUBLIC
    assert all(getattr(experiments.spec, name, None) is not None for name in PUBLIC)


def test_other_packages_import_only_public_names() -> None:
    """Every ``from experiments.spec import X`` outside the package names a public name."""
    imported: set[str] = set()
    for package in ("experiments", "cli", "tests", "bench"):
        for path in (ROOT / package).rglob("*.py"):
            if path.is_relative_to(ROOT / "experiments" / "spec"):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "experiments.spec":
                    imported.update(alias.name for alias in node.names)
    assert imported
    assert imported <= set(PUBLIC)


# --------------------------------------------------------------------------- resource bounds
def _big_factors(count: int, levels: int) -> dict[str, list[str]]:
    return {f"f{j}": [f"l{i}" for i in range(levels)] for j in range(count)}


RESOURCE_LIMITS: list[tuple[str, Mutation, str, str]] = [
    (
        "n_samples of a hundred million",
        _set("policy", value={"name": "logistic_ts", "params": {"n_samples": 100_000_000}}),
        "policy.params.n_samples",
        "must be at most 10,000; got 100,000,000",
    ),
    (
        "fitted Q memory",
        _set("policy", value={"name": "fitted_q", "params": {"memory": 10_000_000}}),
        "policy.params.memory",
        "must be at most 100,000",
    ),
    (
        "fitted Q iterations",
        _set("policy", value={"name": "fitted_q", "params": {"n_iterations": 1_000}}),
        "policy.params.n_iterations",
        "must be at most 100",
    ),
    (
        "too many factors",
        _set("factors", value={f"f{i}": ["a"] for i in range(33)}),
        "factors",
        "at most 32 factors; got 33",
    ),
    (
        "too many context fields",
        _set("context", value={f"x{i}": {"type": "numeric"} for i in range(257)}),
        "context",
        "at most 256 fields; got 257",
    ),
    (
        "too wide a context",
        _set(
            "context",
            value={"plan": {"type": "categorical", "levels": [f"p{i}" for i in range(1_025)]}},
        ),
        "context",
        "at most 1,024 columns",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [case[1:] for case in RESOURCE_LIMITS],
    ids=[case[0] for case in RESOURCE_LIMITS],
)
def test_sizes_that_scale_memory_or_time_are_bounded(
    mutate: Mutation, field: str, fragment: str
) -> None:
    data = quickstart_data()
    mutate(data)
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert (caught.value.field, fragment in caught.value.message) == (field, True), caught.value


def test_n_samples_is_bounded_by_the_space_it_samples_over() -> None:
    """100,000 actions times 101 draws is more than 10,000,000 numbers per decision: the
    error names n_samples and the largest value this space allows (100)."""
    data = quickstart_data()
    data["rules"] = []
    data["factors"] = _big_factors(5, 10)
    data["policy"] = {"name": "logistic_ts", "params": {"n_samples": 100}}
    parse_spec(data)
    data["policy"]["params"]["n_samples"] = 101
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert caught.value.field == "policy.params.n_samples"
    assert caught.value.message.startswith(
        "must be at most 100 for this space (100,000 actions, 50 level slots, 5 context columns"
    )
    assert caught.value.message.endswith("got 101")


def test_a_space_too_large_for_the_policy_names_the_policy_and_its_sizes() -> None:
    data = quickstart_data()
    data["rules"] = []
    data["factors"] = _big_factors(2, 300)
    data["policy"] = {"name": "linucb", "params": {"interactions": True}}
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert caught.value.field == "policy"
    assert caught.value.message.startswith(
        "policy 'linucb' is too large for this space (90,000 actions, 90,600 level slots"
    )
    assert "numbers of learned state (at most 8,000,000)" in caught.value.message
    assert caught.value.message.endswith(
        "use fewer factor levels or context fields or interactions = false"
    )
    data["policy"] = {"name": "uniform"}
    assert parse_spec(data).decision_space().n_actions == 90_000


def test_promotion_margin_is_absolute_when_given_else_relative_to_the_serving_value() -> None:
    from experiments.spec import PromotionSpec

    assert PromotionSpec().margin_for(-2.0) == pytest.approx(0.1)  # 0.05 · |-2|
    assert PromotionSpec(relative_margin=0.5).margin_for(0.2) == pytest.approx(0.1)
    assert PromotionSpec(margin=0.3).margin_for(100.0) == 0.3


def test_drift_ts_takes_the_linear_parameters_and_a_ladder_of_rates() -> None:
    """drift_ts passes the linear Thompson parameters on to one kalman_ts per drift rate, so
    the spec accepts them; each rate is bounded like a real hyper-parameter."""
    data = quickstart_data()
    params = {"scale": 0.5, "n_samples": 50, "ridge": 2.0, "drift_rates": [0.0, 1e-5]}
    data["policy"] = {"name": "drift_ts", "params": params}
    policy = parse_spec(data).build_policy()
    assert [model.scale for model in policy.models] == [0.5, 0.5]
    assert policy.drift_rates == (0.0, 1e-5)
    data["policy"]["params"]["drift_rates"] = [0.0, 1e300]
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert caught.value.field == "policy.params.drift_rates"
    assert caught.value.message == (
        "must be 0 or a number between 1e-12 and 1e+12 in magnitude; got 1e+300"
    )


def test_drift_ts_costs_one_kalman_ts_per_rate() -> None:
    """Its state and decision work are those of kalman_ts times the number of rates (four by
    default); the largest array of a decision is one model's."""
    sizes = ([10, 5, 4, 6], 20)
    one = policy_cost("kalman_ts", {}, *sizes, n_samples=100)
    four = policy_cost("drift_ts", {}, *sizes, n_samples=100)
    two = policy_cost("drift_ts", {"drift_rates": [0.0, 1e-4]}, *sizes, n_samples=100)
    assert (four.state, four.decision_work) == (4 * one.state, 4 * one.decision_work)
    assert (two.state, two.decision_work) == (2 * one.state, 2 * one.decision_work)
    assert four.decision_cells == two.decision_cells == one.decision_cells
