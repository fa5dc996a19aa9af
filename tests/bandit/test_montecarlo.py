"""The Monte Carlo choice probabilities: the contender shortcut equals the full comparison."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit.montecarlo import (
    SHORT_ACTION_AXIS,
    independent_winner_frequencies,
    winner_frequencies,
)


def test_winner_frequencies_hand_computed() -> None:
    """Row 0: draws (1, 2, 0), (3, 1, 0) -> winners 1, 0; row 1 masks action 0 out:
    (5, 1, 2), (5, 3, 4) -> winners 2, 2."""
    scores = np.array([[[1.0, 2.0, 0.0], [3.0, 1.0, 0.0]], [[5.0, 1.0, 2.0], [5.0, 3.0, 4.0]]])
    mask = np.array([[True, True, True], [False, True, True]])
    np.testing.assert_array_equal(
        winner_frequencies(scores, mask), [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    )


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 80),
    n_actions=st.integers(1, 40),
    n_draws=st.integers(1, 120),
    spread_scale=st.sampled_from([0.0, 1e-3, 0.3, 3.0]),
    rounded=st.booleans(),
)
def test_independent_shares_equal_the_full_comparison(
    seed: int, n: int, n_actions: int, n_draws: int, spread_scale: float, rounded: bool
) -> None:
    """Clear winners, contenders only and the tie fallback give exactly the shares of
    ``argmax`` over every draw (rounded means with zero spread make exact ties)."""
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal((n, n_actions))
    if rounded:
        mean = mean.round()
    spread = rng.random((n, n_actions)) * spread_scale
    noise = rng.standard_normal((n_draws, n_actions))
    mask = rng.random((n, n_actions)) < 0.7
    mask[np.arange(n), rng.integers(0, n_actions, n)] = True
    full = winner_frequencies(mean[:, None, :] + spread[:, None, :] * noise, mask)
    np.testing.assert_array_equal(independent_winner_frequencies(mean, spread, noise, mask), full)


def test_clear_winner_gets_share_one() -> None:
    """Action 1's lowest draw 5 - 0.1 * 3 beats action 0's highest 0 + 1 * 3: share 1 in a
    batch large enough for the shortcut."""
    n = 64
    mean = np.tile([0.0, 5.0], (n, 1))
    spread = np.tile([1.0, 0.1], (n, 1))
    noise = np.clip(np.random.default_rng(0).standard_normal((100, 2)), -3.0, 3.0)
    shares = independent_winner_frequencies(mean, spread, noise, np.ones((n, 2), dtype=bool))
    np.testing.assert_array_equal(shares, np.tile([0.0, 1.0], (n, 1)))


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(21, 120),
    n_actions=st.integers(2, 16),
    n_draws=st.integers(100, 300),
    gap=st.sampled_from([0.0, 0.1, 1.0, 5.0]),
    ties=st.sampled_from(["none", "rounded", "zero spread", "equal columns"]),
    masked=st.booleans(),
)
def test_contender_path_equals_the_full_comparison(
    seed: int, n: int, n_actions: int, n_draws: int, gap: float, ties: str, masked: bool
) -> None:
    """Batches large enough for the contender path (``n M >= 2048``, at most 32 actions),
    with every number of contenders per row from 1 to ``A`` (``gap`` spreads the means apart
    relative to the unit spreads), more than 255 draws (wider counts), and exact ties: rounded
    means with zero spreads, or two actions with identical means, spreads and noise columns
    (so they tie on every draw and argmax gives every draw to the lower index)."""
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal((n, n_actions)) * gap
    spread = rng.random((n, n_actions))
    noise = rng.standard_normal((n_draws, n_actions))
    if ties == "rounded":
        mean = mean.round()
        spread[:, : n_actions // 2] = 0.0
    elif ties == "zero spread":
        mean = mean.round()
        spread[:] = 0.0
    elif ties == "equal columns":
        mean[:, -1], spread[:, -1], noise[:, -1] = mean[:, 0], spread[:, 0], noise[:, 0]
    mask = rng.random((n, n_actions)) < 0.8 if masked else np.ones((n, n_actions), dtype=bool)
    mask[np.arange(n), rng.integers(0, n_actions, n)] = True
    full = winner_frequencies(mean[:, None, :] + spread[:, None, :] * noise, mask)
    np.testing.assert_array_equal(independent_winner_frequencies(mean, spread, noise, mask), full)


def test_contender_shares_hand_computed() -> None:
    """Three actions, draws eps = (0, 0, 0), (1, -1, 0), (-1, 1, 2), (2, 0, -2) shared by 512
    rows (512 x 4 draws reach the contender path; each row has its own means and spreads).

    Row 0: means (0, 0, 0.5), spreads (1, 1, 0.1): scores (0, 0, 0.5), (1, -1, 0.5),
    (-1, 1, 0.7), (2, 0, 0.3) -> winners 2, 0, 1, 0: shares (1/2, 1/4, 1/4).
    Row 1: means (0, 3, 0), spreads (1, 0.5, 1): action 1's lowest 3 - 0.5 = 2.5 beats the
    others' highest 2 -> a clear row, (0, 1, 0).
    Other rows: row 0 again."""
    noise = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0], [-1.0, 1.0, 2.0], [2.0, 0.0, -2.0]])
    mean = np.tile([0.0, 0.0, 0.5], (512, 1))
    spread = np.tile([1.0, 1.0, 0.1], (512, 1))
    mean[1], spread[1] = [0.0, 3.0, 0.0], [1.0, 0.5, 1.0]
    expected = np.tile([0.5, 0.25, 0.25], (512, 1))
    expected[1] = [0.0, 1.0, 0.0]
    shares = independent_winner_frequencies(mean, spread, noise, np.ones((512, 3), dtype=bool))
    np.testing.assert_array_equal(shares, expected)


def test_contender_counts_fit_a_byte() -> None:
    """The contender path counts each row's contenders and ranks them in bytes
    (``np.uint8``, radix-sorted), which holds only while it is taken for at most 255
    actions."""
    assert np.iinfo(np.uint8).max >= SHORT_ACTION_AXIS


def test_contender_path_at_the_widest_action_axis() -> None:
    """32 actions (the most the contender path takes) with every action a contender in the
    first rows (equal means: each action's highest draw reaches every lowest draw): byte
    counts and ranks up to 32 give the full comparison's shares."""
    rng = np.random.default_rng(7)
    n, n_actions = 200, 32
    mean = rng.standard_normal((n, n_actions)) * np.linspace(0.0, 3.0, n)[:, None]
    spread = rng.random((n, n_actions))
    noise = rng.standard_normal((100, n_actions))
    mask = np.ones((n, n_actions), dtype=bool)
    full = winner_frequencies(mean[:, None, :] + spread[:, None, :] * noise, mask)
    low = (mean + spread * noise.min(axis=0))[0]
    high = (mean + spread * noise.max(axis=0))[0]
    assert (high >= low.max()).all()  # row 0: all 32 actions are contenders
    np.testing.assert_array_equal(independent_winner_frequencies(mean, spread, noise, mask), full)
