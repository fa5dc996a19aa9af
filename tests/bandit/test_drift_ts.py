"""drift_ts: dynamic model averaging over drift rates, checked by hand and against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bandit import BanditValueError, DecisionSpace, make_policy
from bandit.linalg import block_log_det_gain, gaussian_update, log_det_gain
from bandit.policies import DriftTSPolicy, KalmanTSPolicy

TWO_ARMS = DecisionSpace({"arm": ["a", "b"]})
THREE_ARMS = DecisionSpace({"arm": ["a", "b", "c"]})
FACTORED = DecisionSpace({"offer": ["x", "y", "z"], "channel": ["email", "sms"]})


def test_weights_hand_computed() -> None:
    """One arm's intercept, prior ``w ~ N(0, 1)`` (ridge 1), noise variance 1, drift rates
    0 and 1; one reward ``r = 2`` on arm a.

    - rate 0: predictive ``N(0, 1 + 1) = N(0, 2)``: ``log p0 = -log(4 pi) / 2 - 4 / 4``;
      posterior mean ``1 * 2 / 2 = 1``.
    - rate 1: the prior diffuses to ``N(0, 2)``, predictive ``N(0, 3)``:
      ``log p1 = -log(6 pi) / 2 - 4 / 6``; posterior mean ``2 * 2 / 3 = 4 / 3``.
    - From equal prior weights, ``w1 / w0 = sqrt(2 / 3) e^(1/3)``, so
      ``w0 = 1 / (1 + sqrt(2 / 3) e^(1/3)) = 0.46740...``.
    """
    policy = DriftTSPolicy(TWO_ARMS, 0, drift_rates=[0.0, 1.0], noise_variance=1.0, seed=0)
    policy.update(np.zeros((1, 0)), [0], [2.0])
    ratio = math.sqrt(2.0 / 3.0) * math.exp(1.0 / 3.0)
    np.testing.assert_allclose(policy.weights_, [1 / (1 + ratio), ratio / (1 + ratio)], rtol=1e-14)
    np.testing.assert_allclose(policy.mean_[:, 0, 0], [1.0, 4.0 / 3.0], rtol=1e-14)
    log_p0 = -0.5 * math.log(4 * math.pi) - 1.0
    log_p1 = -0.5 * math.log(6 * math.pi) - 2.0 / 3.0
    expected = np.array([log_p0, log_p1]) - np.logaddexp(log_p0, log_p1)
    np.testing.assert_allclose(policy.log_weights_, expected, rtol=1e-14)


def _train(policy: DriftTSPolicy, n_context: int, rows: int, rng: np.random.Generator) -> None:
    X = rng.standard_normal((rows, n_context))
    actions = rng.integers(policy.n_actions, size=rows)
    policy.update(X, actions, rng.standard_normal(rows) * 0.5 + 0.3)


def _design_covariance(
    policy: DriftTSPolicy, model: KalmanTSPolicy, Z: np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``X mu`` and ``X Sigma X^T`` of the chosen actions, computed row pair by row pair."""
    n = Z.shape[0]
    if model.belief_.mean.ndim == 2:  # one block per arm
        mean = np.array([Z[i] @ model.belief_.mean[a[i]] for i in range(n)])
        cov = np.array(
            [
                [Z[i] @ model.belief_.cov[a[i]] @ Z[j] if a[i] == a[j] else 0.0 for j in range(n)]
                for i in range(n)
            ]
        )
        return mean, cov
    design = policy.features.design(Z, a)
    return design @ model.belief_.mean, design @ model.belief_.cov @ design.T


