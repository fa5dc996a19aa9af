"""lookahead_ts with ``churn_value``: a small ridge model of churn on the post-contact counts,
and each level's slot charged ``V x`` the churns one more unit of its count adds. Checked by
hand, against an independent least-squares solve, batch against sequential, through a state
round trip, and refusals by field name."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import BanditValueError, DecisionSpace, make_policy
from bandit.churn import churn_design, churn_shift, credible_shift, level_charges, ridge_solve
from bandit.policies.lookahead_ts import LookaheadTSPolicy

#: msg {a, b} x chan {x, y}, (b, y) excluded: actions (a, x) = 0, (a, y) = 1, (b, x) = 2.
SPACE = DecisionSpace({"msg": ["a", "b"], "chan": ["x", "y"]}, rules=[{"msg": "b", "chan": "y"}])
#: One plain feature, then counts of a, b, x, y and the days since the previous contact.
D = 6


def test_the_design_adds_the_action_to_the_counts_by_hand() -> None:
    """Row 1: counts (a, b, x, y) = (0.5, 0, 1, 0), days 3, action (b, x) -> post counts
    (0.5, 1, 2, 0): u = [1, 0.5, 1, 2, 0, 3]. Row 2: counts 0, days 28, action (a, y) ->
    u = [1, 1, 0, 0, 1, 28]. Two blocks: every block gets the action's levels."""
    X = np.array([[9.0, 0.5, 0.0, 1.0, 0.0, 3.0], [9.0, 0.0, 0.0, 0.0, 0.0, 28.0]])
    levels = np.array([[1, 2], [0, 3]])  # (b, x) and (a, y) as count columns
    U = churn_design(X, levels, first_count=1, n_levels=4, blocks=1)
    np.testing.assert_array_equal(U, [[1, 0.5, 1, 2, 0, 3], [1, 1, 0, 0, 1, 28]])
    X2 = np.array([[0.5, 0.0, 1.0, 0.0, 0.1, 0.2, 0.3, 0.4, 3.0]])
    U2 = churn_design(X2, levels[:1], first_count=0, n_levels=4, blocks=2)
    np.testing.assert_allclose(U2, [[1, 0.5, 1, 2, 0, 0.1, 1.2, 1.3, 0.4, 3]])


def test_the_charge_by_hand() -> None:
    """theta = [0.01, 0.002, -0.001, 0.0005, 0, 1e-5] (intercept, a, b, x, y, days), V = 3,
    one block of half-life 7 days, labels over 1 day: slot l is charged
    ``-3 x 7 / ln 2 x theta_l``: a -0.0605932, b +0.0302966, x -0.0151483, y 0; a pair-bias slot
    (none here, but asked for 6 slots) 0. Over a 2-day window the charge halves."""
    theta = np.array([0.01, 0.002, -0.001, 0.0005, 0.0, 1e-5])
    shift = churn_shift(theta, 3.0, np.array([7.0]), 1.0, n_levels=4, n_slots=6)
    scale = -3.0 * 7.0 / math.log(2.0)
    np.testing.assert_allclose(shift, [scale * 0.002, -scale * 0.001, scale * 0.0005, 0, 0, 0])
    assert shift[0] == pytest.approx(-0.0605932, abs=1e-7)
    halved = churn_shift(theta, 3.0, np.array([7.0]), 2.0, n_levels=4, n_slots=6)
    np.testing.assert_allclose(halved, shift / 2)


