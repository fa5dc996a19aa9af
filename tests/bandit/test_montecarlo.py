"""The Monte Carlo choice probabilities: the contender shortcut equals the full comparison."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit.montecarlo import independent_winner_frequencies, winner_frequencies


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
