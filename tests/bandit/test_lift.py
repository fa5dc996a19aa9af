"""Lift: Welch against scipy, the delta method recomputed, the always-valid interval under
repeated peeking, and streaming moments against numpy."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from bandit._validation import BanditValueError
from bandit.lift import (
    DEFAULT_PLANNED_N,
    RunningMoments,
    always_valid_interval,
    normal_mixture_radius,
    relative_always_valid_interval,
    tuned_mixing_variance,
    welch_lift,
    welch_lift_from_moments,
)


def test_welch_lift_by_hand() -> None:
    """treatment [2, 4, 6]: mean 4, s² 4; holdout [1, 2, 3]: mean 2, s² 1.

    difference 2; v_t = 4/3, v_h = 1/3, stderr² = 5/3;
    df = (5/3)² / ((4/3)²/2 + (1/3)²/2) = (25/9) / (17/18) = 50/17;
    relative = 4/2 - 1 = 1; se(R)² = v_t/m_h² + m_t² v_h/m_h⁴ = (4/3)/4 + 16 (1/3)/16 = 2/3.
    """
    lift = welch_lift([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert (lift.mean_treatment, lift.mean_holdout) == (4.0, 2.0)
    assert (lift.n_treatment, lift.n_holdout, lift.difference) == (3, 3, 2.0)
    assert lift.stderr == pytest.approx(math.sqrt(5 / 3), rel=1e-15)
    assert lift.df == pytest.approx(50 / 17, rel=1e-14)
    half = stats.t.ppf(0.975, 50 / 17) * math.sqrt(5 / 3)
    assert lift.diff_ci == pytest.approx((2 - half, 2 + half), rel=1e-12)
    assert lift.relative_lift == 1.0
    rel_half = stats.norm.ppf(0.975) * math.sqrt(2 / 3)
    assert lift.relative_ci == pytest.approx((1 - rel_half, 1 + rel_half), rel=1e-14)
    assert lift.p_value == pytest.approx(2 * stats.t.sf(2 / math.sqrt(5 / 3), 50 / 17), rel=1e-12)


@pytest.mark.parametrize(("n_t", "n_h", "seed"), [(5, 8, 0), (40, 25, 1), (300, 1000, 2)])
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_welch_matches_scipy_ttest_ind(n_t: int, n_h: int, seed: int, confidence: float) -> None:
    rng = np.random.default_rng(seed)
    treatment = rng.gamma(2.0, 3.0, size=n_t) + 0.5
    holdout = rng.gamma(1.5, 3.0, size=n_h)
    lift = welch_lift(treatment, holdout, confidence)
    ref = stats.ttest_ind(treatment, holdout, equal_var=False)
    ci = ref.confidence_interval(confidence_level=confidence)
    assert lift.diff_ci == pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-13)
    assert lift.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert lift.df == pytest.approx(ref.df, rel=1e-12)
    assert lift.difference / lift.stderr == pytest.approx(ref.statistic, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_relative_lift_delta_method_recomputed(seed: int) -> None:
    """R = g(m_t, m_h) = m_t / m_h - 1 with gradient (1/m_h, -m_t/m_h²) and covariance
    diag(s_t²/n_t, s_h²/n_h): se(R) = √(∇gᵀ Σ ∇g)."""
    rng = np.random.default_rng(seed)
    treatment = rng.poisson(3.3, size=200).astype(float)
    holdout = rng.poisson(3.0, size=150).astype(float)
    m_t, m_h = treatment.mean(), holdout.mean()
    gradient = np.array([1 / m_h, -m_t / m_h**2])
    covariance = np.diag([treatment.var(ddof=1) / 200, holdout.var(ddof=1) / 150])
    se = math.sqrt(gradient @ covariance @ gradient)
    half = stats.norm.ppf(0.95) * se
    lift = welch_lift(treatment, holdout, 0.9)
    assert lift.relative_lift == pytest.approx(m_t / m_h - 1, rel=1e-13)
    assert lift.relative_ci == pytest.approx(
        (m_t / m_h - 1 - half, m_t / m_h - 1 + half), rel=1e-12
    )


def test_relative_lift_is_nan_when_holdout_mean_is_zero() -> None:
    lift = welch_lift([0.0, 1.0, 2.0], [0.0, 1.0, -1.0])
    assert math.isnan(lift.relative_lift)
    assert all(math.isnan(x) for x in lift.relative_ci)
    assert lift.difference == 1.0


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy's, not ours
@pytest.mark.parametrize(
    ("treatment", "holdout"),
    [([1.0, 1.0, 1.0], [1.0, 1.0]), ([2.0, 2.0, 2.0], [1.0, 1.0]), ([2.0, 2.0], [1.0, 3.0])],
)
def test_constant_samples_follow_scipy(treatment: list[float], holdout: list[float]) -> None:
    lift = welch_lift(treatment, holdout)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = stats.ttest_ind(treatment, holdout, equal_var=False)
        ci = ref.confidence_interval()
    np.testing.assert_allclose(lift.p_value, ref.pvalue, rtol=1e-12)
    np.testing.assert_allclose(lift.diff_ci, (ci.low, ci.high), rtol=1e-12)
    assert math.isfinite(lift.always_valid_ci[0])


def mixture_likelihood_ratio(estimate: float, theta: float, variance: float, tau2: float) -> float:
    """mSPRT statistic by numerical integration: ∫ φ(D̂; θ', V) φ(θ'; θ, τ²) dθ' / φ(D̂; θ, V)."""
    sd, tau = math.sqrt(variance), math.sqrt(tau2)
    numerator, _ = integrate.quad(
        lambda t: stats.norm.pdf(estimate, t, sd) * stats.norm.pdf(t, theta, tau),
        theta - 40 * tau,
        theta + 40 * tau,
        points=[estimate],
        epsabs=0,
        epsrel=1e-12,
        limit=200,
    )
    return numerator / stats.norm.pdf(estimate, theta, sd)