def test_the_credible_charge_against_an_independent_computation() -> None:
    """Levels (a, b | x, y), one block, h = 7, w = 1, V = 2, no ridge: ``U^T U = diag(100,
    10, 10, 10, 10, 10)`` and ``U^T y = [5, 3, 0, 0.5, 0.5, 0]``, so theta = [0.05, 0.3, 0,
    0.05, 0.05, 0]; each level's charge is ``k theta_l`` with ``k = -2 x 7 / ln 2``. Against
    numpy: the residual variance over 100 - 6 rows, the centred charges and their variances
    written out, and the moment estimate of ``tau^2``."""
    gram = np.diag([100.0, 10, 10, 10, 10, 10])
    moment = np.array([5.0, 3, 0, 0.5, 0.5, 0])
    charges = level_charges(2.0, np.array([7.0]), 1.0, n_levels=4, width=6)
    k = -2.0 * 7.0 / math.log(2.0)
    np.testing.assert_allclose(charges[:, 1:5], k * np.eye(4))
    theta = np.linalg.solve(gram, moment)
    y_y = 5.0  # sum of 0/1 labels = y^T y
    sigma2 = (y_y - 2 * theta @ moment + theta @ gram @ theta) / 94
    centred = k * np.array([0.15, -0.15, 0.0, 0.0])  # (0.3 - 0)/2 apart, (0.05 - 0.05)
    variance = sigma2 * k**2 * (0.25 / 10 + 0.25 / 10)  # every centred level alike
    tau2 = max(0.0, float(np.mean(centred**2 - variance)))
    assert tau2 > 0
    expected = centred * tau2 / (tau2 + variance)
    shift = credible_shift(gram, moment, 0.0, charges, (2, 2), 6)
    np.testing.assert_allclose(shift, [*expected, 0, 0])


def test_a_credible_charge_keeps_the_order_of_the_plain_one() -> None:
    """Shrinkage scales each centred charge by one factor here (every level's noise alike is
    not needed: only the sign and order within a factor are checked), never flipping it."""
    rng = np.random.default_rng(3)
    X = np.zeros((4000, D))
    X[:, 0] = rng.random(4000)
    X[:, 1:5] = rng.random((4000, 4))
    X[:, -1] = rng.integers(1, 28, 4000)
    actions = rng.choice(3, 4000)
    churned = (rng.random(4000) < 0.05 + 0.3 * (actions == 2)).astype(float)
    plain = LookaheadTSPolicy(SPACE, D, churn_value=3.0)
    shrunk = LookaheadTSPolicy(SPACE, D, churn_value=3.0, churn_shrinkage=True)
    for policy in (plain, shrunk):
        policy.update_churn(X, actions, churned)
    for block in (slice(0, 2), slice(2, 4)):
        centred = plain.churn_shift_[block] - plain.churn_shift_[block].mean()
        assert np.all(np.sign(shrunk.churn_shift_[block]) == np.sign(centred))
        assert np.all(np.abs(shrunk.churn_shift_[block]) <= np.abs(centred) + 1e-12)
    assert shrunk.churn_shift_[1] < shrunk.churn_shift_[0]  # b, which drives churn


def test_shrinkage_charges_little_where_no_level_drives_churn() -> None:
    """Churn independent of the levels, 40 seeded data sets of 2,000 contacts: the shrunk
    charges are 0 in at least half of them and, summed over all, at most 40% of the plain
    centred charges (measured, numpy 2.4: 26 of 40, 25%); with b driving churn, b is
    charged."""
    zero, plain_total, shrunk_total = 0, 0.0, 0.0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        X = np.zeros((2000, D))
        X[:, 1:5] = rng.random((2000, 4))
        X[:, -1] = 7.0
        actions = rng.choice(3, 2000)
        churned = (rng.random(2000) < 0.05).astype(float)
        plain = LookaheadTSPolicy(SPACE, D, churn_value=5.0)
        shrunk = LookaheadTSPolicy(SPACE, D, churn_value=5.0, churn_shrinkage=True)
        for policy in (plain, shrunk):
            policy.update_churn(X, actions, churned)
        charge = plain.churn_shift_[:4]
        plain_total += np.abs(charge[:2] - charge[:2].mean()).sum()
        plain_total += np.abs(charge[2:] - charge[2:].mean()).sum()
        shrunk_total += np.abs(shrunk.churn_shift_).sum()
        zero += bool(np.all(shrunk.churn_shift_ == 0))
    assert zero >= 20
    assert shrunk_total <= 0.4 * plain_total
    harmful = LookaheadTSPolicy(SPACE, D, churn_value=5.0, churn_shrinkage=True)
    harmful.update_churn(X, actions, (rng.random(2000) < 0.02 + 0.2 * (actions == 2)).astype(float))
    assert harmful.churn_shift_[1] < harmful.churn_shift_[0]


