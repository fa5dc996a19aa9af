"""The ``[strategies]`` section: the example loads, masks and epochs by hand, and every bad
section is refused naming its field."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from experiments.spec import SpecError, load_spec, parse_spec
from experiments.spec.strategies import MIN_EPOCH, Cadence

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def base() -> dict[str, Any]:
    """offer (none, bundle) x message (calm, loud) x channel (sms, push); push+loud is ruled out."""
    return {
        "key": "promo",
        "factors": {
            "offer": ["none", "bundle"],
            "message": ["calm", "loud"],
            "channel": ["sms", "push"],
        },
        "rules": [{"message": "loud", "channel": "push"}],
        "context": {
            "spend": {"type": "numeric", "min": 0},
            "plan": {"type": "categorical", "levels": ["prepaid", "postpaid"]},
        },
        "policy": {"name": "linear_ts"},
        "reward": {"kind": "sum", "event": "revenue", "window": "1d"},
        "strategies": {
            "epoch": "7d",
            "kpi": {"kind": "sum", "event": "revenue", "baseline": ["spend"]},
            "options": [
                {"name": "all"},
                {"name": "calm", "allow": {"message": ["calm"]}},
                {"name": "sparse", "max_decisions": 2, "window": "3d"},
                {"name": "weekly", "max_decisions": 1},
            ],
        },
    }


def test_the_example_loads_and_its_strategies_restrict_messages() -> None:
    spec = load_spec(EXAMPLES / "strategies.toml")
    strategies = spec.strategy_set()
    assert strategies is not None
    assert strategies.names == ("all", "no-pressure", "inform-educate", "fewer-contacts")
    space = spec.decision_space()
    position = space.factor_names.index("message")
    for name, allowed in (
        ("no-pressure", {"informational", "educational", "personalised"}),
        ("inform-educate", {"informational", "educational"}),
    ):
        mask = strategies.masks[strategies.index_of(name)]
        messages = {space.factors["message"][code] for code in space.level_index[mask, position]}
        assert messages == allowed
    assert strategies.masks[strategies.index_of("all")].tolist() == space.allowed.tolist()
    assert strategies.cadences[3] == Cadence(1, timedelta(days=7))
    assert strategies.section.policy.contextual
    assert not strategies.section.adjusts_through_context  # context = []: the engine adjusts
    assert strategies.section.panel_share(2) == 1.0
    assert strategies.section.panel_share(3) == 0.15
    mechanism = load_spec(EXAMPLES / "mechanism.toml").to_json_dict()
    ours = spec.to_json_dict()
    for field in ("factors", "rules", "context", "policy", "reward", "holdout", "contact"):
        assert ours[field] == mechanism[field], field


def test_masks_cadences_and_round_trip_by_hand() -> None:
    spec = parse_spec(base())
    strategies = spec.strategy_set()
    assert strategies is not None
    # Actions in itertools.product order of offer x message x channel; (loud, push) excluded.
    allowed = [True, True, True, False] * 2
    assert strategies.masks.tolist() == [
        allowed,
        [True, True, False, False] * 2,
        allowed,
        allowed,
    ]
    assert strategies.cadences == (
        None,
        None,
        Cadence(2, timedelta(days=3)),
        Cadence(1, None),
    )
    assert strategies.space.action_names == ["all", "calm", "sparse", "weekly"]
    assert strategies.fields == ("spend", "plan")
    assert strategies.floor == spec.exploration_floor
    assert parse_spec(spec.to_json_dict()) == spec
    now = datetime(2026, 1, 9, tzinfo=UTC)
    assert Cadence(2, timedelta(days=3)).since(now, now - timedelta(days=1)) == now - timedelta(
        days=3
    )
    assert Cadence(1, None).since(now, now - timedelta(days=1)) == now - timedelta(days=1)


def test_epochs_lie_on_a_fixed_grid_from_the_origin() -> None:
    strategies = parse_spec(base()).strategy_set()
    assert strategies is not None
    origin = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    week = timedelta(days=7)
    assert strategies.epoch_at(origin, origin) == (0, origin, origin + week)
    just_before = origin + week - timedelta(microseconds=1)
    assert strategies.epoch_at(origin, just_before)[0] == 0
    assert strategies.epoch_at(origin, origin + week) == (1, origin + week, origin + 2 * week)
    assert strategies.epoch_at(origin, origin + 3 * week + timedelta(hours=5))[0] == 3
    assert strategies.epoch_at(origin, origin - timedelta(days=1))[0] == 0


def test_the_strategy_policy_sees_only_its_context_fields() -> None:
    data = base()
    data["strategies"]["context"] = ["spend"]
    strategies = parse_spec(data).strategy_set()
    assert strategies is not None
    X = strategies.encode([{"spend": 3.0, "plan": "prepaid"}, {"spend": 5.5, "plan": "postpaid"}])
    np.testing.assert_array_equal(X, [[3.0], [5.5]])
    assert strategies.build_policy(seed=0).n_context == 1


def with_change(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(base())
    change(data["strategies"])
    return data


REFUSALS = [
    (
        "unknown factor",
        lambda s: s["options"][1]["allow"].update(colour=["red"]),
        "strategies.options[1].allow.colour",
        "strategy 'calm' names unknown factor 'colour'",
    ),
    (
        "unknown level",
        lambda s: s["options"][1]["allow"].update(message=["calm", "shouting"]),
        "strategies.options[1].allow.message",
        "strategy 'calm' names unknown level 'shouting' of factor 'message'",
    ),
    (
        "epoch shorter than a day",
        lambda s: s.update(epoch="23h"),
        "strategies.epoch",
        "must be at least one day",
    ),
    (
        "no eligible action given the rules",
        lambda s: s["options"].append(
            {"name": "loud-push", "allow": {"message": ["loud"], "channel": ["push"]}}
        ),
        "strategies.options[4]",
        "strategy 'loud-push' leaves no eligible action",
    ),
    (
        "duplicate names",
        lambda s: s["options"].append({"name": "calm"}),
        "strategies.options[4].name",
        "strategy 'calm' repeats",
    ),
    (
        "fewer than two strategies",
        lambda s: s.update(options=[{"name": "all"}]),
        "strategies.options",
        "at least 2 strategies",
    ),
    (
        "an empty level list",
        lambda s: s["options"][1]["allow"].update(message=[]),
        "strategies.options[1].allow.message",
        "must allow at least one level",
    ),
    (
        "a window without a limit",
        lambda s: s["options"][0].update(window="7d"),
        "strategies.options[0].window",
        "needs max_decisions",
    ),
    (
        "a bad strategy name",
        lambda s: s["options"][0].update(name="All Of It"),
        "strategies.options[0].name",
        "lowercase letters",
    ),
    (
        "an unknown field of a strategy",
        lambda s: s["options"][0].update(allowed={}),
        "strategies.options[0].allowed",
        "unknown field",
    ),
    (
        "a baseline that is not a numeric field",
        lambda s: s["kpi"].update(baseline=["plan"]),
        "strategies.kpi.baseline[0]",
        "must name a numeric context field",
    ),
    (
        "a contextual policy that cannot see the baseline",
        lambda s: s.update(context=["plan"]),
        "strategies.context",
        "must include the baseline field(s) ['spend']",
    ),
    (
        "an unknown context field",
        lambda s: s.update(context=["spend", "age"]),
        "strategies.context[1]",
        "must name a context field",
    ),
    (
        "a policy that cannot explore",
        lambda s: s.update(policy={"name": "fixed"}),
        "strategies.policy.name",
        "must be one of",
    ),
    (
        "a [0, 1] policy on a summed KPI",
        lambda s: s.update(policy={"name": "beta_ts"}),
        "strategies.policy.name",
        "needs kpi kind 'retained'",
    ),
    (
        "bad policy parameters",
        lambda s: s.update(policy={"name": "linear_ts", "params": {"ridge": -1.0}}),
        "strategies.policy.params",
        "ridge",
    ),
    (
        "an engine-owned parameter",
        lambda s: s.update(policy={"name": "linear_ts", "params": {"seed": 3}}),
        "strategies.policy.params",
        "must not set 'seed'",
    ),
    (
        "options and withhold together",
        lambda s: s.update(withhold={"message": ["loud"]}),
        "strategies.options",
        "not both",
    ),
    (
        "neither options nor withhold",
        lambda s: s.update(options=[]),
        "strategies.options",
        "not neither",
    ),
    (
        "withhold of an unknown factor",
        lambda s: s.update(options=[], withhold={"colour": ["red"]}),
        "strategies.withhold.colour",
        "names unknown factor 'colour'",
    ),
    (
        "withhold of an unknown level",
        lambda s: s.update(options=[], withhold={"message": ["shouting"]}),
        "strategies.withhold.message",
        "names unknown level 'shouting' of factor 'message'",
    ),
    (
        "withhold of no level",
        lambda s: s.update(options=[], withhold={"message": []}),
        "strategies.withhold.message",
        "must name at least one level",
    ),
    (
        "withhold of too many levels",
        lambda s: s.update(options=[], withhold={"message": [f"m{i}" for i in range(9)]}),
        "strategies.withhold",
        "at most 8 levels in all (each doubles the number of strategies); got 9",
    ),
    (
        "a panel share above 1",
        lambda s: s.update(panel=1.5),
        "strategies.panel",
        "must be less than or equal to 1; got 1.5",
    ),
    (
        "a negative panel warm-up",
        lambda s: s.update(panel_warmup=-1),
        "strategies.panel_warmup",
        "must be greater than or equal to 0; got -1",
    ),
    (
        "a negative panel settling time",
        lambda s: s.update(panel_settle=-2),
        "strategies.panel_settle",
        "must be greater than or equal to 0; got -2",
    ),
    (
        "an unknown KPI kind",
        lambda s: s["kpi"].update(kind="mean"),
        "strategies.kpi.kind",
        "'sum' or 'retained'",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [item[1:] for item in REFUSALS],
    ids=[item[0] for item in REFUSALS],
)
def test_bad_sections_are_refused_by_name(
    change: Callable[[dict[str, Any]], None], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(with_change(change))
    assert caught.value.field == field
    assert words in caught.value.message


def test_withheld_levels_make_every_combination_a_strategy() -> None:
    """message (calm, loud) x channel (sms, push), push+loud ruled out: withholding calm and
    push leaves loud by sms only; withholding both messages leaves nothing, so that
    combination is ruled out of the strategy space (by hand)."""
    data = base()
    data["strategies"].update(
        options=[], withhold={"message": ["calm", "loud"], "channel": ["push"]}
    )
    strategies = parse_spec(data).strategy_set()
    assert strategies is not None
    # Binary factors in order message.calm, message.loud, channel.push; product order.
    assert strategies.names == (
        "all",
        "no-channel.push",
        "no-message.loud",
        "no-message.loud-channel.push",
        "no-message.calm",
        "no-message.calm-channel.push",
        "no-message.calm-message.loud",
        "no-message.calm-message.loud-channel.push",
    )
    assert strategies.space.factor_names == ("message.calm", "message.loud", "channel.push")
    assert strategies.space.allowed.tolist() == [True] * 6 + [False, False]
    # Actions: offer (none, bundle) x message (calm, loud) x channel (sms, push).
    rules = [True, True, True, False] * 2
    expected = {
        "all": rules,
        "no-channel.push": [True, False, True, False] * 2,
        "no-message.loud": [True, True, False, False] * 2,
        "no-message.loud-channel.push": [True, False, False, False] * 2,
        "no-message.calm": [False, False, True, False] * 2,
        "no-message.calm-channel.push": [False, False, True, False] * 2,
        "no-message.calm-message.loud": [False] * 8,
    }
    for name, mask in expected.items():
        assert strategies.masks[strategies.index_of(name)].tolist() == mask, name
    assert strategies.cadences == (None,) * 8
    assert not strategies.section.adjusts_through_context or strategies.fields


def test_withheld_level_names_that_would_make_two_strategies_alike_get_indexed_names() -> None:
    """Withholding a and b, or withholding a-b, would both read "no-a-b": every withheld
    combination is then named by its count and index, and all names stay distinct."""
    data = base()
    data["factors"]["message"] = ["a", "b", "a-b"]
    data["rules"] = []
    data["strategies"].update(options=[], withhold={"message": ["a", "b", "a-b"]})
    strategies = parse_spec(data).strategy_set()
    assert strategies is not None
    assert len(set(strategies.names)) == len(strategies.names) == 8
    assert strategies.names[0] == "all"
    assert strategies.names[1] == "no-1-levels-1"  # a-b withheld: the last factor varies fastest
    assert strategies.names[6] == "no-2-levels-6"  # a and b withheld


def test_a_linear_policy_over_withheld_levels_learns_one_effect_per_level() -> None:
    """The strategy policy's model is additive in the levels, so it predicts a combination it
    never tried. By hand: allowing calm adds 1, loud 2 and push 4 to the KPI; trained on
    'all' (7) and each level withheld alone (6, 5, 3), it predicts 2 for withholding calm and
    push together (loud by sms only) and 1 for withholding loud and push."""
    data = base()
    data["strategies"].update(
        options=[],
        withhold={"message": ["calm", "loud"], "channel": ["push"]},
        context=[],
        policy={"name": "linear_ts", "params": {"ridge": 1e-6, "noise_variance": 1.0}},
    )
    strategies = parse_spec(data).strategy_set()
    assert strategies is not None
    policy = strategies.build_policy(seed=0)
    trained = {"all": 7.0, "no-message.calm": 6.0, "no-message.loud": 5.0, "no-channel.push": 3.0}
    actions = np.array([strategies.index_of(name) for name in trained] * 25)
    rewards = np.array(list(trained.values()) * 25)
    policy.update(np.zeros((100, 0)), actions, rewards)
    scores = policy.expected_rewards(np.zeros((1, 0)))[0]
    for name, expected in (
        *trained.items(),
        ("no-message.calm-channel.push", 2.0),
        ("no-message.loud-channel.push", 1.0),
    ):
        assert scores[strategies.index_of(name)] == pytest.approx(expected, abs=1e-3), name


def test_a_policy_that_ignores_the_context_needs_no_baseline_in_it() -> None:
    data = with_change(
        lambda s: s.update(context=["plan"], policy={"name": "gaussian_ts", "params": {}})
    )
    strategies = parse_spec(data).strategy_set()
    assert strategies is not None
    assert not strategies.section.policy.contextual


def test_drift_ts_over_strategies_is_contextual() -> None:
    """drift_ts averages linear models, so like them it reads the context."""
    data = with_change(lambda s: s.update(policy={"name": "drift_ts", "params": {}}))
    strategies = parse_spec(data).strategy_set()
    assert strategies is not None
    assert strategies.section.policy.contextual


def test_retained_kpi_takes_a_binary_policy_and_specs_without_strategies_have_none() -> None:
    data = with_change(
        lambda s: s.update(kpi={"kind": "retained", "event": "churn"}, policy={"name": "beta_ts"})
    )
    assert parse_spec(data).strategy_set() is not None
    plain = base()
    del plain["strategies"]
    assert parse_spec(plain).strategy_set() is None
    assert timedelta(days=1) == MIN_EPOCH


def test_the_readme_section_is_a_valid_strategies_section() -> None:
    """The README's ```toml block, on top of examples/mechanism.toml, parses."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    blocks = [part.split("```")[0] for part in readme.split("```toml\n")[1:]]
    (block,) = [block for block in blocks if block.startswith("[strategies]")]
    data = tomllib.loads((EXAMPLES / "mechanism.toml").read_text())
    data.update(tomllib.loads(block))
    strategies = parse_spec(data).strategy_set()
    assert strategies is not None
    assert strategies.names == ("all", "no-pressure", "fewer-contacts")


def test_the_example_is_valid_toml_with_the_documented_sections() -> None:
    data = tomllib.loads((EXAMPLES / "strategies.toml").read_text())
    assert data["strategies"]["epoch"] == "7d"
    assert (data["strategies"]["panel"], data["strategies"]["panel_warmup"]) == (0.15, 3)
    assert data["strategies"]["kpi"] == {
        "kind": "sum",
        "event": "revenue",
        "baseline": ["spend_30d", "spend_7d"],
    }


def test_the_strategy_policy_and_the_strategies_are_bounded() -> None:
    data = tomllib.loads((EXAMPLES / "strategies.toml").read_text())
    data["strategies"]["policy"] = {"name": "linear_ts", "params": {"n_samples": 10**8}}
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert (caught.value.field, caught.value.message) == (
        "strategies.policy.params.n_samples",
        "must be at most 10,000; got 100,000,000",
    )
    data["strategies"]["policy"] = {"name": "linear_ts"}
    data["strategies"]["options"] = [{"name": f"s{i}"} for i in range(257)]
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert (caught.value.field, caught.value.message) == (
        "strategies.options",
        "must name at most 256 strategies; got 257",
    )