@pytest.mark.parametrize(("variance", "tau2", "alpha"), [(0.04, 0.01, 0.05), (1.0, 8.0, 0.1)])
def test_radius_is_where_the_mixture_sprt_reaches_one_over_alpha(
    variance: float, tau2: float, alpha: float
) -> None:
    """At θ = D̂ ± radius the normal-mixture likelihood ratio (Johari et al. 2017) is 1/α."""
    radius = float(normal_mixture_radius(variance, mixing_variance=tau2, alpha=alpha))
    for theta in (0.3 + radius, 0.3 - radius):
        ratio = mixture_likelihood_ratio(0.3, theta, variance, tau2)
        assert ratio == pytest.approx(1 / alpha, rel=1e-8)


def test_radius_is_zero_without_variance() -> None:
    assert normal_mixture_radius(0.0, mixing_variance=1.0, alpha=0.05) == 0.0


def test_tuned_mixing_variance_nearly_minimises_the_radius() -> None:
    """The closed form is within 0.02% of the numerically minimal radius at V = 0.01."""
    tau2 = tuned_mixing_variance(0.01, 0.05)
    assert tau2 == pytest.approx(0.01 * (2 * math.log(20) + math.log(1 + 2 * math.log(20))))
    grid = 0.01 * np.exp(np.linspace(-3, 6, 20001))
    best = normal_mixture_radius(0.01, mixing_variance=grid, alpha=0.05).min()
    tuned = normal_mixture_radius(0.01, mixing_variance=tau2, alpha=0.05)
    assert best <= tuned <= best * 1.0002


def test_default_mixing_variance_is_tuned_for_the_planned_size() -> None:
    rng = np.random.default_rng(11)
    treatment, holdout = rng.normal(1.0, 2.0, 500), rng.normal(0.0, 1.0, 700)
    lift = welch_lift(treatment, holdout)
    planned = (treatment.var(ddof=1) + holdout.var(ddof=1)) / DEFAULT_PLANNED_N
    assert lift.mixing_variance == pytest.approx(tuned_mixing_variance(planned, 0.05), rel=1e-12)
    low, high = always_valid_interval(treatment, holdout, 0.05)
    assert lift.always_valid_ci == pytest.approx((low, high), rel=1e-14)
    radius = normal_mixture_radius(lift.stderr**2, mixing_variance=lift.mixing_variance, alpha=0.05)
    assert high - lift.difference == pytest.approx(radius, rel=1e-12)


def test_always_valid_interval_is_wider_contains_fixed_and_shrinks() -> None:
    rng = np.random.default_rng(5)
    widths = []
    for n in (100, 1_000, 10_000):
        treatment = rng.binomial(1, 0.12, n).astype(float)
        holdout = rng.binomial(1, 0.10, n).astype(float)
        lift = welch_lift(treatment, holdout)
        (av_low, av_high), (low, high) = lift.always_valid_ci, lift.diff_ci
        assert av_low < low < high < av_high
        widths.append(av_high - av_low)
    assert widths[0] > widths[1] > widths[2]


