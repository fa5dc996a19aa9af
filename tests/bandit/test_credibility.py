"""Per-level effects shrunk by their empirical Bayes credibility (bandit.credibility), and
lookahead_ts's later-contacts term ``M g`` with that shrinkage: by hand, at the limits, by a
property, and in the fatigue world where the harm is real."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bandit import BanditValueError, make_policy
from bandit.credibility import centring, credible_levels
from bandit.policies.lookahead_ts import LookaheadTSPolicy
from tests.bandit.test_lookahead_ts import SPACE, D, fatigue_world


def test_the_centring_by_hand() -> None:
    K = centring((2, 1))
    np.testing.assert_allclose(K, [[0.5, -0.5, 0], [-0.5, 0.5, 0], [0, 0, 0]])


def test_empirical_bayes_shrinkage_by_hand() -> None:
    """Factor (a, b, c) with estimates (3, 0, 0) and a one-level factor (5), covariance I:
    centred (2, -1, -1), each with variance ``(2/3)^2 + 2/9 = 2/3``; ``tau^2 = mean(4 - 2/3,
    1 - 2/3, 1 - 2/3) = 4/3``, so each is kept at ``(4/3) / (4/3 + 2/3) = 2/3``: (4/3, -2/3,
    -2/3), and the one-level factor 0. Estimates (1, 0, 0) spread less than their noise
    (``mean(4/9, 1/9, 1/9) - 2/3 < 0``): all 0."""
    covariance = np.eye(4)
    np.testing.assert_allclose(
        credible_levels(np.array([3.0, 0.0, 0.0, 5.0]), covariance, (3, 1)),
        [4 / 3, -2 / 3, -2 / 3, 0.0],
    )
    np.testing.assert_array_equal(
        credible_levels(np.array([1.0, 0.0, 0.0, 5.0]), covariance, (3, 1)), 0.0
    )
    np.testing.assert_array_equal(credible_levels(np.array([1.0, 2.0]), np.eye(2), (1, 1)), 0.0)


@given(
    arrays(np.float64, 5, elements=st.floats(-10, 10)),
    st.floats(0.01, 5.0),
)
def test_shrinkage_never_flips_a_sign_or_grows(estimate: np.ndarray, noise: float) -> None:
    centred = centring((3, 2)) @ estimate
    shrunk = credible_levels(estimate, np.eye(5) * noise, (3, 2))
    assert np.all(np.abs(shrunk) <= np.abs(centred) + 1e-12)
    assert np.all(shrunk * centred >= -1e-12)


def test_gated_later_contacts_term_by_hand() -> None:
    """With the weights and covariance set by hand and M = 1.5, Q is the reward now plus,
    per level, the shrunk centred ``M g`` of :func:`credible_levels` on the policy's own
    ``B_M mu`` and ``B_M Sigma B_M^T`` (noise variance 1: fixed)."""
    policy = LookaheadTSPolicy(
        SPACE, D, future_contacts=1.5, lookahead_shrinkage=True, noise_variance=1.0
    )
    rng = np.random.default_rng(3)
    policy.mean_ = rng.normal(size=28)
    policy.cov_ = np.eye(28) * 0.01
    belief = policy._lookahead_belief()
    B = 1.5 * belief.maps[0]
    g = credible_levels(B @ policy.mean_, 0.01 * B @ B.T, (2, 2))
    assert np.abs(g).max() > 0.05  # the hand-set weights spread more than their noise
    x = np.array([[0.4, 1.0, 0.0, 0.5, 0.5, 3.0]])
    q = policy.lookahead_values(x)[0]
    r = policy.expected_rewards(x)[0]
    for action in range(SPACE.n_actions):
        msg, chan = SPACE.level_index[action]
        assert q[action] == pytest.approx(r[action] + g[msg] + g[2 + chan])


def test_where_the_levels_spread_less_than_their_noise_q_is_the_reward_model() -> None:
    """Weights 1e-4 against a posterior variance of 1: ``tau^2 = 0``, so ``M g`` adds 0."""
    policy = LookaheadTSPolicy(
        SPACE, D, future_contacts=2.0, lookahead_shrinkage=True, noise_variance=1.0
    )
    policy.mean_ = np.full(28, 1e-4)
    X = np.abs(np.random.default_rng(1).normal(size=(5, D)))
    np.testing.assert_allclose(policy.lookahead_values(X), policy.expected_rewards(X))
    plain = LookaheadTSPolicy(SPACE, D, future_contacts=2.0, noise_variance=1.0)
    plain.mean_ = np.full(28, 1e-4)
    assert not np.allclose(plain.lookahead_values(X), plain.expected_rewards(X))


@pytest.mark.parametrize("harmful", [0, 2], ids=["m0-harms", "m2-harms"])
def test_a_real_harm_stands_out_of_the_noise(harmful: int) -> None:
    """The fatigue world of test_lookahead_ts with shrinkage: the harm is large against its
    noise, so the policy still avoids the tiring message (the margin as there)."""
    assert fatigue_world("lookahead_ts", harmful, lookahead_shrinkage=True) < 0.2


@pytest.mark.parametrize("field", ["lookahead_shrinkage", "churn_shrinkage"])
def test_a_shrinkage_that_is_not_a_flag_names_the_field(field: str) -> None:
    with pytest.raises(BanditValueError) as error:
        make_policy("lookahead_ts", space=SPACE, n_context=D, **{field: "yes"})
    assert error.value.field == field
