"""Thompson draws in weight space: a large batch draws ``M`` weight vectors ``w_m = mu + L eps_m``
(``L L^T = Sigma``) once and scores every row with them, where a small batch draws each row's
slot scores from their own moments ``G_i mu``, ``G_i Sigma G_i^T``. Checked against the design
rows by hand, as an exact identity of the two laws (the weight map is affine, so its mean and
covariance follow from ``mu`` and the columns of ``L``), and by the choice shares of both paths.
``lookahead_ts`` draws every batch in slot space (its term ``B_M w`` is common to every row).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import ActionFeatures, DecisionSpace
from bandit.belief import JointBelief
from bandit.montecarlo import winner_frequencies
from bandit.policies.lookahead_ts import LookaheadTSPolicy

#: msg {a, b, c} x chan {x, y}, (c, y) excluded: 5 actions, 5 level slots.
SPACE = DecisionSpace(
    {"msg": ["a", "b", "c"], "chan": ["x", "y"]}, rules=[{"msg": "c", "chan": "y"}]
)
D = 2


def random_belief(features: ActionFeatures, seed: int) -> JointBelief:
    """A belief with a random mean and a random dense positive-definite covariance."""
    rng = np.random.default_rng(seed)
    belief = JointBelief(features, 1.0)
    p = features.n_features
    root = rng.normal(size=(p, p)) / np.sqrt(p)
    belief.mean = rng.normal(size=p)
    belief.cov = root @ root.T + 0.1 * np.eye(p)
    return belief


def contexts(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([np.ones(n), rng.normal(size=(n, D))])


@pytest.mark.parametrize("interactions", [False, True])
def test_slot_draws_are_the_design_rows_times_the_weights(interactions: bool) -> None:
    features = ActionFeatures(SPACE, D, interactions=interactions)
    rng = np.random.default_rng(1)
    Z = contexts(4, 2)
    weights = rng.normal(size=(3, features.n_features))
    scores = features.action_scores(features.slot_draws(Z, weights))
    for action in range(SPACE.n_actions):
        design = features.design(Z, np.full(4, action))
        np.testing.assert_allclose(scores[:, :, action], design @ weights.T, atol=1e-12)


def test_a_large_batch_scores_every_row_with_shared_weight_draws() -> None:
    """``n > p / 3 + M``: the draws are ``phi(x_i, a) . (mu + scale L eps_m)`` with ``eps``
    the generator's next ``(M, p)`` normals, computed here from the design rows."""
    features = ActionFeatures(SPACE, D)
    belief = random_belief(features, 3)
    p, draws, scale = features.n_features, 4, 0.7
    Z = contexts(int(p / 3 + draws) + 1, 4)
    scores = belief.draw_scores(Z, draws, scale, np.random.default_rng(5))
    eps = np.random.default_rng(5).standard_normal((draws, p))
    weights = belief.mean + scale * eps @ np.linalg.cholesky(belief.cov).T
    for action in range(SPACE.n_actions):
        design = features.design(Z, np.full(Z.shape[0], action))
        np.testing.assert_allclose(scores[:, :, action], design @ weights.T, atol=1e-8)


