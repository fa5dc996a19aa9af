"""bench.ts_gap's diagnostic agents: what each changes, checked on a few rows (no rewards)."""

from __future__ import annotations

import numpy as np

from bench.environments import environment_specs
from bench.ts_gap import OURS, build


def test_independent_rows_give_identical_rows_their_own_draws() -> None:
    """Two copies of one context share every draw by default (common random numbers, the same
    choice probabilities) and get different ones under the diagnostic; rows sum to 1 both ways."""
    spec = environment_specs(0.0)["A"]
    X = np.repeat(np.random.default_rng(0).standard_normal((1, spec.n_context)), 2, axis=0)
    shared = build("linear_ts bench floor 0", spec, 0).policy  # type: ignore[attr-defined]
    own = build("linear_ts bench floor 0 indep. rows", spec, 0).policy  # type: ignore[attr-defined]
    for policy in (shared, own):
        policy.update(X, np.array([0, 1]), np.array([1.0, 0.0]))
    mask = np.ones((2, spec.n_actions), dtype=bool)
    p_shared = shared._probabilities(X, mask)
    p_own = own._probabilities(X, mask)
    np.testing.assert_array_equal(p_shared[0], p_shared[1])
    assert not np.array_equal(p_own[0], p_own[1])
    np.testing.assert_allclose(p_own.sum(axis=1), 1.0)
    np.testing.assert_allclose(p_shared.sum(axis=1), 1.0)


def test_labels_set_what_they_say() -> None:
    spec = environment_specs(0.0)["E"]
    bench = build("linear_ts bench", spec, 0).policy  # type: ignore[attr-defined]
    floor0 = build("linear_ts bench floor 0", spec, 0).policy  # type: ignore[attr-defined]
    assert (bench.exploration_floor, floor0.exploration_floor) == (0.01, 0.0)
    assert (bench.scale, bench.noise_variance) == (0.5, 0.25)
    assert (floor0.scale, floor0.noise_variance) == (0.5, 0.25)
    assert set(OURS) >= {"linear_ts", "linear_ts floor 0", "linear_ts bench floor 0"}