def test_always_valid_interval_keeps_coverage_under_continuous_peeking() -> None:
    """200 A/A sequences (conversion rate 0.2 in both arms), peeked every 50 users per arm up
    to 2,000 via streamed moments. The always-valid interval ever excludes 0 in at most 5% (+2%
    slack) of sequences; the fixed-n Welch interval, peeked the same way, in far more."""
    rng = np.random.default_rng(2024)
    sequences, step, horizon = 200, 50, 2000
    ever_av = ever_fixed = 0
    for _ in range(sequences):
        treatment = (rng.random(horizon) < 0.2).astype(float)
        holdout = (rng.random(horizon) < 0.2).astype(float)
        moments_t = moments_h = RunningMoments.empty()
        excluded_av = excluded_fixed = False
        for start in range(0, horizon, step):
            moments_t = moments_t.update(treatment[start : start + step])
            moments_h = moments_h.update(holdout[start : start + step])
            lift = welch_lift_from_moments(moments_t, moments_h)
            excluded_av |= not lift.always_valid_ci[0] <= 0 <= lift.always_valid_ci[1]
            excluded_fixed |= not lift.diff_ci[0] <= 0 <= lift.diff_ci[1]
        ever_av += excluded_av
        ever_fixed += excluded_fixed
    assert ever_av / sequences <= 0.07
    assert ever_fixed / sequences >= 0.10


def test_lift_from_streamed_moments_equals_lift_from_raw_values() -> None:
    rng = np.random.default_rng(9)
    treatment, holdout = rng.exponential(2.0, 1234), rng.exponential(1.8, 987)
    moments_t = functools.reduce(
        RunningMoments.merge, map(RunningMoments.from_values, np.array_split(treatment, 7))
    )
    moments_h = RunningMoments.empty().update(holdout[:500]).update(holdout[500:])
    streamed = welch_lift_from_moments(moments_t, moments_h)
    raw = welch_lift(treatment, holdout)
    for name in ("mean_treatment", "mean_holdout", "difference", "stderr", "df", "p_value"):
        assert getattr(streamed, name) == pytest.approx(getattr(raw, name), rel=1e-10)
    for name in ("diff_ci", "relative_ci", "always_valid_ci"):
        assert getattr(streamed, name) == pytest.approx(getattr(raw, name), rel=1e-10)


values = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=0,
    max_size=30,
)


def assert_moments_close(got: RunningMoments, data: np.ndarray) -> None:
    assert got.count == data.size
    if data.size == 0:
        assert (got.mean, got.m2) == (0.0, 0.0)
        return
    scale = max(1.0, float(np.abs(data).max()))
    assert got.mean == pytest.approx(data.mean(), rel=1e-9, abs=1e-12 * scale)
    m2 = float(np.square(data - data.mean()).sum())
    assert got.m2 == pytest.approx(m2, rel=1e-9, abs=1e-9 * scale**2)


@settings(max_examples=100, deadline=None)
@given(st.lists(values, min_size=1, max_size=6))
def test_merge_equals_moments_of_the_concatenation(chunks: list[list[float]]) -> None:
    merged = functools.reduce(
        RunningMoments.merge, (RunningMoments.from_values(np.array(c)) for c in chunks)
    )
    assert_moments_close(merged, np.concatenate([np.array(c) for c in chunks]))


@settings(max_examples=100, deadline=None)
@given(st.lists(values, min_size=2, max_size=6), st.randoms(use_true_random=False))
def test_merge_is_order_independent(chunks: list[list[float]], random) -> None:
    parts = [RunningMoments.from_values(np.array(c)) for c in chunks]
    a, b = parts[0], parts[1]
    ab, ba = a.merge(b), b.merge(a)
    # Each merge formula is symmetric term by term, so swapping is bit-identical.
    assert (ab.count, ab.mean, ab.m2) == (ba.count, ba.mean, ba.m2)
    shuffled = parts[:]
    random.shuffle(shuffled)
    forward = functools.reduce(RunningMoments.merge, parts)
    other = functools.reduce(RunningMoments.merge, shuffled)
    assert forward.count == other.count
    scale = max([1.0] + [abs(x) for c in chunks for x in c])
    assert other.mean == pytest.approx(forward.mean, rel=1e-9, abs=1e-12 * scale)
    assert other.m2 == pytest.approx(forward.m2, rel=1e-9, abs=1e-9 * scale**2)


@settings(max_examples=50, deadline=None)
@given(values)
def test_batch_update_equals_one_row_at_a_time(data: list[float]) -> None:
    batch = RunningMoments.empty().update(np.array(data))
    single = RunningMoments.empty()
    for x in data:
        single = single.update(np.array([x]))
    assert_moments_close(batch, np.array(data))
    assert_moments_close(single, np.array(data))


