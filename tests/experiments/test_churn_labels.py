"""Churn labels over the days after a contact: which decisions a learning step labels, and
each label, checked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from experiments.engine.churn_labels import label_churn, matured_interval
from experiments.store.served import ServedDecision

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def decision(customer: str, at: datetime) -> ServedDecision:
    return ServedDecision(f"{customer}-{at:%d%H}", customer, at, {}, 0)


def test_a_label_is_a_churn_in_the_window_after_the_decision() -> None:
    decisions = [
        decision("a", T0),  # churns 3 days later: 1
        decision("a", T0 + 4 * DAY),  # churn 1 day before it: 0 (cannot happen, but checked)
        decision("b", T0),  # churns exactly a week later: outside [t, t + W)
        decision("b", T0 + DAY),  # the same churn 6 days later: 1
        decision("c", T0),  # never churns: 0
        decision("d", T0 + 2 * DAY),  # churns at the decision's own instant: 1
    ]
    times = {"a": [T0 + 3 * DAY], "b": [T0 + WEEK], "d": [T0 + 2 * DAY]}
    assert label_churn(decisions, times, WEEK).tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    assert label_churn(decisions, times, DAY).tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert label_churn([], times, WEEK).shape == (0,)


def test_the_first_step_labels_every_decision_old_enough() -> None:
    assert matured_interval(None, T0 + 10 * DAY, WEEK) == (None, T0 + 3 * DAY)


@given(
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=30),
    st.integers(min_value=1, max_value=20),
)
def test_the_steps_intervals_tile_time(gaps: list[int], window_days: int) -> None:
    """Steps at increasing times label ``[previous - W, now - W)`` each: consecutive
    intervals meet end to start, so every decision before the last ``now - W`` is labelled
    exactly once."""
    window = timedelta(days=window_days)
    times = [T0]
    for gap in gaps:
        times.append(times[-1] + timedelta(minutes=gap))
    intervals = [matured_interval(None, times[0], window)] + [
        matured_interval(previous, now, window) for previous, now in pairwise(times)
    ]
    assert intervals[0][0] is None
    for (_, end), (start, _) in pairwise(intervals):
        assert start == end
    assert intervals[-1][1] == times[-1] - window


def test_decisions_before_since_are_never_labelled() -> None:
    """An imported history predates the experiment: its decisions get no churn label, so a
    step's interval starts at ``since`` at the earliest, and a step wholly before it labels
    nothing (an empty interval)."""
    since = T0 + 20 * DAY
    assert matured_interval(None, T0 + 30 * DAY, WEEK, since) == (since, T0 + 23 * DAY)
    assert matured_interval(T0 + 25 * DAY, T0 + 40 * DAY, WEEK, since) == (
        since,
        T0 + 33 * DAY,
    )
    assert matured_interval(T0 + 30 * DAY, T0 + 40 * DAY, WEEK, since) == (
        T0 + 23 * DAY,
        T0 + 33 * DAY,
    )
    start, end = matured_interval(None, T0 + 10 * DAY, WEEK, since)
    assert start is not None
    assert end <= start  # nothing matured since the experiment began
