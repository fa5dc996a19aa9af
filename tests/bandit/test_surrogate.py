"""Reference tests for the surrogate index: hand-computed fits, OLS at ridge 0, statistics that
add up, and a synthetic world with a known long-term effect (seeded, tolerances fixed)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import BanditValueError
from bandit.surrogate import SurrogateIndex, SurrogateStats, fit_surrogate_index

S3 = np.array([[0.0], [1.0], [2.0]])
Y3 = np.array([1.0, 2.0, 4.0])


def test_hand_computed_ordinary_least_squares() -> None:
    """ridge 0, s = [0, 1, 2], y = [1, 2, 4]: slope = sum (s - 1)(y - 7/3) / 2 = 3/2,
    intercept 7/3 - 3/2 = 5/6; residuals [1/6, -1/3, 1/6], RSS 1/6, s2 = RSS / (3 - 2) = 1/6;
    Z^T Z = [[3, 3], [3, 5]], inverse [[5, -3], [-3, 3]] / 6,
    Cov = s2 (Z^T Z)^-1 = [[5, -3], [-3, 3]] / 36.
    """
    index = fit_surrogate_index(SurrogateStats.from_units(S3, Y3), ridge=0.0)
    np.testing.assert_allclose(index.coef, [5 / 6, 1.5], rtol=1e-14)
    assert index.residual_variance == pytest.approx(1 / 6, rel=1e-13)
    np.testing.assert_allclose(index.coef_cov, np.array([[5, -3], [-3, 3]]) / 36, rtol=1e-13)


def test_hand_computed_ridge_and_mean_index() -> None:
    """ridge 1 on the slope only: A = [[3, 3], [3, 6]], A^-1 = [[6, -3], [-3, 3]] / 9,
    m = [7, 10]: beta = [(42 - 30) / 9, (-21 + 30) / 9] = [4/3, 1].
    A^-1 G = [[1, 1/3], [0, 2/3]]: df = 5/3. Residuals [-1/3, -1/3, 2/3]: RSS = 2/3,
    s2 = (2/3) / (3 - 5/3) = 1/2. A^-1 G A^-1 = [[5, -2], [-2, 2]] / 9, Cov = that / 2.
    Fresh group s = [1, 3]: zbar = [1, 2], index 4/3 + 2 = 10/3; model variance
    zbar^T Cov zbar = (5 - 8 + 8) / 18 = 5/18; indices 7/3 and 13/3, sample variance 2,
    over 2 units: 1. Standard error sqrt(1 + 5/18) = sqrt(23/18).
    """
    index = fit_surrogate_index(SurrogateStats.from_units(S3, Y3), ridge=1.0)
    np.testing.assert_allclose(index.coef, [4 / 3, 1.0], rtol=1e-14)
    assert index.residual_variance == pytest.approx(0.5, rel=1e-13)
    np.testing.assert_allclose(index.coef_cov, np.array([[5, -2], [-2, 2]]) / 18, rtol=1e-13)
    estimate = index.mean_index([[1.0], [3.0]])
    assert estimate.estimate == pytest.approx(10 / 3, rel=1e-14)
    assert estimate.model_stderr == pytest.approx(math.sqrt(5 / 18), rel=1e-13)
    assert estimate.sampling_stderr == pytest.approx(1.0, rel=1e-14)
    assert estimate.stderr == pytest.approx(math.sqrt(23 / 18), rel=1e-13)
    half = 1.959963984540054 * math.sqrt(23 / 18)
    np.testing.assert_allclose(estimate.ci, (10 / 3 - half, 10 / 3 + half), rtol=1e-12)
    np.testing.assert_allclose(index.predict([[1.0], [3.0]]), [7 / 3, 13 / 3], rtol=1e-14)


def test_ridge_zero_equals_lstsq_with_covariates() -> None:
    rng = np.random.default_rng(0)
    S, X = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    y = rng.standard_normal(40)
    index = fit_surrogate_index(SurrogateStats.from_units(S, y, X), ridge=0.0)
    Z = np.column_stack([np.ones(40), S, X])
    coef, *_ = np.linalg.lstsq(Z, y, rcond=None)
    residual = y - Z @ coef
    s2 = residual @ residual / (40 - 6)
    np.testing.assert_allclose(index.coef, coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(index.coef_cov, s2 * np.linalg.inv(Z.T @ Z), rtol=1e-9)
    np.testing.assert_allclose(index.predict(S[:5], X[:5]), Z[:5] @ coef, rtol=1e-10)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(8, 60),
    cuts=st.lists(st.integers(0, 60), max_size=4),
    covariates=st.integers(0, 2),
    ridge=st.sampled_from([0.0, 0.1, 3.0]),
)
def test_batches_add_up_to_the_fit_on_all_units(
    seed: int, n: int, cuts: list[int], covariates: int, ridge: float
) -> None:
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((n, 2))
    X = rng.standard_normal((n, covariates)) if covariates else None
    y = S @ [1.0, -2.0] + rng.standard_normal(n)
    bounds = sorted({0, n, *(min(c, n) for c in cuts)})
    stats = SurrogateStats.empty(2, covariates)
    for start, stop in itertools.pairwise(bounds):
        part = None if X is None else X[start:stop]
        stats = stats + SurrogateStats.from_units(S[start:stop], y[start:stop], part)
    whole = SurrogateStats.from_units(S, y, X)
    assert stats.n == whole.n == n
    np.testing.assert_allclose(stats.gram, whole.gram, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.moment, whole.moment, rtol=1e-12, atol=1e-12)
    assert stats.sum_squares == pytest.approx(whole.sum_squares, rel=1e-12)
    batched, at_once = (
        fit_surrogate_index(stats, ridge=ridge),
        fit_surrogate_index(whole, ridge=ridge),
    )
    np.testing.assert_allclose(batched.coef, at_once.coef, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(batched.coef_cov, at_once.coef_cov, rtol=1e-8, atol=1e-12)
    assert batched.residual_variance == pytest.approx(at_once.residual_variance, rel=1e-8)


def world(rng: np.random.Generator, n: int, shift: np.ndarray) -> tuple[np.ndarray, ...]:
    """Covariate x; surrogates s = 0.5 x + e + shift (e ~ N(0, I)); long-term outcome
    y = 2 + 1.5 s1 - 0.5 s2 + 0.3 x + N(0, 1). The treatment moves only the surrogates, so
    surrogacy holds and the long-term effect of ``shift`` is 1.5 shift1 - 0.5 shift2."""
    x = rng.standard_normal((n, 1))
    s = 0.5 * x + rng.standard_normal((n, 2)) + shift
    y = 2.0 + s @ [1.5, -0.5] + 0.3 * x[:, 0] + rng.standard_normal(n)
    return s, y, x


def test_synthetic_coefficients_and_long_term_effect() -> None:
    """20,000 matured units in 4 batches: coefficients within 0.05 (their standard errors are
    about 0.007). Fresh groups of 5,000: treatment shifts the surrogates by (0.4, -0.2), a true
    long-term effect of 1.5 * 0.4 + 0.5 * 0.2 = 0.7; the index effect is within 0.1 of it (its
    standard error is about 0.03) and its 95% interval covers it; so does the treated group's
    mean index cover the treated population's mean outcome, 2 + 0.7 = 2.7."""
    rng = np.random.default_rng(2019)
    stats = SurrogateStats.empty(2, 1)
    for _ in range(4):
        s, y, x = world(rng, 5_000, np.zeros(2))
        stats = stats + SurrogateStats.from_units(s, y, x)
    index = fit_surrogate_index(stats)
    np.testing.assert_allclose(index.coef, [2.0, 1.5, -0.5, 0.3], atol=0.05)
    assert index.residual_variance == pytest.approx(1.0, abs=0.05)
    treated_s, treated_y, treated_x = world(rng, 5_000, np.array([0.4, -0.2]))
    control_s, _, control_x = world(rng, 5_000, np.zeros(2))
    effect = index.effect(treated_s, control_s, treated_x, control_x)
    assert abs(effect.estimate - 0.7) < 0.1, effect
    assert effect.ci[0] < 0.7 < effect.ci[1], effect
    assert 0.02 < effect.stderr < 0.05, effect
    treated = index.mean_index(treated_s, treated_x)
    assert treated.ci[0] < 2.7 < treated.ci[1], treated
    assert abs(treated.estimate - treated_y.mean()) < 3 * treated.stderr


