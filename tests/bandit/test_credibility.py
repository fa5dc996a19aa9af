"""Per-level effects shrunk to 0 unless they stand out of their noise (bandit.credibility),
and lookahead_ts's later-contacts term ``M g`` with that shrinkage: by hand, at the limits,
and in the fatigue world where the harm is real."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bandit import BanditValueError, make_policy
from bandit.credibility import centring, soft_threshold_levels
from bandit.policies.lookahead_ts import LookaheadTSPolicy
from tests.bandit.test_lookahead_ts import SPACE, D, fatigue_world


def test_the_centring_by_hand() -> None:
    K = centring((2, 1))
    np.testing.assert_allclose(K, [[0.5, -0.5, 0], [-0.5, 0.5, 0], [0, 0, 0]])


def test_soft_thresholding_by_hand() -> None:
    """Factor (a, b, c) with estimates (3, 0, 0), covariance I: centred (2, -1, -1), each
    with variance ``(1 - 1/3)^2 + 2 / 9 = 2/3``; at z = 1 they shrink by ``sqrt(2/3) =
    0.8165``: (1.1835, -0.1835, -0.1835); at z = 2: (0.367, 0, 0); a one-level factor is 0."""
    estimate = np.array([3.0, 0.0, 0.0, 5.0])
    covariance = np.eye(4)
    se = math.sqrt(2 / 3)
    np.testing.assert_allclose(
        soft_threshold_levels(estimate, covariance, (3, 1), 1.0),
        [2 - se, -(1 - se), -(1 - se), 0.0],
    )
    np.testing.assert_allclose(
        soft_threshold_levels(estimate, covariance, (3, 1), 2.0), [2 - 2 * se, 0, 0, 0]
    )
    np.testing.assert_allclose(
        soft_threshold_levels(estimate, covariance, (3, 1), 0.0), [2, -1, -1, 0]
    )


@given(
    arrays(np.float64, 5, elements=st.floats(-10, 10)),
    st.floats(0.0, 5.0),
)
def test_shrinkage_never_flips_a_sign_or_grows(estimate: np.ndarray, z: float) -> None:
    centred = centring((3, 2)) @ estimate
    shrunk = soft_threshold_levels(estimate, np.eye(5) * 0.3, (3, 2), z)
    assert np.all(np.abs(shrunk) <= np.abs(centred) + 1e-12)
    assert np.all(shrunk * centred >= -1e-12)


def test_gated_later_contacts_term_by_hand() -> None:
    """With the weights and covariance set by hand, M = 1.5 and z = 1, Q is the reward now
    plus, per level, the shrunk centred ``M g`` of :func:`soft_threshold_levels` on the
    policy's own ``B_M mu`` and ``B_M Sigma B_M^T`` (noise variance 1: fixed)."""
    policy = LookaheadTSPolicy(
        SPACE, D, future_contacts=1.5, lookahead_credibility=1.0, noise_variance=1.0
    )
    rng = np.random.default_rng(3)
    policy.mean_ = rng.normal(size=28)
    policy.cov_ = np.eye(28) * 0.01
    belief = policy._lookahead_belief()
    B = 1.5 * belief.maps[0]
    g = soft_threshold_levels(B @ policy.mean_, 0.01 * B @ B.T, (2, 2), 1.0)
    x = np.array([[0.4, 1.0, 0.0, 0.5, 0.5, 3.0]])
    q = policy.lookahead_values(x)[0]
    r = policy.expected_rewards(x)[0]
    for action in range(SPACE.n_actions):
        msg, chan = SPACE.level_index[action]
        assert q[action] == pytest.approx(r[action] + g[msg] + g[2 + chan])


def test_an_unreachable_threshold_leaves_the_reward_model() -> None:
    rng = np.random.default_rng(1)
    X = np.abs(rng.normal(size=(200, D)))
    policy = LookaheadTSPolicy(SPACE, D, future_contacts=2.0, lookahead_credibility=1e6)
    policy.update(X, rng.choice(3, 200), rng.random(200))
    np.testing.assert_allclose(policy.lookahead_values(X[:5]), policy.expected_rewards(X[:5]))


@pytest.mark.parametrize("harmful", [0, 2], ids=["m0-harms", "m2-harms"])
def test_a_real_harm_stands_out_of_the_noise(harmful: int) -> None:
    """The fatigue world of test_lookahead_ts, with z = 2: the harm is large against its
    standard error, so the gated policy still avoids the tiring message (margin as there)."""
    assert fatigue_world("lookahead_ts", harmful, lookahead_credibility=2.0) < 0.2


def test_a_negative_credibility_names_the_field() -> None:
    with pytest.raises(BanditValueError) as error:
        make_policy("lookahead_ts", space=SPACE, n_context=D, lookahead_credibility=-1.0)
    assert error.value.field == "lookahead_credibility"