@pytest.mark.parametrize("space", [THREE_ARMS, FACTORED], ids=["per-arm", "factored"])
@pytest.mark.parametrize("noise", [0.3, "auto"])
def test_weights_follow_the_exact_predictive_density(space: DecisionSpace, noise: object) -> None:
    """The new log weights are the old ones plus each model's log predictive density of the
    batch, recomputed with scipy: ``N(X mu, X Sigma X^T + s2 I)`` for a known noise variance,
    the multivariate t with ``2a`` degrees of freedom and shape ``(b / a)(I + X V X^T)`` for a
    learned one, ``Sigma`` (or ``V``) the covariance after the predict step."""
    rng = np.random.default_rng(3)
    rates = [0.0, 1e-3, 0.05]
    policy = DriftTSPolicy(space, 2, drift_rates=rates, noise_variance=noise, seed=1)
    _train(policy, 2, 40, rng)
    n = 4
    X = rng.standard_normal((n, 2))
    actions = rng.integers(space.n_actions, size=n)
    rewards = rng.standard_normal(n)
    Z = policy.features.augment(X)
    densities = []
    for model, rate in zip(policy.models, rates, strict=True):
        s2 = 1.0 if noise == "auto" else float(noise)
        before = model.belief_.cov.copy()
        # The predict step by hand, on a copy: Sigma + n q I with q = rate * s2.
        model.belief_.cov = before + n * rate * s2 * np.eye(before.shape[-1])
        mean, cov = _design_covariance(policy, model, Z, actions)
        model.belief_.cov = before
        if noise == "auto":
            a, b = float(model.noise_shape_), float(model.noise_scale_)
            shape = (b / a) * (np.eye(n) + cov)
            densities.append(stats.multivariate_t(loc=mean, shape=shape, df=2 * a).logpdf(rewards))
        else:
            densities.append(stats.multivariate_normal(mean, cov + s2 * np.eye(n)).logpdf(rewards))
    expected = policy.log_weights_ + np.array(densities)
    expected -= np.logaddexp.reduce(expected)
    policy.update(X, actions, rewards)
    np.testing.assert_allclose(policy.log_weights_, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n", [1, 3, 12])
def test_log_det_gain_is_the_log_determinant_drop(n: int) -> None:
    """``log det Sigma - log det Sigma'`` with ``Sigma'`` from :func:`gaussian_update`, for a
    single row, fewer rows than weights and more."""
    rng = np.random.default_rng(n)
    root = rng.standard_normal((5, 5))
    cov = root @ root.T + 0.1 * np.eye(5)
    X = rng.standard_normal((n, 5))
    curvature = rng.random(n) + 0.5
    _, after = gaussian_update(np.zeros(5), cov, X, curvature, np.zeros(n))
    expected = np.linalg.slogdet(cov)[1] - np.linalg.slogdet(after)[1]
    assert log_det_gain(cov, X, curvature) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("n", [1, 9])
def test_block_log_det_gain_is_the_sum_over_touched_arms(n: int) -> None:
    rng = np.random.default_rng(7 + n)
    roots = rng.standard_normal((4, 3, 3))
    covs = roots @ np.swapaxes(roots, 1, 2) + 0.1 * np.eye(3)
    Z = rng.standard_normal((n, 3))
    actions = rng.integers(4, size=n)
    curvature = rng.random(n) + 0.5
    expected = sum(
        log_det_gain(covs[arm], Z[actions == arm], curvature[actions == arm])
        for arm in np.unique(actions)
    )
    assert block_log_det_gain(covs, Z, actions, curvature) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("space", [THREE_ARMS, FACTORED], ids=["per-arm", "factored"])
def test_a_single_stationary_rate_is_linear_ts(space: DecisionSpace) -> None:
    """With the ladder ``[0]`` the one model is linear Thompson sampling's belief."""
    rng = np.random.default_rng(11)
    drift = make_policy("drift_ts", space=space, n_context=2, seed=0, drift_rates=[0.0])
    linear = make_policy("linear_ts", space=space, n_context=2, seed=0)
    for _ in range(5):
        X = rng.standard_normal((7, 2))
        actions = rng.integers(space.n_actions, size=7)
        rewards = rng.standard_normal(7)
        drift.update(X, actions, rewards)
        linear.update(X, actions, rewards)
    state, reference = drift.get_state(), linear.get_state()
    for key in ("mean", "cov", "noise_shape", "noise_scale"):
        np.testing.assert_allclose(state[key][0], reference[key], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(state["log_weights"], [0.0])


def _play(policy: DriftTSPolicy, walk_sd: float, rounds: int, seed: int) -> None:
    """Linear-Gaussian rewards (noise sd 0.1) on three arms whose weights take a random walk
    with step ``walk_sd`` per round; ten rounds per batch."""
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((3, 3)) * 0.5
    for _ in range(rounds // 10):
        X = rng.standard_normal((10, 2))
        decision = policy.select(X)
        Z = np.hstack([np.ones((10, 1)), X])
        mean = (Z * weights[decision.actions]).sum(axis=1)
        policy.update(X, decision.actions, mean + 0.1 * rng.standard_normal(10))
        weights += walk_sd * math.sqrt(10) * rng.standard_normal(weights.shape)


def test_it_learns_whether_the_world_drifts() -> None:
    """Default ladder (0, 1e-6, 1e-5, 1e-4 noise variances per reward), 3,000 rounds.

    - Stationary: the weight stays on the rates 0 and 1e-6 (3,000 rewards cannot tell those
      two apart: 1e-6 moves a weight by sqrt(3e-3) = 0.05 noise units over the run).
    - A random walk of step sd 3e-4 per round is a rate of 9e-8 / 0.1^2 = 9e-6: most weight
      on 1e-5.
    - Step sd 1e-3, a rate of 1e-4: the weight is on 1e-4.
    """
    expected = {0.0: ([0, 1], 0.95), 3e-4: ([2], 0.5), 1e-3: ([3], 0.95)}
    for walk_sd, (models, least) in expected.items():
        policy = DriftTSPolicy(THREE_ARMS, 2, seed=0)
        _play(policy, walk_sd, 3_000, seed=1)
        assert policy.weights_[models].sum() > least, (walk_sd, policy.weights_)


def test_state_round_trip_keeps_every_model_and_weight() -> None:
    rng = np.random.default_rng(5)
    policy = DriftTSPolicy(FACTORED, 2, seed=0)
    _train(policy, 2, 30, rng)
    state = policy.get_state()
    assert state["cov"].shape[0] == state["log_weights"].shape[0] == 4
    clone = DriftTSPolicy(FACTORED, 2, seed=0)
    clone.set_state(state)
    for key, value in clone.get_state().items():
        np.testing.assert_array_equal(value, state[key])
    X = rng.standard_normal((3, 2))
    np.testing.assert_allclose(clone.expected_rewards(X), policy.expected_rewards(X), rtol=1e-12)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"drift_rates": []}, "drift_rates"),
        ({"drift_rates": [0.0, -1e-6]}, "drift_rates"),
        ({"drift_rates": [1e-6, 1e-6]}, "drift_rates"),
        ({"drift_rates": "fast"}, "drift_rates"),
        ({"drift_rates": [float("inf")]}, "drift_rates"),
        ({"weight_forgetting": 0.0}, "weight_forgetting"),
        ({"weight_forgetting": 1.5}, "weight_forgetting"),
    ],
)
def test_bad_parameters_name_the_field(params: dict[str, object], field: str) -> None:
    with pytest.raises(BanditValueError, match=f"'{field}' parameter of DriftTSPolicy") as error:
        make_policy("drift_ts", space=TWO_ARMS, n_context=1, **params)
    assert error.value.field == field