def test_ridge_solve_is_the_ridge_normal_equations() -> None:
    rng = np.random.default_rng(0)
    U = rng.normal(size=(50, 4))
    y = rng.random(50)
    theta = ridge_solve(U.T @ U, U.T @ y, 2.0)
    np.testing.assert_allclose(theta, np.linalg.solve(U.T @ U + 2.0 * np.eye(4), U.T @ y))


def test_the_churn_model_and_q_by_hand() -> None:
    """Three rows and labels, ridge 1: the state holds U^T U and U^T y of the design above,
    ``theta`` is their ridge solve, and ``Q`` (not the reward model) moves by each of the
    action's levels' charge ``-V h / ln 2 theta_l`` (V = 2, h = 7)."""
    X = np.array(
        [
            [0.3, 0.5, 0.0, 1.0, 0.0, 3.0],
            [0.1, 0.0, 0.0, 0.0, 0.0, 28.0],
            [0.7, 2.0, 0.0, 1.0, 1.0, 1.0],
        ]
    )
    actions = np.array([2, 1, 0])  # (b, x), (a, y), (a, x)
    churned = np.array([0.0, 0.0, 1.0])
    policy = LookaheadTSPolicy(SPACE, D, future_contacts=0.0, half_lives=[7.0], churn_value=2.0)
    before = policy.lookahead_values(X[:1])
    policy.update_churn(X, actions, churned)
    U = np.array(
        [
            [1, 0.5, 1, 2, 0, 3],
            [1, 1, 0, 0, 1, 28],
            [1, 3, 0, 2, 1, 1],
        ],
        dtype=float,
    )
    np.testing.assert_allclose(policy.churn_gram_, U.T @ U)
    np.testing.assert_allclose(policy.churn_moment_, U.T @ churned)
    theta = np.linalg.solve(U.T @ U + np.eye(6), U.T @ churned)
    np.testing.assert_allclose(policy.churn_theta_, theta)
    charge = -2.0 * 7.0 / math.log(2.0) * theta[1:5]  # per level a, b, x, y
    after = policy.lookahead_values(X[:1])
    for action, (msg, chan) in enumerate(SPACE.level_index):
        expected = before[0, action] + charge[msg] + charge[2 + chan]
        assert after[0, action] == pytest.approx(expected)
    # the reward model is the immediate reward's: the churn charge is not in it
    np.testing.assert_allclose(policy.expected_rewards(X[:1]), before)


def test_without_a_churn_value_nothing_changes() -> None:
    """``churn_value = 0`` (the default): no churn state, labels ignored, Q as before."""
    rng = np.random.default_rng(2)
    X = np.abs(rng.normal(size=(8, D)))
    plain = LookaheadTSPolicy(SPACE, D, future_contacts=1.5)
    assert "churn_gram" not in plain.get_state()
    before = plain.lookahead_values(X)
    plain.update_churn(X, rng.choice(3, 8), np.ones(8))
    np.testing.assert_array_equal(plain.lookahead_values(X), before)


