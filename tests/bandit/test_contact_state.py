"""Reference tests for the contact state: hand-computed counts, the definition recomputed
independently, batch equals any split and order, and the state feature vector."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import BanditValueError, DecisionSpace
from bandit.contact_state import (
    ContactDecay,
    ContactState,
    contact_feature_names,
    level_columns,
    state_feature_names,
    state_features,
)
from bandit.statespace import LocalLinearTrend

#: message (a, b) x channel (x, y): columns 0 = a, 1 = b, 2 = x, 3 = y.
SPACE = DecisionSpace({"message": ["a", "b"], "channel": ["x", "y"]})
A_Y = SPACE.index_of({"message": "a", "channel": "y"})
B_Y = SPACE.index_of({"message": "b", "channel": "y"})
A_X = SPACE.index_of({"message": "a", "channel": "x"})


def test_level_columns_and_names() -> None:
    assert (A_X, A_Y, B_Y) == (0, 1, 3)  # mixed radix, last factor fastest
    np.testing.assert_array_equal(level_columns(SPACE, [A_Y, B_Y, A_X]), [[0, 3], [1, 3], [0, 2]])
    assert contact_feature_names(SPACE) == (
        "contacts[message=a]",
        "contacts[message=b]",
        "contacts[channel=x]",
        "contacts[channel=y]",
        "days_since_contact",
    )
    assert state_feature_names(SPACE) == (
        "level",
        "trend",
        "level_sd",
        "trend_sd",
        *contact_feature_names(SPACE),
    )


def test_hand_computed_counts() -> None:
    """Half-life 7 days. Customer 0: (a, y) on day 0, (b, y) on day 7.

    Stored at day 7: a = 2^-1 = 1/2, b = 1, y = 1/2 + 1 = 3/2, last contact 7.
    Read on day 14: everything halves again: [1/4, 1/2, 0, 3/4], 7 days since contact.
    Customer 1 is never contacted: zeros and max_days (90). Customer 2: (a, x) on day 3,
    read on day 3 + 14 = 17: [1/4, 0, 1/4, 0] and 14 days.
    """
    decay = ContactDecay(half_life=7.0)
    state = decay.initial_state(3, 4)
    state = decay.record(state, [0, 0, 2], [0.0, 7.0, 3.0], level_columns(SPACE, [A_Y, B_Y, A_X]))
    np.testing.assert_array_equal(state.counts[0], [0.5, 1.0, 0.0, 1.5])
    np.testing.assert_array_equal(state.last_contact[:2], [7.0, np.nan])
    features = decay.features(state, [0, 1, 2], [14.0, 14.0, 17.0])
    np.testing.assert_array_equal(
        features,
        [[0.25, 0.5, 0.0, 0.75, 7.0], [0.0, 0.0, 0.0, 0.0, 90.0], [0.25, 0.0, 0.25, 0.0, 14.0]],
    )


def test_days_since_is_capped() -> None:
    decay = ContactDecay(half_life=7.0, max_days=30.0)
    state = decay.record(decay.initial_state(1, 4), [0], [2.5], [[0, 2]])
    np.testing.assert_array_equal(
        decay.days_since(state, [0, 0, 0], [2.5, 10.0, 400.0]), [0, 7.5, 30]
    )


def test_late_contact_weighs_what_it_would_have() -> None:
    """A contact recorded after a later one is valued at its own time: day 7 then day 0 gives
    the same state as day 0 then day 7."""
    decay = ContactDecay(half_life=7.0)
    columns = level_columns(SPACE, [A_Y, B_Y])
    in_order = decay.record(decay.initial_state(1, 4), [0, 0], [0.0, 7.0], columns)
    late = decay.record(decay.initial_state(1, 4), [0], [7.0], columns[1:])
    late = decay.record(late, [0], [0.0], columns[:1])
    np.testing.assert_array_equal(late.counts, in_order.counts)
    np.testing.assert_array_equal(late.last_contact, in_order.last_contact)


def reference_counts(
    customers: np.ndarray, times: np.ndarray, columns: np.ndarray, n: int, at: float, h: float
) -> np.ndarray:
    """The definition, contact by contact: c_l(t) = sum_k 1[l in k] 2^(-(t - t_k) / h)."""
    counts = np.zeros((n, 4))
    for who, when, cols in zip(customers, times, columns, strict=True):
        for col in cols:
            counts[who, col] += 2.0 ** (-(at - when) / h)
    return counts


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_contacts=st.integers(0, 40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    half_life=st.sampled_from([0.5, 7.0, 30.0]),
)
def test_any_split_and_order_equals_the_definition(
    seed: int, n_contacts: int, cuts: list[int], half_life: float
) -> None:
    rng = np.random.default_rng(seed)
    customers = rng.integers(0, 5, n_contacts)
    times = rng.uniform(0.0, 60.0, n_contacts).round(1)
    columns = level_columns(SPACE, rng.integers(0, 4, n_contacts))
    decay = ContactDecay(half_life=half_life)
    order = rng.permutation(n_contacts)
    state = decay.initial_state(5, 4)
    bounds = sorted({0, n_contacts, *(min(c, n_contacts) for c in cuts)})
    for start, stop in itertools.pairwise(bounds):
        rows = order[start:stop]
        state = decay.record(state, customers[rows], times[rows], columns[rows])
    at = 61.0
    expected = reference_counts(customers, times, columns, 5, at, half_life)
    got = decay.counts_at(state, np.arange(5), np.full(5, at))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    last = np.full(5, np.nan)
    for who in range(5):
        if (customers == who).any():
            last[who] = times[customers == who].max()
    np.testing.assert_array_equal(state.last_contact, last)
    days = np.where(np.isnan(last), decay.max_days, np.minimum(at - last, decay.max_days))
    np.testing.assert_allclose(decay.days_since(state, np.arange(5), np.full(5, at)), days)


def test_untouched_customers_keep_their_rows_exactly() -> None:
    decay = ContactDecay(half_life=3.0)
    state = decay.record(decay.initial_state(4, 4), [0, 1, 2], [1.0, 2.0, 3.0], [[0], [1], [2]])
    after = decay.record(state, [1, 1], [5.0, 4.0], [[3], [0]])
    for who in (0, 2, 3):
        np.testing.assert_array_equal(after.counts[who], state.counts[who])
    assert after.last_contact[1] == 5.0
    # Customer 1: b at day 2, then a at day 4 and y at day 5, valued at day 5.
    np.testing.assert_allclose(after.counts[1], [2 ** (-1 / 3), 2 ** (-1.0), 0.0, 1.0], rtol=1e-15)
    np.testing.assert_array_equal(state.counts[1], [0.0, 1.0, 0.0, 0.0])  # input untouched


def test_state_features_put_trend_next_to_contacts() -> None:
    """LocalLinearTrend docstring's example: unit noises, unit prior at zero, y = 2 gives level
    3/2 and trend 1/2 (P- = [[3, 1], [1, 2]], S = 4, K = [3/4, 1/4]); Joseph form:
    P00 = (1/4)^2 3 + (3/4)^2 = 3/4, P11 = 2 - 2 (1/4) 1 + (1/4)^2 4 = 7/4."""
    model = LocalLinearTrend(
        level_noise=1.0,
        trend_noise=1.0,
        obs_noise=1.0,
        initial_level_var=1.0,
        initial_trend_var=1.0,
    )
    trend = model.step(model.initial_state(3), np.array([2.0, np.nan, 2.0]))
    decay = ContactDecay(half_life=7.0)
    contacts = decay.record(decay.initial_state(3, 4), [2], [0.0], [[1, 2]])
    features = state_features(trend, contacts, decay, [2, 1], [7.0, 7.0])
    assert features.shape == (2, len(state_feature_names(SPACE)))
    np.testing.assert_allclose(
        features[0], [1.5, 0.5, np.sqrt(0.75), np.sqrt(1.75), 0.0, 0.5, 0.5, 0.0, 7.0], rtol=1e-14
    )
    np.testing.assert_array_equal(features[1, :4], trend.features()[1])
    np.testing.assert_array_equal(features[1, 4:], [0.0, 0.0, 0.0, 0.0, 90.0])
    assert state_features(trend, contacts, decay, [], []).shape == (0, 9)


def test_arrays_round_trip_exactly() -> None:
    decay = ContactDecay()
    state = decay.record(decay.initial_state(3, 4), [0, 2], [1.5, 2.0], [[0, 3], [1, 2]])
    arrays = state.to_arrays()
    again = ContactState.from_arrays(arrays)
    np.testing.assert_array_equal(again.counts, state.counts)
    np.testing.assert_array_equal(again.last_contact, state.last_contact)
    arrays["counts"][...] = 7.0  # copies: the state does not change
    assert state.counts.max() == 1.0
    with pytest.raises(ValueError, match="read-only"):
        state.counts[0, 0] = 2.0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda d, s: d.record(s, [0], [1.0], [[4]]), "columns"),
        (lambda d, s: d.record(s, [0], [1.0], [[0.0]]), "columns"),
        (lambda d, s: d.record(s, [0], [1.0], [0]), "columns"),
        (lambda d, s: d.record(s, [3], [1.0], [[0]]), "customers"),
        (lambda d, s: d.record(s, [0.0], [1.0], [[0]]), "customers"),
        (lambda d, s: d.record(s, [0], [np.inf], [[0]]), "times"),
        (lambda d, s: d.record(s, [0, 1], [1.0], [[0], [1]]), "times"),
        (lambda d, s: d.counts_at(s, [1], [4.0]), "times"),
        (lambda d, s: d.features(s, [1], [np.nan]), "times"),
        (lambda d, s: d.record(object(), [0], [1.0], [[0]]), "state"),
    ],
)
def test_bad_input_names_the_field(call, field: str) -> None:
    decay = ContactDecay()
    state = decay.record(decay.initial_state(3, 4), [1], [5.0], [[0]])
    with pytest.raises(BanditValueError) as error:
        call(decay, state)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("arrays", "field"),
    [
        ({"counts": -np.ones((1, 2)), "last_contact": [0.0]}, "counts"),
        ({"counts": np.ones((1, 2)), "last_contact": [np.nan]}, "counts"),
        ({"counts": np.ones((2, 2)), "last_contact": [0.0]}, "last_contact"),
        ({"counts": np.ones((1, 2)), "last_contact": [np.inf]}, "last_contact"),
        ({"counts": np.ones(2), "last_contact": [0.0]}, "counts"),
        ({"counts": np.ones((1, 2))}, "last_contact"),
    ],
)
def test_bad_state_arrays(arrays: dict, field: str) -> None:
    with pytest.raises(BanditValueError) as error:
        ContactState.from_arrays(arrays)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("name", "value"), [("half_life", 0.0), ("max_days", -1.0), ("half_life", np.inf)]
)
def test_bad_decay_parameters(name: str, value: float) -> None:
    with pytest.raises(BanditValueError) as error:
        ContactDecay(**{name: value})
    assert error.value.field == name
