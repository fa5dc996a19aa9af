"""lookahead_ts with pooled state effects: the counts' effect on the response learned once for
every action (bandit/state_effects.py). Checked by hand, against an independent ridge fit,
against linear Thompson sampling on the context without the contact state, for batch-split
independence and state round trips, and in the fatigue world."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import BanditValueError, make_policy
from bandit.policies.lookahead_ts import LookaheadTSPolicy
from bandit.state_effects import state_charges, state_design
from tests.bandit.test_lookahead_ts import SPACE, D, fatigue_world

#: The context columns of SPACE's policies: a feature, counts a, b, x, y, days since.
COUNTS = slice(1, 5)


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(size=(n, D))), rng.choice(np.flatnonzero(SPACE.allowed), n)


def test_the_design_by_hand() -> None:
    """``u = [1, phi, s]``: the plain design, then the contact state entered once."""
    design = np.array([[0.0, 1.0, 0.5], [2.0, 0.0, 0.0]])
    state = np.array([[3.0, 4.0], [0.0, 6.0]])
    np.testing.assert_array_equal(
        state_design(design, state), [[1, 0, 1, 0.5, 3, 4], [1, 2, 0, 0, 0, 6]]
    )


def test_the_charges_by_hand() -> None:
    """Two blocks of 2 levels from column 3 of ``u`` with ``M = (2, 0.5)``: level ``l``'s
    shift is ``2 theta[3 + l] + 0.5 theta[5 + l]``."""
    C = state_charges(np.array([2.0, 0.5]), 2, 3, 8)
    expected = np.zeros((2, 8))
    expected[0, 3], expected[1, 4], expected[0, 5], expected[1, 6] = 2.0, 2.0, 0.5, 0.5
    np.testing.assert_array_equal(C, expected)


def test_the_shift_is_m_times_an_independent_ridge_fit() -> None:
    """Unshrunk, slot ``l``'s shift is ``M theta_l``, ``theta`` the ridge solution of the
    response on ``[1, phi(x without state, a), counts, days]``, built here by hand (each
    level's slot crossed with ``[1, feature]``) and solved by numpy's lstsq on the
    ridge-augmented system; the pair slots get nothing."""
    X, actions = _rows(400, 1)
    rng = np.random.default_rng(2)
    rewards = 1.0 - 0.3 * X[:, 1] + 0.1 * X[:, 3] + 0.2 * rng.normal(size=400)
    policy = LookaheadTSPolicy(SPACE, D, future_contacts=1.5, state_effects="pooled", seed=0)
    policy.update(X, actions, rewards)
    phi = np.zeros((400, 4, 2))
    for row, action in enumerate(actions):
        msg, chan = SPACE.level_index[action]
        for slot in (msg, 2 + chan):
            phi[row, slot] = [1.0, X[row, 0]]
    U = np.column_stack([np.ones(400), phi.reshape(400, 8), X[:, 1:]])
    width = U.shape[1]
    augmented = np.vstack([U, np.sqrt(policy.ridge) * np.eye(width)])
    target = np.concatenate([rewards, np.zeros(width)])
    theta = np.linalg.lstsq(augmented, target, rcond=None)[0]
    np.testing.assert_allclose(policy.state_shift_[:4], 1.5 * theta[9:13], rtol=1e-8, atol=1e-10)
    assert policy.state_shift_[0] == pytest.approx(-0.45, abs=0.1)  # M x the true -0.3


def test_the_reward_model_does_not_see_the_contact_state() -> None:
    """The reward model's belief and draws are those of linear_ts fitted on the contexts with
    the contact state (counts and days) set to 0; ``Q`` adds the shift to every action's
    levels."""
    X, actions = _rows(60, 3)
    rewards = np.random.default_rng(4).random(60)
    pooled = make_policy(
        "lookahead_ts",
        space=SPACE,
        n_context=D,
        seed=5,
        state_effects="pooled",
        future_contacts=2.0,
    )
    linear = make_policy("linear_ts", space=SPACE, n_context=D, seed=5)
    blank = X.copy()
    blank[:, 1:] = 0.0
    pooled.update(X, actions, rewards)
    linear.update(blank, actions, rewards)
    np.testing.assert_allclose(pooled.mean_, linear.mean_)
    np.testing.assert_allclose(pooled.expected_rewards(X[:5]), linear.expected_rewards(blank[:5]))
    busy = X[:5].copy()
    busy[:, COUNTS] += 3.0  # other counts: the same reward model
    np.testing.assert_allclose(pooled.expected_rewards(busy), pooled.expected_rewards(X[:5]))
    assert isinstance(pooled, LookaheadTSPolicy)
    shift = pooled.state_shift_
    incidence = pooled.features.context_slots
    expected = linear.expected_rewards(blank[:5]) + shift[incidence].sum(axis=1)[None, :]
    np.testing.assert_allclose(pooled.lookahead_values(X[:5]), expected)


@settings(max_examples=25, deadline=None)
@given(split=st.integers(1, 59), seed=st.integers(0, 2**16))
def test_one_batch_equals_any_split_and_the_state_round_trips(split: int, seed: int) -> None:
    X, actions = _rows(60, seed)
    rewards = np.random.default_rng(seed + 1).random(60)
    whole = LookaheadTSPolicy(SPACE, D, state_effects="pooled", lookahead_shrinkage=True)
    parts = LookaheadTSPolicy(SPACE, D, state_effects="pooled", lookahead_shrinkage=True)
    whole.update(X, actions, rewards)
    parts.update(X[:split], actions[:split], rewards[:split])
    parts.update(X[split:], actions[split:], rewards[split:])
    for name in ("state_gram", "state_moment", "state_square"):
        np.testing.assert_allclose(whole.get_state()[name], parts.get_state()[name])
    np.testing.assert_allclose(whole.state_shift_, parts.state_shift_, atol=1e-9)
    loaded = LookaheadTSPolicy(SPACE, D, state_effects="pooled", lookahead_shrinkage=True)
    loaded.set_state(whole.get_state())
    np.testing.assert_allclose(loaded.lookahead_values(X[:4]), whole.lookahead_values(X[:4]))


def test_a_crossed_policy_keeps_the_state_it_always_had() -> None:
    crossed = LookaheadTSPolicy(SPACE, D)
    assert not any(name.startswith("state_") for name in crossed.get_state())
    pooled = LookaheadTSPolicy(SPACE, D, state_effects="pooled")
    assert {"state_gram", "state_moment", "state_square"} <= set(pooled.get_state())


def test_an_unknown_state_effects_is_refused_by_name() -> None:
    with pytest.raises(BanditValueError) as error:
        make_policy("lookahead_ts", space=SPACE, n_context=D, state_effects="shared")
    assert error.value.field == "state_effects"
    assert "'crossed', 'pooled'" in str(error.value)


@pytest.mark.parametrize("harmful", [0, 2], ids=["m0-harms", "m2-harms"])
def test_pooled_it_avoids_the_message_that_tires(harmful: int) -> None:
    """The fatigue world of test_lookahead_ts (the harmful message best now by 0.2, worse by
    0.4 over the horizon); margin fixed before the first run: under 20% harmful choices over
    the last 10 days, shrunk or not."""
    assert fatigue_world("lookahead_ts", harmful, state_effects="pooled") < 0.2
    assert (
        fatigue_world("lookahead_ts", harmful, state_effects="pooled", lookahead_shrinkage=True)
        < 0.2
    )