@settings(max_examples=25, deadline=None)
@given(split=st.integers(0, 12), seed=st.integers(0, 1000))
def test_one_batch_equals_two(split: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(size=(12, D)))
    actions = rng.choice(3, 12)
    churned = (rng.random(12) < 0.3).astype(float)
    one = LookaheadTSPolicy(SPACE, D, churn_value=1.0)
    two = LookaheadTSPolicy(SPACE, D, churn_value=1.0)
    one.update_churn(X, actions, churned)
    two.update_churn(X[:split], actions[:split], churned[:split])
    two.update_churn(X[split:], actions[split:], churned[split:])
    np.testing.assert_allclose(one.churn_gram_, two.churn_gram_)
    np.testing.assert_allclose(one.churn_moment_, two.churn_moment_)


def test_state_round_trip_keeps_the_charge_and_the_decisions() -> None:
    rng = np.random.default_rng(5)
    X = np.abs(rng.normal(size=(40, D)))
    policy = LookaheadTSPolicy(SPACE, D, churn_value=4.0, seed=1)
    policy.update(X[:20], rng.choice(3, 20), rng.random(20))
    policy.update_churn(X[:20], rng.choice(3, 20), (rng.random(20) < 0.2).astype(float))
    state = policy.get_state()
    assert state["churn_gram"].shape == (6, 6)
    assert state["churn_moment"].shape == (6,)
    loaded = LookaheadTSPolicy(SPACE, D, churn_value=4.0, seed=1)
    loaded.set_state(state)
    np.testing.assert_allclose(loaded.churn_shift_, policy.churn_shift_)
    np.testing.assert_allclose(loaded.lookahead_values(X[20:]), policy.lookahead_values(X[20:]))
    mask = np.tile(SPACE.allowed, (20, 1))
    np.testing.assert_allclose(
        loaded.action_probabilities(X[20:], mask), policy.action_probabilities(X[20:], mask)
    )
    with pytest.raises(BanditValueError):  # a policy without churn does not take churn state
        LookaheadTSPolicy(SPACE, D).set_state(state)


def test_a_level_that_drives_churn_away_loses_its_share() -> None:
    """Every contact with level b is followed by a churn and no other is: b's charge is
    large and negative, so the actions holding b get (close to) the exploration floor."""
    rng = np.random.default_rng(9)
    X = np.zeros((300, D))
    X[:, 0] = rng.random(300)
    X[:, -1] = 28.0
    actions = rng.choice(3, 300)
    churned = (actions == 2).astype(float)  # (b, x)
    policy = LookaheadTSPolicy(SPACE, D, churn_value=5.0, seed=0)
    policy.update(X, actions, rng.random(300) * 0.1)
    policy.update_churn(X, actions, churned)
    shift = policy.churn_shift_
    assert shift[1] < shift[0] - 1.0  # b charged far more than a
    mask = np.tile(SPACE.allowed, (5, 1))
    probabilities = policy.action_probabilities(X[:5], mask)
    # the floor alone: 1% spread over the 3 eligible actions
    np.testing.assert_allclose(probabilities[:, 2], policy.exploration_floor / 3)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"churn_value": -1.0}, "churn_value"),
        ({"churn_value": float("nan")}, "churn_value"),
        ({"churn_value": 1.0, "churn_window": 0.0}, "churn_window"),
        ({"churn_value": 1.0, "churn_shrinkage": 1}, "churn_shrinkage"),
    ],
)
def test_bad_churn_arguments_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(BanditValueError) as error:
        make_policy("lookahead_ts", space=SPACE, n_context=D, **kwargs)
    assert error.value.field == field


def test_bad_churn_labels_name_the_field() -> None:
    policy = LookaheadTSPolicy(SPACE, D, churn_value=1.0)
    X = np.zeros((2, D))
    with pytest.raises(BanditValueError) as error:
        policy.update_churn(X, [0, 1], [0.0, 2.0])
    assert error.value.field == "churned"
    with pytest.raises(BanditValueError) as error:
        policy.update_churn(X, [0, 1], [0.0])
    assert error.value.field == "churned"
    with pytest.raises(BanditValueError) as error:
        policy.update_churn(X, [0, 7], [0.0, 1.0])
    assert error.value.field == "actions"
