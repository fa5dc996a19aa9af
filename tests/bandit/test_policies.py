"""Reference tests for the policies: hand-computed states, closed forms, identities.

The ridge reference is written here from the textbook formula
``mu = (ridge * s2 * I + Phi^T Phi)^-1 Phi^T r``, ``Sigma = (ridge I + Phi^T Phi / s2)^-1``
with ``Phi`` the design rows (``ActionFeatures.design`` is itself checked against a naive
one-hot in ``test_features.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from policy_support import context_width
from scipy.special import expit
from scipy.stats import norm

from bandit import POLICIES, ActionFeatures, BanditValueError, DecisionSpace, make_policy
from bandit.policies import (
    BetaTSPolicy,
    EpsilonGreedyPolicy,
    FixedPolicy,
    GaussianTSPolicy,
    KalmanTSPolicy,
    LinearTSPolicy,
    LinUCBPolicy,
    LogisticTSPolicy,
    UniformPolicy,
)

TWO_ARMS = DecisionSpace({"arm": ["a", "b"]})
FIVE_ARMS = DecisionSpace({"arm": [f"a{i}" for i in range(5)]})
FACTORED = DecisionSpace(
    {"offer": ["none", "bundle", "discount"], "channel": ["sms", "email", "push"]},
    rules=[{"offer": "bundle", "channel": "email"}],
)


def ridge_reference(
    space: DecisionSpace,
    X: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    *,
    ridge: float = 1.0,
    noise_variance: float = 1.0,
    interactions: bool = False,
) -> tuple[np.ndarray, np.ndarray, ActionFeatures]:
    features = ActionFeatures(space, X.shape[1], interactions=interactions)
    Phi = features.design(features.augment(X), actions)
    p = Phi.shape[1]
    mean = np.linalg.solve(ridge * noise_variance * np.eye(p) + Phi.T @ Phi, Phi.T @ rewards)
    cov = np.linalg.inv(ridge * np.eye(p) + Phi.T @ Phi / noise_variance)
    return mean, cov, features


def all_scores(features: ActionFeatures, X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """phi(x, a) . w for every row and every action, by building every design row."""
    Z = features.augment(X)
    n, A = X.shape[0], features.space.n_actions
    rows = np.repeat(Z, A, axis=0)
    actions = np.tile(np.arange(A), n)
    return (features.design(rows, actions) @ weights).reshape(n, A)


def as_joint(state: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A BlockBelief state (K, w) / (K, w, w) as the equivalent joint mean and covariance."""
    mean, cov = state["mean"], state["cov"]
    if mean.ndim == 1:
        return mean, cov
    k, w = mean.shape
    joint = np.zeros((k * w, k * w))
    for arm in range(k):
        joint[arm * w : (arm + 1) * w, arm * w : (arm + 1) * w] = cov[arm]
    return mean.reshape(-1), joint


