"""Action features against a naive per-row, per-action construction of ``phi(x, a)``.

The naive builder below follows the module docstring literally: for each factor, the one-hot
of the action's level crossed (Kronecker) with ``z = [1, x]``, the factors' blocks in order;
then, with interactions, one indicator per level pair of every factor pair ``f < g`` at
``code_f * size_g + code_g``. It reads levels through ``DecisionSpace.levels_of``, not the
precomputed index arrays the fast code uses.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from bandit import ActionFeatures, DecisionSpace

BIG = {
    "offer": [f"offer{i}" for i in range(10)],
    "message": [f"msg{i}" for i in range(5)],
    "channel": ["sms", "email", "push", "app"],
    "timing": [f"t{i}" for i in range(6)],
}
SMALL = {
    "offer": ["none", "bundle", "discount"],
    "channel": ["sms", "email"],
    "hour": ["9", "12", "18", "21"],
}
ONE = {"arm": [f"a{i}" for i in range(5)]}


def naive_phi(
    space: DecisionSpace, x: np.ndarray, action: int, *, fit_intercept: bool, interactions: bool
) -> np.ndarray:
    z = np.concatenate([[1.0], x]) if fit_intercept else np.asarray(x, dtype=float)
    levels = space.levels_of(action)
    codes = [space.factors[name].index(levels[name]) for name in space.factor_names]
    sizes = space.factor_sizes
    blocks = []
    for code, size in zip(codes, sizes, strict=True):
        blocks.append(np.kron(np.eye(size)[code], z))
    if interactions:
        for f, g in combinations(range(len(sizes)), 2):
            blocks.append(np.eye(sizes[f] * sizes[g])[codes[f] * sizes[g] + codes[g]])
    return np.concatenate(blocks)


def random_spd(rng: np.random.Generator, p: int) -> np.ndarray:
    root = rng.standard_normal((p, p))
    return root @ root.T / p + 0.1 * np.eye(p)


CASES = [
    pytest.param(ONE, 3, True, False, id="one-factor"),
    pytest.param(ONE, 3, True, True, id="one-factor+interactions"),
    pytest.param(SMALL, 2, True, False, id="small"),
    pytest.param(SMALL, 2, True, True, id="small+interactions"),
    pytest.param(SMALL, 3, False, True, id="small+interactions-no-intercept"),
    pytest.param(SMALL, 0, True, True, id="no-context"),
    pytest.param(BIG, 2, True, False, id="1200"),
    pytest.param(BIG, 2, True, True, id="1200+interactions"),
]


def test_sizes_of_the_docstring_example() -> None:
    """10 x 5 x 4 x 6 with 20 context features: (10 + 5 + 4 + 6) x 21 = 525 weights."""
    features = ActionFeatures(DecisionSpace(BIG), 20)
    assert features.n_slots == 25
    assert features.n_features == 525
    with_pairs = ActionFeatures(DecisionSpace(BIG), 20, interactions=True)
    # Pairs: 10*5 + 10*4 + 10*6 + 5*4 + 5*6 + 4*6 = 224 bias weights.
    assert with_pairs.n_bias_slots == 224
    assert with_pairs.n_features == 525 + 224
    assert with_pairs.n_slots == 25 + 224


@pytest.mark.parametrize(("factors", "d", "fit_intercept", "interactions"), CASES)
def test_design_matches_naive_one_hot(
    factors: dict, d: int, fit_intercept: bool, interactions: bool
) -> None:
    space = DecisionSpace(factors)
    features = ActionFeatures(space, d, fit_intercept=fit_intercept, interactions=interactions)
    rng = np.random.default_rng(0)
    n = 40
    X = rng.standard_normal((n, d))
    actions = rng.integers(0, space.n_actions, n)
    actions[:3] = [0, space.n_actions - 1, 0]
    expected = np.stack(
        [
            naive_phi(
                space, X[i], int(actions[i]), fit_intercept=fit_intercept, interactions=interactions
            )
            for i in range(n)
        ]
    )
    design = features.design(features.augment(X), actions)
    assert design.shape == (n, features.n_features)
    np.testing.assert_array_equal(design, expected)


def test_augment_prepends_one() -> None:
    features = ActionFeatures(DecisionSpace(ONE), 2)
    np.testing.assert_array_equal(features.augment(np.array([[3.0, 4.0]])), [[1.0, 3.0, 4.0]])
    bare = ActionFeatures(DecisionSpace(ONE), 2, fit_intercept=False)
    np.testing.assert_array_equal(bare.augment(np.array([[3.0, 4.0]])), [[3.0, 4.0]])
    assert features.width == 3
    assert bare.width == 2


def test_design_of_empty_batch() -> None:
    features = ActionFeatures(DecisionSpace(SMALL), 2, interactions=True)
    design = features.design(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    assert design.shape == (0, features.n_features)


@pytest.mark.parametrize(("factors", "d", "fit_intercept", "interactions"), CASES)
def test_scores_and_variances_match_explicit_quadratic_forms(
    factors: dict, d: int, fit_intercept: bool, interactions: bool
) -> None:
    """action_scores(slot_mean) = phi . mu and action_variance(slot_covariance) = phi^T Sigma phi
    for every action, with phi built naively for each action and row."""
    space = DecisionSpace(factors)
    features = ActionFeatures(space, d, fit_intercept=fit_intercept, interactions=interactions)
    rng = np.random.default_rng(1)
    p = features.n_features
    mean = rng.standard_normal(p)
    cov = random_spd(rng, p)
    n = 3
    X = rng.standard_normal((n, d))
    Z = features.augment(X)
    phi = np.stack(
        [
            [
                naive_phi(space, X[i], a, fit_intercept=fit_intercept, interactions=interactions)
                for a in range(space.n_actions)
            ]
            for i in range(n)
        ]
    )  # (n, A, p)
    expected_scores = phi @ mean
    expected_variance = np.einsum("nap,pq,naq->na", phi, cov, phi)

    slot_mean = features.slot_mean(Z, mean)
    slot_cov = features.slot_covariance(Z, cov)
    assert slot_mean.shape == (n, features.n_slots)
    assert slot_cov.shape == (n, features.n_slots, features.n_slots)
    np.testing.assert_allclose(
        features.action_scores(slot_mean), expected_scores, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        features.action_variance(slot_cov), expected_variance, rtol=1e-10, atol=1e-12
    )
    # action_scores also takes a draws axis, (n, M, S) -> (n, M, A), as Thompson sampling needs.
    draws = features.action_scores(slot_mean[:, None, :] + np.zeros((n, 2, features.n_slots)))
    np.testing.assert_allclose(draws[:, 0], expected_scores, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("factors", "d", "fit_intercept", "interactions"), CASES[2:6])
def test_slot_covariance_is_g_sigma_g_transpose(
    factors: dict, d: int, fit_intercept: bool, interactions: bool
) -> None:
    """C = G Sigma G^T with G built explicitly: row s of G is z in slot s's block (context slots)
    or the unit vector of bias weight b (bias slots)."""
    space = DecisionSpace(factors)
    features = ActionFeatures(space, d, fit_intercept=fit_intercept, interactions=interactions)
    rng = np.random.default_rng(2)
    p, S, w = features.n_features, features.n_slots, features.width
    cov = random_spd(rng, p)
    mean = rng.standard_normal(p)
    Z = features.augment(rng.standard_normal((4, d)))
    for i, z in enumerate(Z):
        G = np.zeros((S, p))
        for s in range(features.n_context_slots):
            G[s, s * w : (s + 1) * w] = z
        for b in range(features.n_bias_slots):
            G[features.n_context_slots + b, features.n_crossed + b] = 1.0
        np.testing.assert_allclose(
            features.slot_covariance(Z, cov)[i], G @ cov @ G.T, rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(features.slot_mean(Z, mean)[i], G @ mean, rtol=1e-10, atol=1e-12)


def test_incidence_counts_each_factor_once() -> None:
    space = DecisionSpace(SMALL)
    features = ActionFeatures(space, 1, interactions=True)
    # 3 context slots per action (one per factor) and 3 pair-bias slots (3 factor pairs).
    np.testing.assert_array_equal(features.incidence.sum(axis=0), 6.0)
    assert features.action_slots.shape == (space.n_actions, 6)
    assert not features.single_slot
    assert ActionFeatures(DecisionSpace(ONE), 1).single_slot
