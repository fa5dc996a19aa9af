"""The always-valid evidence that a factor's levels differ: against an independent Gaussian
density computation, its invariances, and its false-alarm rate over many looks."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from bandit.evidence import contrast_basis, contrast_log_evidence, evidence_threshold

#: Three factors: one of one level (nothing to compare), one of three, one of two.
SIZES = (1, 3, 2)


def test_the_basis_spans_the_within_factor_contrasts() -> None:
    basis = contrast_basis(SIZES)
    assert basis.shape == (6, 3)  # 6 levels, less one per factor of two or more levels, and
    # the one-level factor's level has nothing to contrast
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(basis[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(basis[1:4].sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(basis[4:6].sum(axis=0), 0.0, atol=1e-12)


def test_the_evidence_against_two_gaussian_densities() -> None:
    """With a Helmert basis written out by hand (another orthonormal basis of the same
    contrasts), ``log N(y; 0, V + rho^2 I) - log N(y; 0, V)`` from scipy."""
    helmert = np.zeros((6, 3))
    helmert[1:4, 0] = np.array([1.0, -1.0, 0.0]) / math.sqrt(2)
    helmert[1:4, 1] = np.array([1.0, 1.0, -2.0]) / math.sqrt(6)
    helmert[4:6, 2] = np.array([1.0, -1.0]) / math.sqrt(2)
    rng = np.random.default_rng(0)
    estimate = rng.normal(0.0, 0.05, 6)
    root = rng.normal(0.0, 0.02, (6, 6))
    covariance = root @ root.T + 1e-4 * np.eye(6)
    y = helmert.T @ estimate
    V = helmert.T @ covariance @ helmert
    rho = 0.03
    expected = multivariate_normal(np.zeros(3), V + rho**2 * np.eye(3)).logpdf(
        y
    ) - multivariate_normal(np.zeros(3), V).logpdf(y)
    assert math.isclose(contrast_log_evidence(estimate, covariance, SIZES, rho), expected)


def test_nothing_to_compare_is_no_evidence() -> None:
    assert contrast_log_evidence(np.array([0.5, -2.0]), np.eye(2), (1, 1), 0.1) == 0.0
    assert contrast_log_evidence(np.array([0.5, -2.0]), np.zeros((2, 2)), (2,), 0.1) == 0.0


@settings(max_examples=60, deadline=None)
@given(
    shifts=st.tuples(*(st.floats(-5, 5) for _ in range(3))),
    seed=st.integers(0, 2**16),
)
def test_a_shift_common_to_a_factor_changes_no_evidence(
    shifts: tuple[float, float, float], seed: int
) -> None:
    """Every action holds one level of each factor, so a constant added to all of a factor's
    levels changes no choice, and the test ignores it."""
    rng = np.random.default_rng(seed)
    estimate = rng.normal(0.0, 0.1, 6)
    root = rng.normal(0.0, 0.05, (6, 6))
    covariance = root @ root.T + 1e-3 * np.eye(6)
    shifted = estimate + np.repeat(np.array(shifts), SIZES)
    assert math.isclose(
        contrast_log_evidence(estimate, covariance, SIZES, 0.05),
        contrast_log_evidence(shifted, covariance, SIZES, 0.05),
        rel_tol=1e-7,
        abs_tol=1e-7,
    )


def test_looking_after_every_batch_keeps_the_false_alarm_rate() -> None:
    """Under no difference, the three contrasts after ``t`` batches are the means of ``t``
    unit-noise increments (covariance ``I / t``). Looking after each of 40 batches, the share
    of 500 paths that ever reach ``log(1 / alpha)`` stays below ``alpha = 0.05``; with a
    true difference of 0.5 per contrast nearly every path reaches it."""
    rng = np.random.default_rng(1)
    paths, looks, alpha = 500, 40, 0.05
    bar = evidence_threshold(alpha, 1)
    # The levels each contrast stands for: factor 2's (1, -1, 0)/sqrt2 and (1, 1, -2)/sqrt6,
    # factor 3's (1, -1)/sqrt2.
    to_levels = np.zeros((3, 6))
    to_levels[0, 1:4] = np.array([1.0, -1.0, 0.0]) / math.sqrt(2)
    to_levels[1, 1:4] = np.array([1.0, 1.0, -2.0]) / math.sqrt(6)
    to_levels[2, 4:6] = np.array([1.0, -1.0]) / math.sqrt(2)

    def alarm_rate(delta: float) -> float:
        means = rng.normal(delta, 1.0, (paths, looks, 3)).cumsum(axis=1)
        means /= np.arange(1, looks + 1)[None, :, None]
        fired = np.zeros(paths, dtype=bool)
        for t in range(looks):
            covariance = to_levels.T @ to_levels / (t + 1)
            for path in np.flatnonzero(~fired):
                levels = means[path, t] @ to_levels
                fired[path] = contrast_log_evidence(levels, covariance, SIZES, 0.5) >= bar
        return float(fired.mean())

    assert alarm_rate(0.0) < alpha
    assert alarm_rate(0.5) > 0.95


def test_the_threshold_splits_the_level_over_the_tests() -> None:
    assert math.isclose(evidence_threshold(0.01, 1), math.log(100))
    assert math.isclose(evidence_threshold(0.01, 2), math.log(200))
