"""Decision spaces: action numbering, exclusion rules, eligibility masks and their errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import BanditValueError, DecisionSpace

FACTORS = {
    "offer": [f"offer{i}" for i in range(10)],
    "message": [f"msg{i}" for i in range(5)],
    "channel": ["sms", "email", "push", "app"],
    "timing": ["morning", "noon", "afternoon", "evening", "night", "weekend"],
}


@pytest.fixture(scope="module")
def big() -> DecisionSpace:
    return DecisionSpace(FACTORS)


def test_shape_and_order_of_factored_space(big: DecisionSpace) -> None:
    """10 x 5 x 4 x 6 = 1,200 actions numbered like itertools.product (last factor fastest)."""
    assert big.n_actions == 1200
    assert big.factor_names == ("offer", "message", "channel", "timing")
    assert big.factor_sizes == (10, 5, 4, 6)
    assert big.allowed.all()
    for action, levels in enumerate(itertools.product(*FACTORS.values())):
        assert big.levels_of(action) == dict(zip(FACTORS, levels, strict=True))


def test_index_of_levels_of_round_trip(big: DecisionSpace) -> None:
    for action in range(big.n_actions):
        assert big.index_of(big.levels_of(action)) == action
    # Mixed radix by hand: offer3, msg2, email (1), night (4) -> ((3*5 + 2)*4 + 1)*6 + 4 = 418.
    assert (
        big.index_of({"offer": "offer3", "message": "msg2", "channel": "email", "timing": "night"})
        == 418
    )


def test_index_of_ignores_key_order(big: DecisionSpace) -> None:
    levels = {"timing": "night", "channel": "email", "message": "msg2", "offer": "offer3"}
    assert big.index_of(levels) == 418


def test_action_names() -> None:
    plain = DecisionSpace({"arm": ["a", "b", "c"]})
    assert plain.action_names == ["a", "b", "c"]
    two = DecisionSpace({"offer": ["none", "bundle"], "channel": ["sms", "email"]})
    assert two.action_name(1) == "offer=none|channel=email"
    assert two.action_names[2] == "offer=bundle|channel=sms"


def test_levels_are_stored_as_strings() -> None:
    space = DecisionSpace({"discount": [0, 5, 10]})
    assert space.factors == {"discount": ("0", "5", "10")}
    assert space.index_of({"discount": "5"}) == 1


# -- rules -----------------------------------------------------------------------------------


def naive_allowed(space: DecisionSpace, rules: list[dict]) -> np.ndarray:
    """An action is excluded when some rule matches every factor the rule names."""

    def matches(levels: dict[str, str], rule: dict) -> bool:
        return all(
            levels[factor] in ([wanted] if isinstance(wanted, str) else list(wanted))
            for factor, wanted in rule.items()
        )

    return np.array(
        [
            not any(matches(space.levels_of(action), rule) for rule in rules)
            for action in range(space.n_actions)
        ]
    )


def test_rule_with_single_levels(big: DecisionSpace) -> None:
    """offer0 by email: 5 messages x 6 timings = 30 actions excluded."""
    rules = [{"offer": "offer0", "channel": "email"}]
    space = DecisionSpace(FACTORS, rules=rules)
    assert space.allowed.sum() == 1200 - 30
    np.testing.assert_array_equal(space.allowed, naive_allowed(big, rules))
    assert not space.allowed[space.index_of({**space.levels_of(0), "channel": "email"})]


def test_rule_with_level_lists_and_several_rules(big: DecisionSpace) -> None:
    """Rule 1: no sms/push at night or on the weekend: 10*5*2*2 = 200.

    Rule 2: offer9 never: 5*4*6 = 120, of which 5*2*2 = 20 already excluded by rule 1.
    Rule 3: msg4 by app: 10*6 = 60, none overlap rule 1 (app), 6 overlap rule 2.
    Total excluded 200 + 120 - 20 + 60 - 6 = 354.
    """
    rules = [
        {"channel": ["sms", "push"], "timing": ["night", "weekend"]},
        {"offer": "offer9"},
        {"message": ["msg4"], "channel": "app"},
    ]
    space = DecisionSpace(FACTORS, rules=rules)
    assert space.n_actions == 1200
    assert int((~space.allowed).sum()) == 354
    np.testing.assert_array_equal(space.allowed, naive_allowed(big, rules))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_rules_match_naive_definition(data: st.DataObject) -> None:
    factors = {"a": ["a0", "a1", "a2"], "b": ["b0", "b1"], "c": ["c0", "c1", "c2", "c3"]}
    rule = st.dictionaries(
        st.sampled_from(sorted(factors)), st.just(None), min_size=1, max_size=3
    ).flatmap(
        lambda keys: st.fixed_dictionaries(
            {
                key: st.one_of(
                    st.sampled_from(factors[key]),
                    st.lists(st.sampled_from(factors[key]), min_size=1, unique=True),
                )
                for key in keys
            }
        )
    )
    rules = data.draw(st.lists(rule, max_size=4))
    expected = naive_allowed(DecisionSpace(factors), rules)
    if not expected.any():
        with pytest.raises(BanditValueError) as error:
            DecisionSpace(factors, rules=rules)
        assert error.value.field == "rules"
    else:
        np.testing.assert_array_equal(DecisionSpace(factors, rules=rules).allowed, expected)


def test_rules_that_exclude_everything() -> None:
    with pytest.raises(BanditValueError, match="no action eligible") as error:
        DecisionSpace({"arm": ["a", "b"]}, rules=[{"arm": ["a", "b"]}])
    assert error.value.field == "rules"
    with pytest.raises(BanditValueError) as error:
        DecisionSpace(FACTORS, rules=[{"channel": ["sms", "email"]}, {"channel": ["push", "app"]}])
    assert error.value.field == "rules"


# -- eligibility -----------------------------------------------------------------------------


def test_eligibility_is_rules_minus_request_exclusions() -> None:
    space = DecisionSpace(FACTORS, rules=[{"offer": "offer0"}])
    mask = space.eligibility(3, exclude=[{"channel": "sms"}, {"offer": ["offer1", "offer2"]}])
    assert mask.shape == (3, 1200)
    assert mask.dtype == np.bool_
    expected = naive_allowed(
        space, [{"offer": "offer0"}, {"channel": "sms"}, {"offer": ["offer1", "offer2"]}]
    )
    for row in mask:
        np.testing.assert_array_equal(row, expected)
    # 7 offers x 5 x 3 channels x 6 = 630.
    assert mask[0].sum() == 630


def test_eligibility_without_exclusions_is_the_rules() -> None:
    space = DecisionSpace(FACTORS, rules=[{"timing": "night"}])
    mask = space.eligibility(2)
    np.testing.assert_array_equal(mask, np.stack([space.allowed, space.allowed]))
    assert space.eligibility(0).shape == (0, 1200)


def test_eligibility_returns_a_writable_copy() -> None:
    space = DecisionSpace({"arm": ["a", "b", "c"]})
    mask = space.eligibility(2)
    mask[0, 0] = False
    assert space.allowed[0]
    assert space.eligibility(2)[0, 0]


def test_excluded_by(big: DecisionSpace) -> None:
    hit = big.excluded_by([{"offer": "offer1", "timing": "noon"}])
    assert hit.sum() == 5 * 4
    assert not big.excluded_by([]).any()


def test_exclusions_that_leave_nothing() -> None:
    space = DecisionSpace({"arm": ["a", "b"]}, rules=[{"arm": "a"}])
    with pytest.raises(BanditValueError, match="no eligible") as error:
        space.eligibility(1, exclude=[{"arm": "b"}])
    assert error.value.field == "exclude"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factors", "field"),
    [
        ({}, "factors"),
        ([("arm", ["a"])], "factors"),
        ({"arm": []}, "factors.arm"),
        ({"arm": "abc"}, "factors.arm"),
        ({"arm": ["a", "a"]}, "factors.arm"),
        ({"": ["a"]}, "factors"),
    ],
    ids=["empty", "not-a-mapping", "no-levels", "string-levels", "duplicate", "empty-name"],
)
def test_bad_factors(factors: object, field: str) -> None:
    with pytest.raises(BanditValueError) as error:
        DecisionSpace(factors)  # type: ignore[arg-type]
    assert error.value.field == field


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"colour": "red"}, "unknown factor 'colour'"),
        ({"channel": "fax"}, "unknown level 'fax' of factor 'channel'"),
        ({"channel": ["sms", "fax"]}, "unknown level 'fax'"),
        ({}, "at least one factor"),
    ],
)
def test_bad_rules_name_their_position(rule: dict, message: str) -> None:
    with pytest.raises(BanditValueError, match=message) as error:
        DecisionSpace(FACTORS, rules=[{"offer": "offer1"}, rule])
    assert error.value.field == "rules[1]"
    space = DecisionSpace(FACTORS)
    with pytest.raises(BanditValueError, match=message) as error:
        space.eligibility(1, exclude=[rule])
    assert error.value.field == "exclude[0]"


@pytest.mark.parametrize(
    "levels",
    [
        {"offer": "offer1", "message": "msg1", "channel": "sms"},
        {"offer": "offer1", "message": "msg1", "channel": "sms", "timing": "noon", "x": "y"},
        {"offer": "offer1", "message": "msg1", "channel": "fax", "timing": "noon"},
    ],
    ids=["missing-factor", "unknown-factor", "unknown-level"],
)
def test_index_of_errors(big: DecisionSpace, levels: dict) -> None:
    with pytest.raises(BanditValueError) as error:
        big.index_of(levels)
    assert error.value.field == "action"


@pytest.mark.parametrize("action", [-1, 1200, 10_000])
def test_levels_of_out_of_range(big: DecisionSpace, action: int) -> None:
    with pytest.raises(BanditValueError, match=r"\[0, 1200\)") as error:
        big.levels_of(action)
    assert error.value.field == "action"


def test_errors_are_value_errors() -> None:
    assert issubclass(BanditValueError, ValueError)


def test_non_string_rule_level_is_refused() -> None:
    """A rule naming level ``5`` (not ``"5"``) is bad input: say so, naming the rule."""
    with pytest.raises(BanditValueError) as error:
        DecisionSpace({"discount": [0, 5, 10]}, rules=[{"discount": 5}])
    assert error.value.field == "rules[0]"


def test_single_rule_instead_of_list_is_refused() -> None:
    with pytest.raises(BanditValueError) as error:
        DecisionSpace({"arm": ["a", "b"]}, rules={"arm": "a"})  # type: ignore[arg-type]
    assert error.value.field == "rules"