def logged_data(space: DecisionSpace, n: int, d: int, seed: int, binary: bool = True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    eligible = np.flatnonzero(space.allowed)
    actions = rng.choice(eligible, n)
    rewards = (rng.random(n) < 0.4).astype(float) if binary else rng.normal(0.3, 1.0, n)
    return X, actions, rewards


# -- hand-computed ---------------------------------------------------------------------------


def hand_linucb(alpha: float, **kwargs: object) -> LinUCBPolicy:
    """Arm a sees x = 0 -> 1 and x = 1 -> 2 (z = [1, 0] and [1, 1]); arm b sees nothing.
    Known noise variance 1 unless ``kwargs`` say otherwise."""
    kwargs = {"noise_variance": 1.0, **kwargs}
    policy = LinUCBPolicy(TWO_ARMS, 1, alpha=alpha, exploration_floor=0.0, **kwargs)
    policy.update(np.array([[0.0], [1.0]]), np.array([0, 0]), np.array([1.0, 2.0]))
    return policy


def test_linucb_hand_computed_state_and_bounds() -> None:
    """Same arithmetic as the two-row ridge problem in test_linalg.py.

    Arm a: Z^T Z + I = [[3, 1], [1, 2]], inverse [[2, -1], [-1, 3]] / 5, Z^T r = [3, 2],
    mu_a = [4/5, 3/5]. At x = 1 (z = [1, 1]): mean 7/5, variance (2 - 1 - 1 + 3)/5 = 3/5.
    Arm b is the prior: mean 0, variance |z|^2 = 2.
    alpha = 1: a scores 7/5 + sqrt(3/5) = 2.17 > b's sqrt(2) = 1.41, so a.
    alpha = 3: a scores 7/5 + 3 sqrt(3/5) = 3.72 < b's 3 sqrt(2) = 4.24, so b.
    """
    policy = hand_linucb(1.0)
    state = policy.get_state()
    np.testing.assert_allclose(state["mean"], [[0.8, 0.6], [0.0, 0.0]], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(state["cov"][0], [[0.4, -0.2], [-0.2, 0.6]], rtol=1e-14)
    np.testing.assert_array_equal(state["cov"][1], np.eye(2))
    assert int(state["n_updates"]) == 2
    x = np.array([[1.0]])
    np.testing.assert_allclose(
        policy.upper_bounds(x), [[1.4 + math.sqrt(0.6), math.sqrt(2.0)]], rtol=1e-14
    )
    np.testing.assert_array_equal(policy.action_probabilities(x), [[1.0, 0.0]])
    np.testing.assert_array_equal(hand_linucb(3.0).action_probabilities(x), [[0.0, 1.0]])


def test_ridge_and_noise_variance_parametrisation() -> None:
    """ridge = 1/2, noise_variance = 2: ridge * s2 = 1, so the same mean [4/5, 3/5];
    Sigma = (I/2 + Z^T Z / 2)^-1 = 2 [[2, -1], [-1, 3]] / 5."""
    policy = hand_linucb(1.0, ridge=0.5, noise_variance=2.0)
    state = policy.get_state()
    np.testing.assert_allclose(state["mean"][0], [0.8, 0.6], rtol=1e-14)
    np.testing.assert_allclose(state["cov"][0], [[0.8, -0.4], [-0.4, 1.2]], rtol=1e-14)
    np.testing.assert_allclose(state["cov"][1], 2.0 * np.eye(2), rtol=1e-14)


def test_logistic_ts_hand_computed_laplace_steps() -> None:
    """No context (z = [1]), prior N(0, 1).

    One row r = 1: p = sigmoid(0) = 1/2, h = 1/4, g = 1/2: Sigma = 1/(1 + 1/4) = 4/5,
    mu = 4/5 * 1/2 = 2/5.
    One batch r = [1, 0]: h = 1/4 + 1/4, g = 1/2 - 1/2: Sigma = 1/(3/2) = 2/3, mu = 0.
    Row by row r = 1 then r = 0: from (2/5, 4/5), p = sigmoid(2/5), Sigma = 1/(5/4 + p(1-p)),
    mu = 2/5 - Sigma p: one Newton step per batch, so order and batching matter.
    """
    one = LogisticTSPolicy(TWO_ARMS, 0)
    one.update(np.zeros((1, 0)), [0], [1.0])
    np.testing.assert_allclose(one.get_state()["mean"][0], [0.4], rtol=1e-15)
    np.testing.assert_allclose(one.get_state()["cov"][0], [[0.8]], rtol=1e-15)

    batch = LogisticTSPolicy(TWO_ARMS, 0)
    batch.update(np.zeros((2, 0)), [0, 0], [1.0, 0.0])
    np.testing.assert_allclose(batch.get_state()["mean"][0], [0.0], atol=1e-15)
    np.testing.assert_allclose(batch.get_state()["cov"][0], [[2.0 / 3.0]], rtol=1e-15)

    one.update(np.zeros((1, 0)), [0], [0.0])
    p = expit(0.4)
    sigma = 1.0 / (1.25 + p * (1.0 - p))
    np.testing.assert_allclose(one.get_state()["cov"][0], [[sigma]], rtol=1e-14)
    np.testing.assert_allclose(one.get_state()["mean"][0], [0.4 - sigma * p], atol=1e-15)


def test_beta_ts_hand_computed() -> None:
    """Beta(2, 3) prior; rewards [1, 0, 1] on action 0 -> Beta(4, 4); 0.25 on action 1 ->
    Beta(2.25, 3.75); action 2 keeps the prior."""
    policy = BetaTSPolicy(DecisionSpace({"arm": ["a", "b", "c"]}), 0, prior_alpha=2, prior_beta=3)
    policy.update(np.zeros((4, 0)), [0, 0, 1, 0], [1.0, 0.0, 0.25, 1.0])
    np.testing.assert_array_equal(policy.get_state()["alpha"], [4.0, 2.25, 2.0])
    np.testing.assert_array_equal(policy.get_state()["beta"], [4.0, 3.75, 3.0])


def test_gaussian_ts_hand_computed() -> None:
    """Prior N(0, 1), noise 1; rewards [1, 3, 5] on action 0: precision 1 + 3 = 4,
    mean (0 + 9) / 4 = 9/4, variance 1/4. Action 1 keeps N(0, 1)."""
    policy = GaussianTSPolicy(TWO_ARMS, 0)
    policy.update(np.zeros((3, 0)), [0, 0, 0], [1.0, 3.0, 5.0])
    mean, variance = policy.posterior()
    np.testing.assert_allclose(mean, [2.25, 0.0], rtol=1e-15)
    np.testing.assert_allclose(variance, [0.25, 1.0], rtol=1e-15)
    shifted = GaussianTSPolicy(TWO_ARMS, 0, prior_mean=1.0, prior_variance=2.0, noise_variance=4.0)
    shifted.update(np.zeros((2, 0)), [1, 1], [3.0, 5.0])
    # precision 1/2 + 2/4 = 1, mean (1/2 + 8/4) / 1 = 5/2.
    mean, variance = shifted.posterior()
    np.testing.assert_allclose(mean, [1.0, 2.5], rtol=1e-15)
    np.testing.assert_allclose(variance, [2.0, 1.0], rtol=1e-15)


# -- closed forms and identities -------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "interactions"),
    [(FIVE_ARMS, False), (FIVE_ARMS, True), (FACTORED, False), (FACTORED, True)],
    ids=["block", "one-factor-joint", "factored", "factored+interactions"],
)
@pytest.mark.parametrize("name", ["linucb", "linear_ts", "epsilon_greedy", "kalman_ts"])
def test_linear_state_equals_closed_form_ridge(
    name: str, space: DecisionSpace, interactions: bool
) -> None:
    X, actions, rewards = logged_data(space, 60, 3, seed=1, binary=False)
    params = {"process_noise": 0.0} if name == "kalman_ts" else {}
    policy = make_policy(
        name,
        space=space,
        n_context=3,
        ridge=0.5,
        noise_variance=0.8,
        interactions=interactions,
        **params,
    )
    for start in range(0, 60, 7):
        policy.update(X[start : start + 7], actions[start : start + 7], rewards[start : start + 7])
    mean, cov, features = ridge_reference(
        space, X, actions, rewards, ridge=0.5, noise_variance=0.8, interactions=interactions
    )
    got_mean, got_cov = as_joint(policy.get_state())
    np.testing.assert_allclose(got_mean, mean, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(got_cov, cov, rtol=1e-9, atol=1e-11)
    probe = np.random.default_rng(2).standard_normal((4, 3))
    np.testing.assert_allclose(
        policy.expected_rewards(probe), all_scores(features, probe, mean), rtol=1e-9, atol=1e-11
    )


@pytest.mark.parametrize("space", [FIVE_ARMS, FACTORED], ids=["block", "factored"])
def test_linucb_alpha_zero_is_greedy_ridge(space: DecisionSpace) -> None:
    X, actions, rewards = logged_data(space, 80, 3, seed=5, binary=False)
    floor = 0.1
    policy = LinUCBPolicy(space, 3, alpha=0.0, exploration_floor=floor)
    policy.update(X, actions, rewards)
    mean, _, features = ridge_reference(space, X, actions, rewards)
    probe = np.random.default_rng(6).standard_normal((30, 3))
    scores = np.where(space.allowed, all_scores(features, probe, mean), -np.inf)
    eligible = space.allowed.sum()
    expected = np.tile(np.where(space.allowed, floor / eligible, 0.0), (30, 1))
    expected[np.arange(30), scores.argmax(axis=1)] += 1.0 - floor
    np.testing.assert_allclose(policy.action_probabilities(probe), expected, rtol=1e-12)
    greedy = EpsilonGreedyPolicy(space, 3, epsilon=0.0, exploration_floor=floor)
    greedy.update(X, actions, rewards)
    np.testing.assert_allclose(greedy.action_probabilities(probe), expected, rtol=1e-12)


def test_linucb_bounds_are_mean_plus_alpha_sd() -> None:
    X, actions, rewards = logged_data(FACTORED, 50, 2, seed=9, binary=False)
    policy = LinUCBPolicy(FACTORED, 2, alpha=0.7, noise_variance=1.0)
    policy.update(X, actions, rewards)
    mean, cov, features = ridge_reference(FACTORED, X, actions, rewards)
    probe = np.random.default_rng(1).standard_normal((3, 2))
    Z = features.augment(probe)
    A = FACTORED.n_actions
    for i in range(3):
        Phi = features.design(np.repeat(Z[i : i + 1], A, axis=0), np.arange(A))
        expected = Phi @ mean + 0.7 * np.sqrt(np.einsum("ap,pq,aq->a", Phi, cov, Phi))
        np.testing.assert_allclose(policy.upper_bounds(probe)[i], expected, rtol=1e-9)


def test_epsilon_greedy_probabilities_formula() -> None:
    """P = (1 - f) [(1 - eps) 1[argmax] + eps / |E|] + f / |E| with |E| = 8 eligible actions."""
    X, actions, rewards = logged_data(FACTORED, 40, 2, seed=3, binary=False)
    policy = EpsilonGreedyPolicy(FACTORED, 2, epsilon=0.2, exploration_floor=0.05)
    policy.update(X, actions, rewards)
    probe = np.random.default_rng(4).standard_normal((10, 2))
    scores = np.where(FACTORED.allowed, policy.expected_rewards(probe), -np.inf)
    best = scores.argmax(axis=1)
    probabilities = policy.action_probabilities(probe)
    eligible = FACTORED.allowed
    expected_best = 0.95 * (0.8 + 0.2 / 8) + 0.05 / 8
    expected_other = 0.95 * 0.2 / 8 + 0.05 / 8
    np.testing.assert_allclose(probabilities[np.arange(10), best], expected_best, rtol=1e-12)
    others = eligible[None, :] & (np.arange(FACTORED.n_actions)[None, :] != best[:, None])
    np.testing.assert_allclose(probabilities[others], expected_other, rtol=1e-12)
    np.testing.assert_array_equal(probabilities[:, ~eligible], 0.0)


def test_fresh_greedy_model_splits_ties_uniformly() -> None:
    """All-zero scores: every eligible action is a maximiser, so the choice is uniform."""
    probabilities = LinUCBPolicy(FACTORED, 2, alpha=0.0).action_probabilities(np.ones((2, 2)))
    np.testing.assert_allclose(probabilities[:, FACTORED.allowed], 1.0 / 8, rtol=1e-12)


@pytest.mark.parametrize("space", [FIVE_ARMS, FACTORED], ids=["block", "factored"])
def test_kalman_without_noise_or_forgetting_equals_linear_ts(space: DecisionSpace) -> None:
    kalman = KalmanTSPolicy(space, 3, process_noise=0.0, forgetting=1.0, seed=4)
    linear = LinearTSPolicy(space, 3, seed=4)
    rng = np.random.default_rng(0)
    for _ in range(6):
        X = rng.standard_normal((int(rng.integers(1, 9)), 3))
        chosen_k, chosen_l = kalman.select(X), linear.select(X)
        np.testing.assert_array_equal(chosen_k.actions, chosen_l.actions)
        np.testing.assert_array_equal(chosen_k.propensities, chosen_l.propensities)
        rewards = (rng.random(X.shape[0]) < 0.5).astype(float)
        kalman.update(X, chosen_k.actions, rewards)
        linear.update(X, chosen_l.actions, rewards)
    for key, value in linear.get_state().items():
        np.testing.assert_allclose(kalman.get_state()[key], value, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("space", [FIVE_ARMS, FACTORED], ids=["block", "factored"])
def test_kalman_batch_is_predict_n_steps_then_conjugate_update(space: DecisionSpace) -> None:
    """Before a batch of n rows: Sigma <- Sigma / gamma^n + n q I, then the exact update
    written with explicit inverses: P = Sigma^-1 + Phi^T Phi / s2, mu' = P^-1 (Sigma^-1 mu +
    Phi^T r / s2)."""
    q, gamma, s2 = 0.01, 0.98, 0.5
    policy = KalmanTSPolicy(space, 2, process_noise=q, forgetting=gamma, noise_variance=s2)
    features = ActionFeatures(space, 2)
    p = features.n_features
    mean, cov = np.zeros(p), np.eye(p)
    X, actions, rewards = logged_data(space, 24, 2, seed=8, binary=False)
    for start, n in [(0, 5), (5, 1), (6, 12), (18, 6)]:
        rows = slice(start, start + n)
        policy.update(X[rows], actions[rows], rewards[rows])
        cov = cov / gamma**n + n * q * np.eye(p)
        Phi = features.design(features.augment(X[rows]), actions[rows])
        prior_precision = np.linalg.inv(cov)
        cov = np.linalg.inv(prior_precision + Phi.T @ Phi / s2)
        mean = cov @ (prior_precision @ mean + Phi.T @ rewards[rows] / s2)
        # Per-arm blocks stay block-diagonal under diffusion and updates, so the joint
        # reference must have exact zeros where BlockBelief stores nothing.
        got_mean, got_cov = as_joint(policy.get_state())
        np.testing.assert_allclose(got_cov, cov, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got_mean, mean, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("space", [FIVE_ARMS, FACTORED], ids=["block", "factored"])
def test_logistic_ts_batch_is_one_newton_step(space: DecisionSpace) -> None:
    """mu' = mu + (Sigma^-1 + Phi^T W Phi)^-1 Phi^T (r - p), W = diag(p (1 - p)), p at mu."""
    policy = LogisticTSPolicy(space, 2, ridge=2.0)
    features = ActionFeatures(space, 2)
    p = features.n_features
    mean, cov = np.zeros(p), np.eye(p) / 2.0
    X, actions, rewards = logged_data(space, 30, 2, seed=2)
    for rows in (slice(0, 10), slice(10, 11), slice(11, 30)):
        policy.update(X[rows], actions[rows], rewards[rows])
        Phi = features.design(features.augment(X[rows]), actions[rows])
        prob = expit(Phi @ mean)
        cov = np.linalg.inv(np.linalg.inv(cov) + Phi.T @ np.diag(prob * (1 - prob)) @ Phi)
        mean = mean + cov @ Phi.T @ (rewards[rows] - prob)
    got_mean, got_cov = as_joint(policy.get_state())
    np.testing.assert_allclose(got_mean, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got_cov, cov, rtol=1e-9, atol=1e-12)


# -- Thompson choice probabilities against closed forms --------------------------------------


def test_linear_ts_two_arm_probability_is_normal_cdf() -> None:
    """P(a beats b) = Phi((m_a - m_b) / (scale sqrt(v_a + v_b))) for independent arm blocks
    (a known noise variance; the learned one's Student t is in test_noise_variance.py)."""
    X, actions, rewards = logged_data(TWO_ARMS, 12, 2, seed=1, binary=False)
    policy = LinearTSPolicy(
        TWO_ARMS, 2, scale=1.5, n_samples=200_000, exploration_floor=0.0, noise_variance=1.0
    )
    policy.update(X, actions, rewards)
    x = np.array([[0.3, -0.8]])
    z = np.array([1.0, 0.3, -0.8])
    state = policy.get_state()
    m, v = state["mean"] @ z, np.einsum("i,kij,j->k", z, state["cov"], z)
    expected = norm.cdf((m[0] - m[1]) / (1.5 * math.sqrt(v[0] + v[1])))
    assert 0.05 < expected < 0.95
    assert policy.action_probabilities(x)[0, 0] == pytest.approx(expected, abs=0.005)


def test_joint_draws_use_the_correlation_between_actions() -> None:
    """Two actions sharing the 'channel' level: the score difference has variance
    (phi_0 - phi_1)^T Sigma (phi_0 - phi_1), smaller than v_0 + v_1 would say."""
    space = DecisionSpace({"offer": ["x", "y"], "channel": ["sms"]})
    X, actions, rewards = logged_data(space, 10, 1, seed=3, binary=False)
    policy = LinearTSPolicy(space, 1, n_samples=200_000, exploration_floor=0.0, noise_variance=1.0)
    policy.update(X, actions, rewards)
    mean, cov, features = ridge_reference(space, X, actions, rewards)
    x = np.array([[0.5]])
    Phi = features.design(np.array([[1.0, 0.5], [1.0, 0.5]]), np.array([0, 1]))
    diff = Phi[0] - Phi[1]
    expected = norm.cdf(diff @ mean / math.sqrt(diff @ cov @ diff))
    assert 0.05 < expected < 0.95
    assert policy.action_probabilities(x)[0, 0] == pytest.approx(expected, abs=0.005)


def test_beta_ts_probability_against_closed_form() -> None:
    """Beta(4, 2) against Beta(1, 1) (uniform): P(theta_a > U) = E[theta_a] = 4/6 = 2/3."""
    policy = BetaTSPolicy(TWO_ARMS, 0, n_samples=200_000, exploration_floor=0.0)
    policy.update(np.zeros((4, 0)), [0, 0, 0, 0], [1.0, 1.0, 1.0, 0.0])
    probabilities = policy.action_probabilities(np.zeros((1, 0)))
    assert probabilities[0, 0] == pytest.approx(2.0 / 3.0, abs=0.005)


def test_gaussian_ts_probability_against_closed_form() -> None:
    """N(9/4, 1/4) against N(0, 1): P = Phi((9/4) / sqrt(5/4)) = Phi(2.0125) = 0.9779."""
    policy = GaussianTSPolicy(TWO_ARMS, 0, n_samples=200_000, exploration_floor=0.0)
    policy.update(np.zeros((3, 0)), [0, 0, 0], [1.0, 3.0, 5.0])
    expected = norm.cdf(2.25 / math.sqrt(1.25))
    assert policy.action_probabilities(np.zeros((1, 0)))[0, 0] == pytest.approx(expected, abs=0.003)


def test_uniform_and_fixed_probabilities() -> None:
    mask = np.array([[True] * 9, [False, True, False, False, False, False, False, False, True]])
    uniform = UniformPolicy(FACTORED, 1).action_probabilities(np.zeros((2, 1)), mask)
    eligible = mask & FACTORED.allowed
    np.testing.assert_allclose(uniform, eligible / eligible.sum(axis=1, keepdims=True))
    fixed = FixedPolicy(FACTORED, 1, action={"offer": "none", "channel": "push"})
    assert fixed.action == 2
    probabilities = fixed.action_probabilities(np.zeros((2, 1)), mask)
    # Row 0: action 2 eligible -> probability 1. Row 1: ineligible -> uniform over {1, 8}.
    np.testing.assert_array_equal(probabilities[0], np.eye(9)[2])
    np.testing.assert_array_equal(probabilities[1], [0, 0.5, 0, 0, 0, 0, 0, 0, 0.5])
    floored = FixedPolicy(FACTORED, 1, action="offer=none|channel=push", exploration_floor=0.2)
    np.testing.assert_allclose(
        floored.action_probabilities(np.zeros((1, 1)))[0],
        0.8 * np.eye(9)[2] + 0.2 * FACTORED.allowed / 8,
    )
    assert FixedPolicy(FIVE_ARMS, 0, action="a3").action == 3
    assert FixedPolicy(FIVE_ARMS, 0, action=4).action == 4


def test_fixed_policy_ignores_rule_excluded_action() -> None:
    """The fixed action is excluded by the space's rules: every row falls back to uniform."""
    fixed = FixedPolicy(FACTORED, 0, action={"offer": "bundle", "channel": "email"})
    decision = fixed.select(np.zeros((50, 0)))
    assert FACTORED.allowed[decision.actions].all()
    np.testing.assert_allclose(decision.propensities, 1.0 / 8)


# -- registry --------------------------------------------------------------------------------


def test_registry_names_and_classes() -> None:
    assert sorted(POLICIES) == sorted(
        [
            "uniform",
            "fixed",
            "epsilon_greedy",
            "linucb",
            "linear_ts",
            "logistic_ts",
            "kalman_ts",
            "drift_ts",
            "beta_ts",
            "gaussian_ts",
            "fitted_q",
            "lookahead_ts",
        ]
    )
    for name, cls in POLICIES.items():
        policy = make_policy(
            name, space=FIVE_ARMS, n_context=context_width(name, FIVE_ARMS, 2), seed=0
        )
        assert type(policy) is cls
        assert policy.name == name
        assert policy.n_actions == 5


def test_default_exploration_floors() -> None:
    floors = {
        name: make_policy(
            name, space=FIVE_ARMS, n_context=context_width(name, FIVE_ARMS, 1)
        ).exploration_floor
        for name in POLICIES
    }
    assert floors.pop("uniform") == 0.0
    assert floors.pop("fixed") == 0.0
    assert set(floors.values()) == {0.01}


# -- bad input -------------------------------------------------------------------------------


def test_unknown_policy_name() -> None:
    with pytest.raises(BanditValueError, match="Unknown policy 'thompson'") as error:
        make_policy("thompson", space=FIVE_ARMS, n_context=1)
    assert error.value.field == "policy"


def test_unknown_hyper_parameter() -> None:
    with pytest.raises(BanditValueError, match="'linucb'") as error:
        make_policy("linucb", space=FIVE_ARMS, n_context=1, beta=2.0)
    assert error.value.field == "params"


def test_linucb_negative_alpha_message() -> None:
    with pytest.raises(BanditValueError) as error:
        make_policy("linucb", space=FIVE_ARMS, n_context=1, alpha=-1)
    assert error.value.field == "alpha"
    assert str(error.value).startswith("The 'alpha' parameter of LinUCBPolicy must be a float")
    assert str(error.value).endswith("Got -1.")


def test_linucb_negative_alpha_exact_message() -> None:
    with pytest.raises(BanditValueError) as error:
        make_policy("linucb", space=FIVE_ARMS, n_context=1, alpha=-1)
    assert str(error.value) == (
        "The 'alpha' parameter of LinUCBPolicy must be a float in [0, inf). Got -1."
    )


BAD_PARAMS = [
    ("linucb", "alpha", -1),
    ("linucb", "alpha", "1"),
    ("linucb", "alpha", float("nan")),
    ("linucb", "ridge", 0.0),
    ("linucb", "noise_variance", -1.0),
    ("epsilon_greedy", "epsilon", 1.5),
    ("epsilon_greedy", "epsilon", True),
    ("linear_ts", "scale", -0.1),
    ("linear_ts", "n_samples", 0),
    ("linear_ts", "n_samples", 10.0),
    ("logistic_ts", "ridge", -2.0),
    ("kalman_ts", "process_noise", -1e-4),
    ("kalman_ts", "forgetting", 0.0),
    ("kalman_ts", "forgetting", 1.01),
    ("beta_ts", "prior_alpha", 0.0),
    ("beta_ts", "prior_beta", -1.0),
    ("beta_ts", "n_samples", 0),
    ("gaussian_ts", "prior_variance", 0.0),
    ("gaussian_ts", "noise_variance", 0.0),
    ("gaussian_ts", "prior_mean", float("nan")),
    ("uniform", "exploration_floor", 1.5),
    ("linucb", "exploration_floor", -0.01),
    ("fixed", "action", 5),
    ("fixed", "action", "nope"),
    ("fixed", "action", 1.0),
]


@pytest.mark.parametrize(("name", "param", "value"), BAD_PARAMS)
def test_bad_hyper_parameter_names_the_field(name: str, param: str, value: object) -> None:
    with pytest.raises(BanditValueError) as error:
        make_policy(name, space=FIVE_ARMS, n_context=1, **{param: value})
    assert error.value.field == param
    assert isinstance(error.value, ValueError)


def test_fixed_action_mapping_with_unknown_level() -> None:
    with pytest.raises(BanditValueError) as error:
        make_policy(
            "fixed", space=FACTORED, n_context=1, action={"offer": "free", "channel": "sms"}
        )
    assert error.value.field == "action"


@pytest.mark.parametrize(
    ("param", "value"),
    [("alpha", math.inf), ("ridge", math.inf), ("noise_variance", math.inf), ("scale", math.inf)],
)
def test_infinite_hyper_parameters_are_refused(param: str, value: float) -> None:
    name = "linear_ts" if param == "scale" else "linucb"
    with pytest.raises(BanditValueError) as error:
        make_policy(name, space=FIVE_ARMS, n_context=1, **{param: value})
    assert error.value.field == param


@pytest.mark.parametrize(
    ("value", "field"), [("space", "space"), (-1, "n_context"), (1.5, "n_context")]
)
def test_bad_space_or_width(value: object, field: str) -> None:
    kwargs = {"space": FIVE_ARMS, "n_context": 2}
    kwargs[field] = value
    with pytest.raises(BanditValueError) as error:
        make_policy("uniform", **kwargs)  # type: ignore[arg-type]
    assert error.value.field == field


def test_numpy_integer_width_is_accepted() -> None:
    policy = make_policy("linucb", space=FIVE_ARMS, n_context=np.int64(2))
    assert policy.n_context == 2
