"""The spec's ``[simulation]`` section, and the noise variance a spec's linear policy learns."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from experiments.runs.simulation import RunOptions
from experiments.runs.world import world_config
from experiments.simulate import LevelSemantics, Mechanism
from experiments.simulate.semantics import build_semantics
from experiments.spec import ExperimentSpec, SimulationSpec, SpecError, load_spec, parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def mechanism() -> ExperimentSpec:
    return load_spec(EXAMPLES / "mechanism.toml")


def with_simulation(spec: ExperimentSpec, section: dict[str, Any]) -> dict[str, Any]:
    return {**spec.to_json_dict(), "simulation": section}


def test_no_section_is_todays_world_after_a_burn_in(mechanism: ExperimentSpec) -> None:
    data = mechanism.to_json_dict()
    del data["simulation"]
    plain = parse_spec(data).simulation
    assert plain == SimulationSpec()
    assert plain.burn_in_days == 28
    assert plain.learn_from_burn_in is False
    assert plain.level_semantics() == LevelSemantics()
    assert plain.mechanism_value() == Mechanism()
    # The example's section only starts its arms from the burn-in's log.
    assert mechanism.simulation == SimulationSpec(learn_from_burn_in=True)


@pytest.mark.parametrize(
    ("section", "field", "words"),
    [
        (
            {"levels": {"message": {"urgency": {"fatigue": -1}}}},
            "simulation.levels.message.urgency.fatigue",
            "must be a number in [0, 100]; got -1.0",
        ),
        (
            {"levels": {"message": {"urgency": {"tiring": 1}}}},
            "simulation.levels.message.urgency.tiring",
            "unknown field",
        ),
        (
            {"levels": {"message": {"urgency": "shouting"}}},
            "simulation.levels.message.urgency",
            "'shouting' is not a built-in message level",
        ),
        (
            {"levels": {"message": {"urgency": 3}}},
            "simulation.levels.message.urgency",
            "must be a built-in message level's name or a table",
        ),
        (
            {"levels": {"message": {"bogus": "urgency"}}},
            "simulation.levels.message.bogus",
            "unknown level; the message factor 'message' has levels",
        ),
        (
            {"levels": {"channel": {"fax": {"fatigue": 1.0}}}},
            "simulation.levels.channel.fax",
            "unknown level",
        ),
        ({"levels": {"mood": {}}}, "simulation.levels.mood", "unknown role"),
        (
            {"mechanism": {"fatigue_half_life": 0}},
            "simulation.mechanism.fatigue_half_life",
            "must be a number in [0.001, inf]",
        ),
        (
            {"mechanism": {"fatigue_halflife": 3}},
            "simulation.mechanism.fatigue_halflife",
            "unknown constant",
        ),
        (
            {"mechanism": {"fatigue_churn": True}},
            "simulation.mechanism.fatigue_churn",
            "must be a number; got True",
        ),
        ({"burn_in_days": -1}, "simulation.burn_in_days", "greater than or equal to 0"),
        ({"learn_from_burn_in": "yes"}, "simulation.learn_from_burn_in", "valid boolean"),
        (
            {"learn_from_burn_in": True, "burn_in_days": 0},
            "simulation.learn_from_burn_in",
            "needs a burn-in to learn from",
        ),
        ({"seed": 3}, "simulation.seed", "unknown field"),
    ],
)
def test_bad_sections_are_refused_naming_the_field(
    mechanism: ExperimentSpec, section: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(with_simulation(mechanism, section))
    assert caught.value.field == field
    assert words in caught.value.message


def test_a_level_of_a_factor_the_space_lacks_is_refused(mechanism: ExperimentSpec) -> None:
    data = with_simulation(mechanism, {"levels": {"timing": {"morning": {"click": 0.5}}}})
    data["factors"] = {key: value for key, value in data["factors"].items() if key != "timing"}
    data["rules"] = []
    with pytest.raises(SpecError, match="has no timing factor") as caught:
        parse_spec(data)
    assert caught.value.field == "simulation.levels.timing.morning"


def test_the_swapped_example_changes_what_it_says_and_nothing_else(
    mechanism: ExperimentSpec,
) -> None:
    swapped = load_spec(EXAMPLES / "mechanism_swapped.toml")
    same = mechanism.to_json_dict()
    other = swapped.to_json_dict()
    assert other.pop("simulation")["levels"] == {
        "message": {"informational": "urgency", "urgency": "informational"}
    }
    assert other.pop("holdout") == {**same.pop("holdout"), "salt": "mechanism"}
    for name in ("key", "description"):
        other.pop(name), same.pop(name)
    same.pop("simulation")
    assert other == same

    options = RunOptions(customers=200, days=3, seed=1)
    default, changed = world_config(mechanism, options), world_config(swapped, options)
    assert changed == replace(default, levels=swapped.simulation.level_semantics())
    space = mechanism.decision_space()
    before, after = build_semantics(space, 1), build_semantics(space, 1, changed.levels)
    names = list(before.messages.names)
    flip = [names.index("urgency"), names.index("informational")]
    for item in fields(before.messages):
        if item.name == "names":
            continue
        old, new = getattr(before.messages, item.name), getattr(after.messages, item.name)
        assert np.array_equal(
            new[[names.index("informational"), names.index("urgency")]], old[flip]
        )
        keep = [index for index in range(len(names)) if index not in flip]
        assert np.array_equal(new[keep], old[keep])
    for table in ("offers", "channels", "timings", "actions"):
        assert repr(getattr(before, table)) == repr(getattr(after, table))


def test_a_mechanism_constant_changes_only_itself(mechanism: ExperimentSpec) -> None:
    spec = parse_spec(with_simulation(mechanism, {"mechanism": {"fatigue_half_life": 10}}))
    assert spec.simulation.mechanism_value() == replace(Mechanism(), fatigue_half_life=10.0)
    options = RunOptions(customers=200, days=3)
    assert world_config(spec, options) == replace(
        world_config(mechanism, options), mechanism=replace(Mechanism(), fatigue_half_life=10.0)
    )
    partial = parse_spec(
        with_simulation(mechanism, {"levels": {"message": {"educational": {"fatigue": 1.5}}}})
    )
    assert parse_spec(partial.to_json_dict()) == partial
    semantics = build_semantics(mechanism.decision_space(), 0, partial.simulation.level_semantics())
    default = build_semantics(mechanism.decision_space(), 0)
    row = list(default.messages.names).index("educational")
    assert semantics.messages.fatigue[row] == 1.5
    assert np.array_equal(semantics.messages.click, default.messages.click)


# ------------------------------------------------------------------ the noise variance
def policy_spec(mechanism: ExperimentSpec, name: str, **params: object) -> ExperimentSpec:
    data = mechanism.to_json_dict()
    data["policy"] = {"name": name, "params": params}
    if name == "logistic_ts":
        data["reward"] = {"kind": "event", "event": "click", "window": "1d"}
    return parse_spec(data)


def test_a_linear_policy_learns_its_noise_variance_unless_the_spec_fixes_it(
    mechanism: ExperimentSpec,
) -> None:
    learned = mechanism.build_policy(seed=0)
    assert learned.noise_variance == "auto"
    assert mechanism.policy.params == {"ridge": 1.0, "n_samples": 16}  # the spec is unchanged
    fixed = policy_spec(mechanism, "linear_ts", noise_variance=25.0).build_policy(seed=0)
    assert fixed.noise_variance == 25.0
    assert policy_spec(mechanism, "linucb").build_policy(seed=0).noise_variance == "auto"
    logistic = policy_spec(mechanism, "logistic_ts").build_policy(seed=0)
    assert not logistic.learns_noise  # a Bernoulli likelihood has no noise variance
    fitted = policy_spec(mechanism, "fitted_q").build_policy(seed=0)
    assert not fitted.learns_noise  # refuses "auto": keeps its own default
    assert policy_spec(mechanism, "uniform").build_policy(seed=0).name == "uniform"
