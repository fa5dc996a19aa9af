"""BlockBelief (per-arm blocks) and JointBelief (one big covariance) agree on one-factor spaces.

For a one-factor space ``phi(x, a) = e_a (x) z`` and the joint covariance stays block-diagonal,
so the joint belief forced through the same space must give the blocks' means, covariances,
scores and score variances, through every update path (one row, few rows, many rows).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from bandit import ActionFeatures, DecisionSpace
from bandit.belief import BlockBelief, JointBelief

K, D = 4, 2
W = D + 1


def make_pair(prior_variance: float = 2.0) -> tuple[BlockBelief, JointBelief]:
    features = ActionFeatures(DecisionSpace({"arm": [f"a{i}" for i in range(K)]}), D)
    return BlockBelief(K, W, prior_variance), JointBelief(features, prior_variance)


def joint_blocks(joint: JointBelief) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The joint belief's per-arm means (K, w), diagonal blocks (K, w, w) and off-diagonal part."""
    mean = joint.mean.reshape(K, W)
    cov = joint.cov.reshape(K, W, K, W)
    blocks = np.stack([cov[k, :, k, :] for k in range(K)])
    off = cov.copy()
    for k in range(K):
        off[k, :, k, :] = 0.0
    return mean, blocks, off


def assert_same(block: BlockBelief, joint: JointBelief, Z: np.ndarray) -> None:
    mean, blocks, off = joint_blocks(joint)
    np.testing.assert_allclose(block.mean, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(block.cov, blocks, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(off, 0.0, atol=1e-12)
    np.testing.assert_allclose(block.mean_scores(Z), joint.mean_scores(Z), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        block.score_variance(Z), joint.score_variance(Z), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("likelihood", ["gaussian", "logistic"])
@pytest.mark.parametrize("batches", [[1, 1, 1, 1], [3, 2], [12], [1, 5, 30]])
def test_block_and_joint_beliefs_agree(likelihood: str, batches: list[int]) -> None:
    rng = np.random.default_rng(sum(batches))
    block, joint = make_pair()
    probe = np.concatenate([np.ones((5, 1)), rng.standard_normal((5, D))], axis=1)
    assert_same(block, joint, probe)
    for n in batches:
        Z = np.concatenate([np.ones((n, 1)), rng.standard_normal((n, D))], axis=1)
        actions = rng.integers(0, K, n)
        actions[0] = 1  # arm 1 always sees data; some batches leave other arms out
        rewards = (rng.random(n) < 0.4).astype(float)
        predictor = block.linear_predictor(Z, actions)
        np.testing.assert_allclose(
            joint.linear_predictor(Z, actions), predictor, rtol=1e-9, atol=1e-12
        )
        if likelihood == "gaussian":
            curvature, score = np.full(n, 1.0 / 0.5), (rewards - predictor) / 0.5
        else:
            p = expit(predictor)
            curvature, score = p * (1 - p), rewards - p
        block.update(Z, actions, curvature, score)
        joint.update(Z, actions, curvature, score)
        assert_same(block, joint, probe)


def test_block_update_in_row_chunks_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose per-arm sums are formed in chunks of 2 rows (the bound on the block
    matrix's cells lowered to 2 x K x W) ends where the joint belief's one update does."""
    monkeypatch.setattr("bandit.belief.MAX_DRAW_CELLS", 2 * K * W)
    rng = np.random.default_rng(7)
    block, joint = make_pair()
    Z = np.concatenate([np.ones((9, 1)), rng.standard_normal((9, D))], axis=1)
    actions = np.array([0, 1, 2, 3, 0, 1, 2, 3, 1])
    curvature, score = rng.random(9) + 0.1, rng.standard_normal(9)
    block.update(Z, actions, curvature, score)
    joint.update(Z, actions, curvature, score)
    assert_same(block, joint, Z)


def test_block_and_joint_diffuse_agree() -> None:
    rng = np.random.default_rng(0)
    block, joint = make_pair()
    Z = np.concatenate([np.ones((6, 1)), rng.standard_normal((6, D))], axis=1)
    actions = np.array([0, 1, 1, 2, 3, 0])
    score = rng.standard_normal(6)
    block.update(Z, actions, np.ones(6), score)
    joint.update(Z, actions, np.ones(6), score)
    block.diffuse(0.01, 0.9, 3)
    joint.diffuse(0.01, 0.9, 3)
    assert_same(block, joint, Z)


def test_block_update_leaves_unplayed_arms_alone() -> None:
    block, _ = make_pair()
    before_mean, before_cov = block.mean.copy(), block.cov.copy()
    Z = np.array([[1.0, 0.5, -1.0], [1.0, 2.0, 0.0]])
    block.update(Z, np.array([2, 2]), np.ones(2), np.ones(2))
    for arm in (0, 1, 3):
        np.testing.assert_array_equal(block.mean[arm], before_mean[arm])
        np.testing.assert_array_equal(block.cov[arm], before_cov[arm])
    assert not np.array_equal(block.cov[2], before_cov[2])


def test_draw_scores_have_the_posterior_law() -> None:
    """Many draws per row: sample mean and variance of every action's score match the belief."""
    rng = np.random.default_rng(3)
    for belief in make_pair():
        Z = np.concatenate([np.ones((2, 1)), rng.standard_normal((2, D))], axis=1)
        belief.update(Z, np.array([0, 1]), np.ones(2), np.array([1.0, -1.0]))
        draws = belief.draw_scores(Z, 40_000, 1.5, np.random.default_rng(4))
        assert draws.shape == (2, 40_000, K)
        mean, variance = belief.mean_scores(Z), belief.score_variance(Z)
        np.testing.assert_allclose(draws.mean(axis=1), mean, atol=0.05)
        np.testing.assert_allclose(draws.var(axis=1), 2.25 * variance, rtol=0.05)
