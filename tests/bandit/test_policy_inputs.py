"""Bad input to select / update / set_state: a BanditValueError naming the field, never a
silent broadcast, and the policy's state left untouched."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import POLICIES, BanditValueError, DecisionSpace, make_policy

SPACE = DecisionSpace(
    {"offer": ["none", "bundle", "discount"], "channel": ["sms", "email"]},
    rules=[{"offer": "bundle", "channel": "email"}],
)
A = SPACE.n_actions  # 6, of which action 3 (bundle|email) is excluded
D = 7  # room for the contact state lookahead_ts reads (6 levels + days since)
NAMES = sorted(POLICIES)


def trained(name: str):
    policy = make_policy(name, space=SPACE, n_context=D, seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, D))
    policy.update(X, np.array([0, 1, 2, 4, 5, 0, 1, 2, 4, 5]), (rng.random(10) < 0.5) * 1.0)
    return policy


def assert_state_unchanged(policy, before: dict[str, np.ndarray]) -> None:
    after = policy.get_state()
    assert sorted(after) == sorted(before)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


GOOD_X = np.zeros((2, D))
BAD_CONTEXTS = [
    pytest.param(np.zeros(D), id="1-D"),
    pytest.param(np.zeros((2, D + 1)), id="too-wide"),
    pytest.param(np.zeros((2, D, 1)), id="3-D"),
    pytest.param(np.where(np.arange(D) == 1, np.nan, 0.0)[None, :], id="nan"),
    pytest.param(np.array([[0.0, np.inf, 0.0]]), id="inf"),
    pytest.param(np.array([[0.0, -np.inf, 0.0]]), id="-inf"),
    pytest.param([[0.0, None, 0.0]], id="none"),
]


@pytest.mark.parametrize("X", BAD_CONTEXTS)
@pytest.mark.parametrize("name", NAMES)
def test_bad_contexts(name: str, X: object) -> None:
    policy = trained(name)
    before = policy.get_state()
    for call in (policy.select, policy.action_probabilities):
        with pytest.raises(BanditValueError) as error:
            call(X)
        assert error.value.field == "X"
    with pytest.raises(BanditValueError) as error:
        policy.update(X, [0], [1.0])
    assert error.value.field == "X"
    assert_state_unchanged(policy, before)


BAD_MASKS = [
    pytest.param(np.ones(A, dtype=bool), "shape", id="1-D-not-broadcast"),
    pytest.param(np.ones((1, A), dtype=bool), "shape", id="one-row-not-broadcast"),
    pytest.param(np.ones((2, A - 1), dtype=bool), "shape", id="too-narrow"),
    pytest.param(np.ones((2, A)), "boolean", id="float"),
    pytest.param(np.ones((2, A), dtype=int), "boolean", id="int"),
    pytest.param(np.array([[True] * A, [False] * A]), "row 1 has no eligible", id="empty-row"),
    pytest.param(
        np.array([[True] * A, [False, False, False, True, False, False]]),
        "row 1 has no eligible",
        id="only-rule-excluded",
    ),
]


@pytest.mark.parametrize(("mask", "message"), BAD_MASKS)
@pytest.mark.parametrize("name", NAMES)
def test_bad_masks(name: str, mask: np.ndarray, message: str) -> None:
    policy = trained(name)
    for call in (policy.select, policy.action_probabilities):
        with pytest.raises(BanditValueError, match=message) as error:
            call(GOOD_X, mask)
        assert error.value.field == "mask"


BAD_UPDATES = [
    pytest.param({"actions": [0]}, "actions", id="actions-too-short"),
    pytest.param({"actions": 0}, "actions", id="actions-scalar"),
    pytest.param({"actions": [[0], [1]]}, "actions", id="actions-2-D"),
    pytest.param({"actions": [0, 6]}, "actions", id="action-out-of-range"),
    pytest.param({"actions": [-1, 0]}, "actions", id="action-negative"),
    pytest.param({"actions": [0.0, 1.0]}, "actions", id="actions-float"),
    pytest.param({"rewards": [1.0]}, "rewards", id="rewards-too-short"),
    pytest.param({"rewards": [1.0, 0.0, 1.0]}, "rewards", id="rewards-too-long"),
    pytest.param({"rewards": 1.0}, "rewards", id="rewards-scalar-not-broadcast"),
    pytest.param({"rewards": [[1.0], [0.0]]}, "rewards", id="rewards-column"),
    pytest.param({"rewards": [np.nan, 0.0]}, "rewards", id="rewards-nan"),
    pytest.param({"rewards": [np.inf, 0.0]}, "rewards", id="rewards-inf"),
    pytest.param({"propensities": [0.5]}, "propensities", id="propensities-too-short"),
    pytest.param({"propensities": [0.0, 0.5]}, "propensities", id="propensity-zero"),
    pytest.param({"propensities": [1.5, 0.5]}, "propensities", id="propensity-above-one"),
    pytest.param({"propensities": [np.nan, 0.5]}, "propensities", id="propensity-nan"),
]


@pytest.mark.parametrize(("override", "field"), BAD_UPDATES)
@pytest.mark.parametrize("name", NAMES)
def test_bad_updates(name: str, override: dict, field: str) -> None:
    policy = trained(name)
    before = policy.get_state()
    arguments = {"X": GOOD_X, "actions": [0, 1], "rewards": [1.0, 0.0], "propensities": None}
    arguments.update(override)
    with pytest.raises(BanditValueError) as error:
        policy.update(**arguments)
    assert error.value.field == field
    assert_state_unchanged(policy, before)


@pytest.mark.parametrize("name", ["logistic_ts", "beta_ts"])
@pytest.mark.parametrize("rewards", [[1.0, 2.0], [-0.5, 1.0], [5.0, 3.0]])
def test_non_binary_rewards_for_bernoulli_policies(name: str, rewards: list[float]) -> None:
    policy = trained(name)
    before = policy.get_state()
    with pytest.raises(BanditValueError, match=r"\[0, 1\]") as error:
        policy.update(GOOD_X, [0, 1], rewards)
    assert error.value.field == "rewards"
    assert_state_unchanged(policy, before)


@pytest.mark.parametrize("name", sorted(set(NAMES) - {"logistic_ts", "beta_ts"}))
def test_real_valued_rewards_are_fine_elsewhere(name: str) -> None:
    policy = trained(name)
    policy.update(GOOD_X, [0, 1], [3.5, -2.0])
    for value in policy.get_state().values():
        assert np.isfinite(value).all()


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"X": [["a", "b", "c"]] * 2}, "X"),
        ({"rewards": ["yes", "no"]}, "rewards"),
        ({"propensities": ["high", "low"]}, "propensities"),
    ],
    ids=["contexts", "rewards", "propensities"],
)
def test_text_input_names_the_field(arguments: dict, field: str) -> None:
    policy = trained("linucb")
    full = {"X": GOOD_X, "actions": [0, 1], "rewards": [1.0, 0.0], "propensities": None}
    with pytest.raises(BanditValueError) as error:
        policy.update(**{**full, **arguments})
    assert error.value.field == field


@pytest.mark.parametrize("method", ["expected_rewards", "upper_bounds"])
@pytest.mark.parametrize(
    "X",
    [np.zeros((2, D + 2)), np.where(np.arange(D) == 1, np.nan, 0.0)[None, :]],
    ids=["too-wide", "nan"],
)
def test_public_score_methods_validate_contexts(method: str, X: np.ndarray) -> None:
    policy = trained("linucb")
    with pytest.raises(BanditValueError) as error:
        getattr(policy, method)(X)
    assert error.value.field == "X"


@pytest.mark.parametrize("name", NAMES)
def test_bad_states(name: str) -> None:
    policy = trained(name)
    state = policy.get_state()
    before = {key: value.copy() for key, value in state.items()}
    learned = [key for key in state if key != "n_updates"]

    with pytest.raises(BanditValueError) as error:
        policy.set_state({**state, "extra": np.zeros(1)})
    assert error.value.field == "state"
    missing = dict(state)
    missing.pop("n_updates")
    with pytest.raises(BanditValueError) as error:
        policy.set_state(missing)
    assert error.value.field == "state"
    for key in learned:
        with pytest.raises(BanditValueError) as error:
            policy.set_state({**state, key: np.zeros((*state[key].shape, 1))})
        assert error.value.field == f"state.{key}"
        poisoned = state[key].astype(float).copy()
        poisoned.flat[0] = np.nan
        with pytest.raises(BanditValueError) as error:
            policy.set_state({**state, key: poisoned})
        assert error.value.field == f"state.{key}"
    assert_state_unchanged(policy, before)
