"""Guardrail statistics: the non-inferiority reading and the sample-ratio chi-square test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from guardrail_support import independent_interval
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from bandit import BanditValueError
from bandit.guardrails import (
    guarded_difference,
    non_inferiority,
    sample_ratio_test,
    sequential_sample_ratio_p,
)


@pytest.mark.parametrize(
    ("low", "high", "higher", "expected"),
    [
        (-0.05, -0.03, True, "breached"),  # -0.03 < -0.02
        (-0.01, 0.04, True, "holding"),  # -0.01 > -0.02
        (-0.03, 0.01, True, "undecided"),
        (-0.02, 0.01, True, "undecided"),  # low on the margin is not above it
        (0.03, 0.05, False, "breached"),  # 0.03 > 0.02
        (-0.04, 0.01, False, "holding"),
        (0.01, 0.03, False, "undecided"),
        (math.nan, 0.0, True, "undecided"),
        (-math.inf, 1.0, False, "undecided"),
    ],
)
def test_non_inferiority_hand_cases(low: float, high: float, higher: bool, expected: str) -> None:
    """Margin 0.02 in every case; the bound compared is written next to each case."""
    assert non_inferiority(low, high, margin=0.02, higher_is_better=higher) == expected


@given(
    st.floats(-10, 10),
    st.floats(0, 5),
    st.floats(0, 2),
)
def test_non_inferiority_mirrors_with_the_sign(centre: float, half: float, margin: float) -> None:
    """Lower-is-better on D reads as higher-is-better on -D, for every interval."""
    low, high = centre - half, centre + half
    assert non_inferiority(low, high, margin=margin, higher_is_better=False) == non_inferiority(
        -high, -low, margin=margin, higher_is_better=True
    )


def test_non_inferiority_refuses_a_negative_margin() -> None:
    with pytest.raises(BanditValueError, match="'margin'"):
        non_inferiority(0.0, 1.0, margin=-0.1, higher_is_better=True)


def test_sample_ratio_hand_computed() -> None:
    """450 and 50 against 0.8/0.2: E = (400, 100); X² = 50²/400 + 50²/100 = 6.25 + 25 = 31.25;
    on 1 df the upper tail is erfc(√(31.25/2)) = 2.27e-8."""
    result = sample_ratio_test([450, 50], [0.8, 0.2])
    assert result.expected == (400.0, 100.0)
    assert result.statistic == pytest.approx(31.25, abs=1e-12)
    assert result.df == 1
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(31.25 / 2)), rel=1e-12)
    assert result.mismatch


@given(
    st.lists(st.integers(0, 10_000), min_size=2, max_size=5).filter(lambda c: sum(c) > 0),
    st.data(),
)
def test_sample_ratio_matches_scipy_chisquare(counts: list[int], data: st.DataObject) -> None:
    raw = np.array(
        data.draw(st.lists(st.floats(0.05, 1.0), min_size=len(counts), max_size=len(counts)))
    )
    shares = raw / raw.sum()
    result = sample_ratio_test(np.array(counts), shares)
    reference = stats.chisquare(counts, np.sum(counts) * shares)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9, abs=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-12)
    assert result.mismatch == (reference.pvalue < 0.001)


def test_sample_ratio_of_nothing_is_no_mismatch() -> None:
    result = sample_ratio_test([0, 0], [0.9, 0.1])
    assert (result.statistic, result.p_value, result.mismatch) == (0.0, 1.0, False)


@pytest.mark.parametrize(
    ("observed", "shares", "field"),
    [
        ([1], [1.0], "observed"),
        ([1.5, 2.0], [0.5, 0.5], "observed"),
        ([-1, 2], [0.5, 0.5], "observed"),
        ([1, 2], [0.5, 0.4], "shares"),
        ([1, 2], [1.0, 0.0], "shares"),
        ([1, 2], [0.5, 0.25, 0.25], "shares"),
    ],
)
def test_sample_ratio_refuses_bad_input(
    observed: list[float], shares: list[float], field: str
) -> None:
    with pytest.raises(BanditValueError) as caught:
        sample_ratio_test(np.array(observed), shares)
    assert caught.value.field == field


def test_guarded_difference_with_no_event_in_the_holdout() -> None:
    """Holdout 50 customers all retained (variance 0); treatment 450 with 8 churned. Welch's
    V would be the treatment's alone, 0.01747 · 0.98253 / 450 ≈ 3.81e-5; the pooled one,
    0.016 · 0.984 · 500/499 · (1/450 + 1/50) ≈ 3.50e-4, is used."""
    t = np.r_[np.zeros(8), np.ones(442)]
    h = np.ones(50)
    result = guarded_difference(t, h)
    pooled = np.r_[t, h].var(ddof=1)
    assert result.variance == pytest.approx(pooled * (1 / 450 + 1 / 50), rel=1e-12)
    assert result.variance > t.var(ddof=1) / 450 * 9
    assert (result.low, result.high) == pytest.approx(independent_interval(t, h), rel=1e-12)
    assert result.difference == pytest.approx(-8 / 450, rel=1e-12)


@given(
    st.lists(st.floats(-100, 100), min_size=2, max_size=40),
    st.lists(st.floats(-100, 100), min_size=2, max_size=40),
)
def test_guarded_difference_matches_the_formula_and_covers_welch(
    treatment: list[float], holdout: list[float]
) -> None:
    t, h = np.array(treatment), np.array(holdout)
    if np.r_[t, h].var() < 1e-9:
        return  # constant: the radius is 0 on both sides (tested by the identity below)
    result = guarded_difference(t, h)
    low, high = independent_interval(t, h)
    assert result.low == pytest.approx(low, rel=1e-9, abs=1e-9)
    assert result.high == pytest.approx(high, rel=1e-9, abs=1e-9)
    welch_variance = t.var(ddof=1) / t.size + h.var(ddof=1) / h.size
    assert result.variance >= welch_variance * (1 - 1e-12)


def test_guarded_difference_of_constants_is_the_point() -> None:
    result = guarded_difference(np.ones(5), np.ones(3))
    assert (result.low, result.high, result.variance) == (0.0, 0.0, 0.0)


def test_guarded_difference_refuses_too_few_values() -> None:
    with pytest.raises(BanditValueError) as caught:
        guarded_difference(np.ones(1), np.ones(3))
    assert caught.value.field == "treatment"


def test_sequential_sample_ratio_hand_computed() -> None:
    """Shares (0.5, 0.5), concentration 2 (a uniform prior), counts (1, 0): the mixture's
    marginal likelihood is 1/2, the null's 1/2, so BF = 1 and p = 1. Counts (2, 0): the
    mixture gives ∫ q² dq = 1/3 against 1/4, BF = 4/3, p = 3/4; counts (10, 0): 1/11 against
    1/1024, p = 11/1024. Counts (0, 1) against (0.9, 0.1), concentration 1: prior Beta(0.1,
    0.9) on the holdout share, marginal 0.1 = the null's, BF = 1, p = 1 (never below 1)."""
    assert sequential_sample_ratio_p([1, 0], [0.5, 0.5], concentration=2) == 1.0
    assert sequential_sample_ratio_p([2, 0], [0.5, 0.5], concentration=2) == pytest.approx(0.75)
    assert sequential_sample_ratio_p([0, 1], [0.9, 0.1], concentration=1) == 1.0
    assert sequential_sample_ratio_p([10, 0], [0.5, 0.5], concentration=2) == pytest.approx(
        11 / 1024, rel=1e-12
    )


@pytest.mark.parametrize(("treated", "held"), [(60, 40), (950, 50), (180, 20), (0, 7)])
def test_sequential_sample_ratio_equals_the_integral(treated: int, held: int) -> None:
    """Two groups: BF = ∫ (q/s)^held ((1-q)/(1-s))^treated Beta(q; 100 s, 100 (1-s)) dq."""
    share = 0.1
    bayes_factor, _ = integrate.quad(
        lambda q: (
            (q / share) ** held
            * ((1 - q) / (1 - share)) ** treated
            * stats.beta.pdf(q, 100 * share, 100 * (1 - share))
        ),
        0,
        1,
        epsabs=0,
        epsrel=1e-11,
        limit=200,
    )
    expected = min(1.0, 1.0 / bayes_factor)
    got = sequential_sample_ratio_p([treated, held], [1 - share, share])
    assert got == pytest.approx(expected, rel=1e-7)