def affine_law(slots_of: object, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean and covariance of ``slots_of(w)`` for ``w ~ N(mean, cov)`` when the map is
    affine: ``f(mean)``, and ``D^T D`` with row ``j`` of ``D`` ``f(mean + L e_j) - f(mean)``."""
    lower = np.linalg.cholesky(cov)
    points = np.vstack([mean, mean + lower.T])  # (1 + p, p): mean, then mean + column j of L
    values = slots_of(points)[0]  # type: ignore[operator]
    steps = values[1:] - values[0]
    return values[0], steps.T @ steps


def test_weight_draws_follow_the_slot_moments_law() -> None:
    features = ActionFeatures(SPACE, D, interactions=True)
    belief = random_belief(features, 6)
    Z = contexts(1, 7)
    mean, cov = affine_law(
        lambda weights: belief._slots_from_weights(Z, weights), belief.mean, belief.cov
    )
    slot_mean, slot_cov = belief._slot_moments(Z)
    np.testing.assert_allclose(mean, slot_mean[0], atol=1e-10)
    np.testing.assert_allclose(cov, slot_cov[0], atol=1e-10)


@pytest.mark.parametrize("shrinkage", [False, True])
def test_lookahead_draws_a_large_batch_in_slot_space(shrinkage: bool) -> None:
    """``Q``'s term ``B_M w`` is common to every row, so ``lookahead_ts`` never scores a batch
    with shared weight vectors: a batch large enough for weight space draws each row's slots
    as ``G_i mu + scale L_i eps_m`` from its own ``Q`` moments, with ``eps`` the generator's
    next ``(M, S)`` normals."""
    n_context = 7  # two plain features, counts of a, b, c, x, y, the days since the last contact
    policy = LookaheadTSPolicy(SPACE, n_context, future_contacts=1.5, lookahead_shrinkage=shrinkage)
    features = policy.features
    template = random_belief(features, 8)
    policy.mean_, policy.cov_ = template.mean, template.cov
    belief = policy._lookahead_belief()
    belief.slot_shift = np.linspace(-0.2, 0.3, features.n_slots)
    draws, scale = 4, 0.7
    rows = int(features.n_features / 3 + draws) + 1
    rng = np.random.default_rng(9)
    Z = np.column_stack([np.ones(rows), rng.random((rows, n_context))])
    scores = belief.draw_scores(Z, draws, scale, np.random.default_rng(5))
    eps = np.random.default_rng(5).standard_normal((draws, features.n_slots))
    mean, cov = belief._slot_moments(Z)
    slots = mean[:, None, :] + eps @ np.swapaxes(np.linalg.cholesky(cov) * scale, 1, 2)
    np.testing.assert_allclose(scores, features.action_scores(slots), atol=1e-8)


def test_both_paths_choose_with_the_same_probabilities() -> None:
    """One context, alone (slot space) or copied into a batch large enough for weight space:
    over 3,000 batches of 4 draws each, the mean choice shares of the two paths agree within
    4.5 standard errors of their difference."""
    features = ActionFeatures(SPACE, D)
    belief = random_belief(features, 10)
    belief.cov = belief.cov * 0.3
    draws, batches = 4, 3_000
    row = contexts(1, 11)
    large = np.repeat(row, int(features.n_features / 3 + draws) + 1, axis=0)
    mask = np.ones((large.shape[0], SPACE.n_actions), dtype=bool)
    rng = np.random.default_rng(12)
    alone = np.array(
        [belief.choice_probabilities(row, mask[:1], draws, 1.0, rng)[0] for _ in range(batches)]
    )
    shared = np.array(
        [belief.choice_probabilities(large, mask, draws, 1.0, rng)[0] for _ in range(batches)]
    )
    np.testing.assert_allclose(alone.sum(axis=1), 1.0)
    np.testing.assert_allclose(shared.sum(axis=1), 1.0)
    difference = alone.mean(axis=0) - shared.mean(axis=0)
    error = np.sqrt((alone.var(axis=0) + shared.var(axis=0)) / batches)
    assert (alone.mean(axis=0) > 0.02).sum() >= 2  # the test compares real contenders
    assert np.all(np.abs(difference) <= 4.5 * error + 1e-12), (difference, error)


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
    rules=st.booleans(),
    ties=st.booleans(),
    mask_kind=st.sampled_from(["all", "levels", "random"]),
)
def test_factored_winners_equal_scoring_every_action(
    sizes: list[int], seed: int, rules: bool, ties: bool, mask_kind: str
) -> None:
    """The factored winner search gives exactly the shares of scoring every action, under
    exclusion rules, masks that allow whole levels or any actions, and tied slot values."""
    rng = np.random.default_rng(seed)
    factors = {f"f{i}": [f"l{j}" for j in range(size)] for i, size in enumerate(sizes)}
    rule = [{"f0": "l0"}] if rules and sizes[0] > 1 else []
    space = DecisionSpace(factors, rules=rule)
    features = ActionFeatures(space, 1)
    n, draws = 5, 3
    slots = rng.normal(size=(n, draws, features.n_slots))
    if ties:
        slots = np.round(slots)  # many equal slot values: ties go to the lowest index
    mask = np.broadcast_to(space.allowed, (n, space.n_actions)).copy()
    if mask_kind == "levels":  # a strategy's restriction: some levels of the last factor
        dropped = rng.random(sizes[-1]) < 0.5
        mask &= ~dropped[space.level_index[:, -1]]
    elif mask_kind == "random":
        mask &= rng.random(mask.shape) < 0.6
    mask[~mask.any(axis=1)] = space.allowed  # every row keeps an eligible action
    expected = winner_frequencies(features.action_scores(slots), mask)
    np.testing.assert_array_equal(features.winner_frequencies(slots, mask), expected)


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 12),
    distinct=st.integers(1, 4),
)
def test_allowed_levels_are_the_levels_with_a_positive_total(
    sizes: list[int], seed: int, n: int, distinct: int
) -> None:
    """Levels allowed per row, taken once per distinct mask row, equal the levels whose
    total over the row's eligible actions is positive, row by row."""
    rng = np.random.default_rng(seed)
    space = DecisionSpace({f"f{i}": [f"l{j}" for j in range(size)] for i, size in enumerate(sizes)})
    patterns = rng.random((distinct, space.n_actions)) < 0.3
    mask = patterns[rng.integers(0, distinct, size=n)]
    expected = np.array([space.level_totals(row[None, :])[0] > 0 for row in mask])
    np.testing.assert_array_equal(
        space.allowed_levels(mask), expected.reshape(n, sum(space.factor_sizes))
    )
