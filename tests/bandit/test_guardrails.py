"""Guardrail statistics: the non-inferiority reading and the sample-ratio chi-square test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from bandit import BanditValueError
from bandit.guardrails import non_inferiority, sample_ratio_test


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
