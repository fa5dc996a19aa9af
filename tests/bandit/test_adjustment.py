"""Regression adjustment and the post-stratified difference, by hand and against identities."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import BanditValueError
from bandit.adjustment import cuped_lift, regression_adjusted, stratified_difference
from bandit.lift import welch_lift


def test_regression_adjustment_by_hand() -> None:
    """y = [1, 3, 5, 9], b = [0, 1, 2, 3]: centred b = [-1.5, -0.5, 0.5, 1.5], centred
    y = [-3.5, -1.5, 0.5, 4.5], theta = 13 / 5 = 2.6, y - 2.6 (b - 1.5) = [4.9, 4.3, 3.7, 5.1]
    (mean 4.5, as y's)."""
    adjusted = regression_adjusted([1.0, 3.0, 5.0, 9.0], [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(adjusted, [4.9, 4.3, 3.7, 5.1], rtol=0, atol=1e-14)


def test_regression_adjustment_within_cohorts_by_hand() -> None:
    """Cohort a: y = [1, 3], b = [0, 1]; cohort b: y = [10, 14], b = [5, 7]. Within cohorts
    b - mean = [-0.5, 0.5, -1, 1] and y - mean = [-1, 1, -2, 2]: theta = 5 / 2.5 = 2, so every
    row becomes its cohort's mean: [2, 2, 12, 12]."""
    adjusted = regression_adjusted(
        [1.0, 3.0, 10.0, 14.0], [0.0, 1.0, 5.0, 7.0], ["a", "a", "b", "b"]
    )
    np.testing.assert_allclose(adjusted, [2.0, 2.0, 12.0, 12.0], rtol=0, atol=1e-13)


def test_arms_get_their_covariance_adjusted_means_by_hand() -> None:
    """Arm a: b = [0, 2], y = [1, 5]; arm b: b = [4, 6], y = [12, 16] (y = 2 b + 1 in a, 2 b + 4
    in b). Within arms the slope is exactly 2; around the pooled mean b = 3 the adjusted
    values are y - 2 (b - 3) = [7, 7, 10, 10]: the arms differ by 3, as they do at any equal
    baseline. Without arms the pooled slope (2.6) would mix the arms' difference into it."""
    values, baselines, arms = [1.0, 5.0, 12.0, 16.0], [0.0, 2.0, 4.0, 6.0], ["a", "a", "b", "b"]
    adjusted = regression_adjusted(values, baselines, arms=arms)
    np.testing.assert_allclose(adjusted, [7.0, 7.0, 10.0, 10.0], rtol=0, atol=1e-13)
    pooled = regression_adjusted(values, baselines)
    assert pooled[2:].mean() - pooled[:2].mean() != pytest.approx(3.0)


def test_regression_adjustment_matches_least_squares_and_keeps_cohort_means() -> None:
    rng = np.random.default_rng(0)
    n = 400
    cohorts = rng.integers(0, 3, n)
    baselines = rng.normal(size=(n, 2)) + cohorts[:, None]
    values = baselines @ [2.0, -1.0] + 3.0 * cohorts + rng.normal(size=n)
    adjusted = regression_adjusted(values, baselines, cohorts)
    # Independent recomputation: least squares on cohort dummies and the baselines.
    design = np.column_stack([np.eye(3)[cohorts], baselines])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    expected = (
        values
        - (baselines - np.array([baselines[cohorts == c].mean(0) for c in cohorts]))
        @ (coefficients[3:])
    )
    np.testing.assert_allclose(adjusted, expected, atol=1e-10)
    for cohort in range(3):
        rows = cohorts == cohort
        assert adjusted[rows].mean() == pytest.approx(values[rows].mean(), abs=1e-12)
    within = np.array([values[cohorts == c].mean() for c in cohorts])
    assert (adjusted - within).var() < 0.2 * (values - within).var()


def test_regression_adjustment_edge_cases() -> None:
    values = np.array([1.0, 2.0, 4.0])
    np.testing.assert_array_equal(regression_adjusted(values, np.zeros((3, 0))), values)
    np.testing.assert_allclose(regression_adjusted(values, [7.0, 7.0, 7.0]), values)
    with pytest.raises(BanditValueError, match="rows"):
        regression_adjusted(values, [1.0, 2.0])
    with pytest.raises(BanditValueError, match="finite"):
        regression_adjusted(values, [1.0, np.nan, 2.0])


def test_stratified_difference_by_hand() -> None:
    """Stratum 0: treatment [1, 3] (mean 2, s2 2), control [0, 2, 4] (mean 2, s2 4); stratum 1:
    treatment [4, 6, 8] (mean 6, s2 4), control [3, 5] (mean 4, s2 2); stratum 2 has one
    treatment row and no control, so it is left out. Weights 2/5, 3/5:
    d = 0.4 (2 - 2) + 0.6 (6 - 4) = 1.2; se2 = 0.16 (2/2 + 4/3) + 0.36 (4/3 + 2/2) = 1.21333."""
    result = stratified_difference(
        [1, 3, 4, 6, 8, 5], [0, 0, 1, 1, 1, 2], [0, 2, 4, 3, 5], [0, 0, 0, 1, 1]
    )
    assert result is not None
    assert result.difference == pytest.approx(1.2, abs=1e-14)
    assert result.stderr == pytest.approx(np.sqrt(0.52 * 7 / 3), abs=1e-14)
    assert (result.mean_treatment, result.mean_control) == pytest.approx((4.4, 3.2), abs=1e-14)
    assert (result.n_treatment, result.n_control, result.strata) == (5, 5, 2)
    assert result.ci_low == pytest.approx(1.2 - 1.959963984540054 * result.stderr, abs=1e-12)


def test_one_stratum_is_welchs_difference() -> None:
    rng = np.random.default_rng(1)
    treatment, control = rng.normal(1.0, 2.0, 50), rng.normal(0.0, 1.0, 70)
    ours = stratified_difference(treatment, np.zeros(50), control, np.zeros(70))
    welch = welch_lift(treatment, control)
    assert ours is not None
    assert ours.difference == pytest.approx(welch.difference, abs=1e-12)
    assert ours.stderr == pytest.approx(welch.stderr, abs=1e-12)


def test_inverse_propensity_weights_by_hand() -> None:
    """Treatment [2, 4, 9] with propensities [0.5, 0.5, 0.25] (weights 2, 2, 4): Hajek mean
    (4 + 8 + 36) / 8 = 6; v = 3/2 (4 16 + 4 4 + 16 9) / 64 = 3/2 x 224 / 64 = 5.25. Control
    [1, 3] (mean 2, s2 2, s2/n 1). d = 4, se = sqrt(6.25) = 2.5."""
    result = stratified_difference(
        [2.0, 4.0, 9.0], [0, 0, 0], [1.0, 3.0], [0, 0], treatment_weights=[2.0, 2.0, 4.0]
    )
    assert result is not None
    assert (result.difference, result.stderr) == pytest.approx((4.0, 2.5), abs=1e-14)
    equal = stratified_difference([2.0, 4.0, 9.0], [0, 0, 0], [1.0, 3.0], [0, 0])
    same = stratified_difference(
        [2.0, 4.0, 9.0], [0, 0, 0], [1.0, 3.0], [0, 0], treatment_weights=[7.0, 7.0, 7.0]
    )
    assert equal is not None
    assert same is not None
    assert (same.difference, same.stderr) == pytest.approx((equal.difference, equal.stderr))
    with pytest.raises(BanditValueError, match="positive"):
        stratified_difference([1.0, 2.0], [0, 0], [1.0, 2.0], [0, 0], treatment_weights=[1, 0])


def test_inverse_propensity_weights_undo_a_context_dependent_assignment() -> None:
    """Customers with x = 1 get the treatment with probability 0.9, x = 0 with 0.1; y = 10 x
    + 1 under treatment. The plain mean of treated rows is about 9.2, the weighted one the
    population's 6 (half the customers have x = 1), so against a control of mean 5 (10 x) the
    difference is about +1, as it is for every customer."""
    rng = np.random.default_rng(3)
    x = rng.random(40_000) < 0.5
    p = np.where(x, 0.9, 0.1)
    treated = rng.random(x.size) < p
    y = 10.0 * x[treated] + 1.0
    control = 10.0 * (rng.random(4000) < 0.5)
    plain = stratified_difference(y, np.zeros(y.size), control, np.zeros(control.size))
    weighted = stratified_difference(
        y, np.zeros(y.size), control, np.zeros(control.size), treatment_weights=1 / p[treated]
    )
    assert plain is not None
    assert weighted is not None
    assert plain.difference > 3.0
    assert weighted.ci_low < 1.0 < weighted.ci_high


def test_no_comparable_stratum_gives_none() -> None:
    assert stratified_difference([1.0, 2.0], [0, 0], [1.0], [0]) is None
    assert stratified_difference([1.0, 2.0], [0, 0], [1.0, 3.0], [1, 1]) is None


def test_cuped_lift_by_hand() -> None:
    """Holdout: b = [0, 2], y = [1, 5]; treatment: b = [4, 6], y = [12, 16]. Raw: difference
    14 - 3 = 11, each group's variance 8, stderr sqrt(8/2 + 8/2) = sqrt(8). Within groups
    y = 2 b + const, so the slope is 2 and the adjusted values y - 2 (b - 3) are [7, 7] and
    [10, 10]: the adjusted difference is 3 with stderr 0 (the interval collapses to 3)."""
    values = np.array([1.0, 5.0, 12.0, 16.0])
    holdout = np.array([True, True, False, False])
    baselines = np.array([0.0, 2.0, 4.0, 6.0])
    raw = welch_lift(values[~holdout], values[holdout])
    assert (raw.difference, raw.stderr) == (11.0, pytest.approx(np.sqrt(8.0), rel=1e-14))
    adjusted = cuped_lift(values, holdout, baselines)
    assert adjusted.difference == pytest.approx(3.0, abs=1e-13)
    assert adjusted.stderr == pytest.approx(0.0, abs=1e-13)
    assert adjusted.diff_ci == pytest.approx((3.0, 3.0), abs=1e-12)
    assert adjusted.mean_holdout == pytest.approx(7.0, abs=1e-13)


def test_cuped_difference_is_the_ancova_coefficient() -> None:
    """With the slope fitted within groups, the adjusted difference equals the coefficient of
    the treatment dummy in the least-squares fit y ~ 1 + treated + b1 + b2 (analysis of
    covariance), recomputed here independently."""
    rng = np.random.default_rng(7)
    n = 500
    baselines = rng.gamma(2.0, 10.0, size=(n, 2))
    holdout = rng.random(n) < 0.2
    values = baselines @ [0.8, -0.3] + 2.0 * ~holdout + rng.normal(0.0, 4.0, n)
    adjusted = cuped_lift(values, holdout, baselines)
    design = np.column_stack([np.ones(n), ~holdout, baselines])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    assert adjusted.difference == pytest.approx(coefficients[1], rel=1e-10)


def test_cuped_narrows_the_interval_by_the_share_the_covariate_explains() -> None:
    """y = b + e with var(b) = 9, var(e) = 1: the covariate explains rho^2 = 0.9 of the
    variance, so the adjusted stderr is about sqrt(1 - 0.9) = 0.316 of the raw one (seeded,
    n = 20,000; the sampling error of that ratio is under 1%)."""
    rng = np.random.default_rng(3)
    n = 20_000
    baselines = rng.normal(0.0, 3.0, n)
    holdout = rng.random(n) < 0.5
    values = baselines + rng.normal(0.0, 1.0, n) + 0.5 * ~holdout
    raw = welch_lift(values[~holdout], values[holdout])
    adjusted = cuped_lift(values, holdout, baselines)
    assert adjusted.stderr / raw.stderr == pytest.approx(np.sqrt(0.1), rel=0.03)
    assert adjusted.diff_ci[0] < 0.5 < adjusted.diff_ci[1]


def test_cuped_lift_refuses_a_holdout_that_is_not_a_mask() -> None:
    with pytest.raises(BanditValueError, match="holdout"):
        cuped_lift([1.0, 2.0, 3.0, 4.0], [0, 0, 1, 1], [1.0, 2.0, 3.0, 4.0])