def test_empty_is_the_identity_of_merge() -> None:
    a = RunningMoments.from_values([0.1, 0.7, 0.3])
    for merged in (a.merge(RunningMoments.empty()), RunningMoments.empty().merge(a)):
        assert (merged.count, merged.mean, merged.m2) == (a.count, a.mean, a.m2)


def test_vector_moments_track_columns_independently() -> None:
    data = np.random.default_rng(1).normal(size=(50, 3))
    moments = RunningMoments.from_values(data[:20]).update(data[20:])
    assert moments.shape == (3,)
    np.testing.assert_array_equal(moments.count, [50, 50, 50])
    np.testing.assert_allclose(moments.mean, data.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(moments.variance, data.var(axis=0, ddof=1), rtol=1e-12)


def test_moments_are_read_only() -> None:
    moments = RunningMoments.from_values([1.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        moments.mean[...] = 3.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"count": -1, "mean": 0.0, "m2": 0.0}, "count"),
        ({"count": 1.5, "mean": 0.0, "m2": 0.0}, "count"),
        ({"count": 2, "mean": 0.0, "m2": -1.0}, "m2"),
        ({"count": 2, "mean": np.nan, "m2": 0.0}, "mean"),
        ({"count": [2, 3], "mean": [0.0], "m2": [0.0, 1.0]}, "mean"),
    ],
)
def test_bad_moments_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(BanditValueError) as info:
        RunningMoments(**kwargs)
    assert info.value.field == field


GOOD = [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: welch_lift([1.0, np.nan, 2.0], GOOD), "treatment"),
        (lambda: welch_lift(GOOD, [1.0]), "holdout"),
        (lambda: welch_lift(GOOD, [[1.0, 2.0]]), "holdout"),
        (lambda: welch_lift(GOOD, GOOD, 1.5), "confidence"),
        (lambda: welch_lift(GOOD, GOOD, mixing_variance=0.0), "mixing_variance"),
        (lambda: always_valid_interval(GOOD, GOOD, alpha=0.0), "alpha"),
        (lambda: always_valid_interval([np.inf, 1.0], GOOD), "treatment"),
        (
            lambda: welch_lift_from_moments(
                RunningMoments.from_values([1.0]), RunningMoments.from_values(GOOD)
            ),
            "treatment",
        ),
        (
            lambda: welch_lift_from_moments(
                RunningMoments.from_values(GOOD), RunningMoments.from_values([[1.0], [2.0]])
            ),
            "holdout",
        ),
        (lambda: RunningMoments.from_values([1.0, np.nan]), "values"),
        (lambda: RunningMoments.empty().merge(RunningMoments.empty((2,))), "other"),
        (lambda: tuned_mixing_variance(0.0), "estimate_variance"),
    ],
)
def test_bad_input_names_the_field(call, field: str) -> None:
    with pytest.raises(BanditValueError) as info:
        call()
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


def test_relative_always_valid_interval_by_hand() -> None:
    """D in (-1, 3) over a holdout mean of 2 is (-0.5, 1.5); over -2 the bounds swap:
    (3 / -2, -1 / -2) = (-1.5, 0.5)."""
    lift = welch_lift([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    positive = dataclasses.replace(lift, always_valid_ci=(-1.0, 3.0))
    assert relative_always_valid_interval(positive) == (-0.5, 1.5)
    negative = dataclasses.replace(positive, mean_holdout=-2.0)
    assert relative_always_valid_interval(negative) == (-1.5, 0.5)


def test_relative_always_valid_interval_holds_the_relative_lift() -> None:
    """Negative KPI values: relative_lift = D / m_h < 0 lies inside the swapped interval."""
    rng = np.random.default_rng(3)
    lift = welch_lift(rng.normal(-4.0, 1.0, 300), rng.normal(-5.0, 1.0, 300))
    low, high = relative_always_valid_interval(lift)
    assert low < lift.relative_lift < high
    expected = sorted(bound / lift.mean_holdout for bound in lift.always_valid_ci)
    assert [low, high] == pytest.approx(expected, rel=1e-14)


def test_relative_always_valid_interval_is_nan_when_holdout_mean_is_zero() -> None:
    lift = welch_lift([1.0, 2.0, 3.0], [-1.0, 0.0, 1.0])
    assert all(math.isnan(bound) for bound in relative_always_valid_interval(lift))