def test_effect_interval_coverage() -> None:
    """400 seeded replications of a small study (300 matured units, fresh groups of 100):
    the 90% interval of the index effect should cover the true 0.7 about 90% of the time;
    with 400 replications the binomial standard error is 1.5 points, so [0.85, 0.95]."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(400):
        index = fit_surrogate_index(SurrogateStats.from_units(*world(rng, 300, np.zeros(2))))
        treated_s, _, treated_x = world(rng, 100, np.array([0.4, -0.2]))
        control_s, _, control_x = world(rng, 100, np.zeros(2))
        effect = index.effect(treated_s, control_s, treated_x, control_x, confidence=0.9)
        covered += effect.ci[0] < 0.7 < effect.ci[1]
    assert 0.85 <= covered / 400 <= 0.95, covered


def test_stats_round_trip_and_layout_checks() -> None:
    stats = SurrogateStats.from_units(S3, Y3)
    again = SurrogateStats.from_arrays(stats.to_arrays())
    assert (again.n, again.n_surrogates, again.n_covariates) == (3, 1, 0)
    np.testing.assert_array_equal(again.gram, stats.gram)
    np.testing.assert_array_equal(again.moment, stats.moment)
    assert again.sum_squares == stats.sum_squares
    with pytest.raises(BanditValueError) as error:
        _ = stats + SurrogateStats.empty(2)
    assert error.value.field == "stats"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: SurrogateStats.from_units(S3, Y3[:2]), "outcomes"),
        (lambda: SurrogateStats.from_units(S3[:, 0], Y3), "surrogates"),
        (lambda: SurrogateStats.from_units(S3, Y3, np.ones((2, 1))), "covariates"),
        (lambda: SurrogateStats.from_units(np.zeros((3, 0)), Y3), "n_surrogates"),
        (lambda: fit_surrogate_index(SurrogateStats.empty(1)), "stats"),
        (
            lambda: fit_surrogate_index(SurrogateStats.from_units(S3[:2], Y3[:2]), ridge=0.0),
            "stats",
        ),
        (lambda: fit_surrogate_index(SurrogateStats.from_units(S3, Y3), ridge=-1.0), "ridge"),
        (lambda: fit_surrogate_index(object()), "stats"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_names_the_field(call, field: str) -> None:
    with pytest.raises(BanditValueError) as error:
        call()
    assert error.value.field == field


def fitted() -> SurrogateIndex:
    rng = np.random.default_rng(0)
    return fit_surrogate_index(SurrogateStats.from_units(*world(rng, 50, np.zeros(2))))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda index: index.predict(np.zeros((2, 2))), "covariates"),
        (lambda index: index.predict(np.zeros((2, 3)), np.zeros((2, 1))), "surrogates"),
        (lambda index: index.mean_index(np.zeros((1, 2)), np.zeros((1, 1))), "surrogates"),
        (
            lambda index: index.mean_index(np.zeros((2, 2)), np.zeros((2, 1)), confidence=1.0),
            "confidence",
        ),
    ],
)
def test_bad_fresh_units_name_the_field(call, field: str) -> None:
    with pytest.raises(BanditValueError) as error:
        call(fitted())
    assert error.value.field == field
