"""Rewards from outcomes: each kind on hand-made timelines, before, at and after the window
closes, with outcomes outside the window ignored; order independence by hypothesis."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from experiments.engine.outcomes import before_window
from experiments.engine.reward import (
    OutcomeEvent,
    RewardResult,
    change_reward,
    evaluate_reward,
    window_closes_at,
)
from experiments.spec import RewardSpec, SpecError, parse_spec

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def reward_spec(**fields: Any) -> RewardSpec:
    return RewardSpec.model_validate(fields)


def at(days: float) -> datetime:
    return T0 + days * DAY


def outcome(event: str, days: float, value: float = 1.0) -> OutcomeEvent:
    return OutcomeEvent(event=event, value=value, occurred_at=at(days))


def evaluate(spec: RewardSpec, now_days: float, outcomes: list[OutcomeEvent], **kw: Any):
    return evaluate_reward(spec, decided_at=T0, now=at(now_days), outcomes=outcomes, **kw)


FINAL = {"final": True}


def test_window_closes_at() -> None:
    spec = reward_spec(kind="sum", event="revenue", window="14d")
    assert window_closes_at(spec, T0) == datetime(2024, 3, 15, 9, 0, tzinfo=UTC)
    # other time zones are converted to UTC
    paris = timezone(timedelta(hours=1))
    closes = window_closes_at(spec, datetime(2024, 3, 1, 10, 0, tzinfo=paris))
    assert closes == datetime(2024, 3, 15, 9, 0, tzinfo=UTC)
    assert closes.utcoffset() == timedelta(0)


# --------------------------------------------------------------------------- event
def test_event_reward_timeline() -> None:
    spec = reward_spec(kind="event", event="click", window="2d")
    assert evaluate(spec, 1.0, []) is None  # window open, nothing yet
    assert evaluate(spec, 1.0, [outcome("click", 0.5)]) == RewardResult(1.0, **FINAL)
    assert evaluate(spec, 0.0, [outcome("click", 0.0)]) == RewardResult(1.0, **FINAL)
    assert evaluate(spec, 2.0, []) == RewardResult(0.0, **FINAL)  # closes exactly now
    assert evaluate(spec, 9.0, []) == RewardResult(0.0, **FINAL)


def test_event_outside_the_window_or_of_another_name_is_ignored() -> None:
    spec = reward_spec(kind="event", event="click", window="2d", default=0.25)
    ignored = [
        outcome("click", -0.001),  # before the decision
        outcome("click", 2.0),  # at the close: the window is [start, end)
        outcome("click", 5.0),  # late
        outcome("open", 1.0),  # another event
    ]
    assert evaluate(spec, 1.0, ignored) is None
    assert evaluate(spec, 2.0, ignored) == RewardResult(0.25, **FINAL)
    assert evaluate(spec, 3.0, [*ignored, outcome("click", 1.999)]) == RewardResult(1.0, **FINAL)


# --------------------------------------------------------------------------- funnel
FUNNEL = {"kind": "funnel", "events": ["click", "accept"], "window": "1d"}
MINIMAL_SPEC = {
    "key": "funnel",
    "factors": {"message": ["calm", "urgent"]},
    "policy": {"name": "linear_ts", "params": {}},
    "holdout": {"share": 0.1},
}


def test_funnel_counts_the_steps_reached_each_once() -> None:
    spec = reward_spec(**FUNNEL)
    assert spec.event == "accept"  # the last step, filled in
    assert spec.named_events == ("click", "accept")
    assert spec.label == "funnel:click+accept"
    assert evaluate(spec, 0.5, []) is None
    # a click alone may still be followed by an accept: open until the window closes
    assert evaluate(spec, 0.5, [outcome("click", 0.1)]) is None
    assert evaluate(spec, 1.0, [outcome("click", 0.1)]) == RewardResult(1.0, **FINAL)
    both = [outcome("click", 0.1), outcome("accept", 0.2)]
    assert evaluate(spec, 0.3, both) == RewardResult(2.0, **FINAL)  # final at once
    # a step seen twice counts once; an accept logged without its click counts 1
    twice = [outcome("click", 0.1), outcome("click", 0.3)]
    assert evaluate(spec, 1.0, twice) == RewardResult(1.0, **FINAL)
    assert evaluate(spec, 1.0, [outcome("accept", 0.4)]) == RewardResult(1.0, **FINAL)
    # outside the window, other events, and the default when nothing happened
    ignored = [outcome("click", -0.1), outcome("accept", 1.0), outcome("revenue", 0.5, 6.0)]
    assert evaluate(spec, 1.0, ignored) == RewardResult(0.0, **FINAL)
    with_default = reward_spec(**FUNNEL, default=0.5)
    assert evaluate(with_default, 2.0, ignored) == RewardResult(0.5, **FINAL)


def test_bad_funnels_are_refused_by_name() -> None:
    cases = [
        ({"kind": "funnel", "event": "accept", "window": "1d"}, r"events: is required"),
        ({**FUNNEL, "events": ["click"]}, r"events: must name 2 to 8 steps; got 1"),
        ({**FUNNEL, "events": ["click", "click"]}, r"events: must name each step once"),
        ({**FUNNEL, "events": ["", "accept"]}, r"events\[0\]: must be a non-empty"),
        ({**FUNNEL, "event": "click"}, r"event: of a funnel is its last step, 'accept'"),
        (
            {"kind": "event", "event": "click", "window": "1d", "events": ["click", "accept"]},
            r"events: only applies to kind = 'funnel'; kind is 'event'",
        ),
    ]
    for reward, message in cases:
        with pytest.raises(SpecError, match=rf"^reward\.{message}"):
            parse_spec({**MINIMAL_SPEC, "reward": reward})
    # the event may be given when it is the last step, and the spec round-trips
    spec = parse_spec({**MINIMAL_SPEC, "reward": {**FUNNEL, "event": "accept"}})
    assert parse_spec(spec.to_json_dict()).reward == spec.reward == reward_spec(**FUNNEL)


@given(
    timeline=st.lists(
        st.tuples(
            st.integers(min_value=-86_400, max_value=3 * 86_400).map(lambda s: s / 86_400),
            st.sampled_from(["click", "accept", "revenue"]),
        ),
        max_size=12,
    ),
    now=st.floats(min_value=-1, max_value=3),
    data=st.data(),
)
def test_funnel_is_order_independent_and_counts_distinct_steps(
    timeline: list[tuple[float, str]], now: float, data: Any
) -> None:
    spec = reward_spec(**FUNNEL)
    outcomes = [outcome(event, days) for days, event in timeline]
    result = evaluate(spec, now, outcomes)
    assert result == evaluate(spec, now, data.draw(st.permutations(outcomes)))
    reached = {event for days, event in timeline if event != "revenue" and 0 <= days < 1}
    if len(reached) == 2 or now >= 1:
        assert result == RewardResult(float(len(reached)), **FINAL)
    else:
        assert result is None


WEIGHTED = {**FUNNEL, "events": ["click", "accept", "churn"], "weights": [1.0, 2.0, -20.5]}


def test_weighted_funnel_adds_the_weights_of_the_steps_reached() -> None:
    """Weights 1 (click), 2 (accept), -20.5 (churn) over a 1-day window:
    a click and an accept = 1 + 2 = 3; a click then a churn = 1 - 20.5 = -19.5; a churn alone
    = -20.5; all three = 1 + 2 - 20.5 = -17.5, final at once (every step seen); nothing =
    the default."""
    spec = reward_spec(**WEIGHTED)
    assert spec.event == "churn"
    assert spec.step_weights == (1.0, 2.0, -20.5)
    assert reward_spec(**FUNNEL).step_weights == (1.0, 1.0)
    assert spec.label == "funnel:1click+2accept-20.5churn"
    both = [outcome("click", 0.1), outcome("accept", 0.2)]
    assert evaluate(spec, 0.3, both) is None  # a churn may still come: open until the close
    assert evaluate(spec, 1.0, both) == RewardResult(3.0, **FINAL)
    left = [outcome("click", 0.1), outcome("churn", 0.5)]
    assert evaluate(spec, 1.0, left) == RewardResult(-19.5, **FINAL)
    assert evaluate(spec, 1.0, [outcome("churn", 0.9)]) == RewardResult(-20.5, **FINAL)
    assert evaluate(spec, 0.6, [*both, outcome("churn", 0.5)]) == RewardResult(-17.5, **FINAL)
    # a churn after the window belongs to no later step of this decision
    assert evaluate(spec, 2.0, [*both, outcome("churn", 1.0)]) == RewardResult(3.0, **FINAL)
    assert evaluate(reward_spec(**WEIGHTED, default=0.25), 1.0, []) == RewardResult(0.25, **FINAL)


def test_bad_funnel_weights_are_refused_by_name() -> None:
    cases = [
        (
            {**WEIGHTED, "weights": [1.0, 1.0]},
            r"weights: must give one weight per step of 'events' \(3\); got 2",
        ),
        ({**WEIGHTED, "weights": [0.0, 0.0, 0.0]}, r"weights: must not all be 0"),
        (
            {**WEIGHTED, "weights": [1.0, 1.0, -1e13]},
            r"weights\[2\]: must be a number within \+-1e\+12",
        ),
        (
            {"kind": "event", "event": "click", "window": "1d", "weights": [1.0]},
            r"weights: only applies to kind = 'funnel'; kind is 'event'",
        ),
    ]
    for reward, message in cases:
        with pytest.raises(SpecError, match=rf"^reward\.{message}"):
            parse_spec({**MINIMAL_SPEC, "reward": reward})
    with pytest.raises(SpecError, match=r"weights"):
        parse_spec({**MINIMAL_SPEC, "reward": {**WEIGHTED, "weights": [1.0, 1.0, "x"]}})
    spec = parse_spec({**MINIMAL_SPEC, "reward": WEIGHTED})
    assert parse_spec(spec.to_json_dict()).reward == spec.reward == reward_spec(**WEIGHTED)


@given(
    timeline=st.lists(
        st.tuples(
            st.integers(min_value=-86_400, max_value=3 * 86_400).map(lambda s: s / 86_400),
            st.sampled_from(["click", "accept", "churn", "revenue"]),
        ),
        max_size=12,
    ),
    weights=st.lists(st.integers(-50, 50).map(float), min_size=3, max_size=3).filter(any),
    now=st.floats(min_value=-1, max_value=3),
)
def test_weighted_funnel_is_the_weighted_count_of_distinct_steps(
    timeline: list[tuple[float, str]], weights: list[float], now: float
) -> None:
    spec = reward_spec(**{**WEIGHTED, "weights": weights})
    result = evaluate(spec, now, [outcome(event, days) for days, event in timeline])
    reached = {event for days, event in timeline if event != "revenue" and 0 <= days < 1}
    value = {"click": weights[0], "accept": weights[1], "churn": weights[2]}
    if len(reached) == 3 or now >= 1:
        expected = sum(value[step] for step in reached) if reached else 0.0
        assert result == RewardResult(expected, **FINAL)
    else:
        assert result is None


# --------------------------------------------------------------------------- sum
def test_sum_reward_timeline() -> None:
    """Revenue 3 + 4.5 inside 14 days = 7.5; 100 on day 14 and 50 before the decision
    do not count."""
    spec = reward_spec(kind="sum", event="revenue", window="14d")
    outcomes = [
        outcome("revenue", 1, 3.0),
        outcome("revenue", 13.9, 4.5),
        outcome("revenue", 14, 100.0),
        outcome("revenue", -1, 50.0),
        outcome("click", 2, 1.0),
    ]
    assert evaluate(spec, 0, outcomes) is None
    assert evaluate(spec, 13.99, outcomes) is None  # can still change
    assert evaluate(spec, 14, outcomes) == RewardResult(7.5, **FINAL)
    assert evaluate(spec, 30, outcomes) == RewardResult(7.5, **FINAL)


def test_sum_default_when_nothing_in_window() -> None:
    spec = reward_spec(kind="sum", event="revenue", window="14d", default=-1.0)
    assert evaluate(spec, 14, [outcome("revenue", 20, 9.0)]) == RewardResult(-1.0, **FINAL)
    # an event that occurred with value 0 is not "nothing"
    assert evaluate(spec, 14, [outcome("revenue", 1, 0.0)]) == RewardResult(0.0, **FINAL)


# --------------------------------------------------------------------------- retained
def test_retained_reward_timeline() -> None:
    spec = reward_spec(kind="retained", event="churn", window="30d")
    assert spec.default == 1.0
    assert evaluate(spec, 10, []) is None
    assert evaluate(spec, 10, [outcome("churn", 9)]) == RewardResult(0.0, **FINAL)
    assert evaluate(spec, 30, []) == RewardResult(1.0, **FINAL)
    assert evaluate(spec, 40, [outcome("churn", 35)]) == RewardResult(1.0, **FINAL)
    assert evaluate(spec, 40, [outcome("churn", 30)]) == RewardResult(1.0, **FINAL)
    assert evaluate(spec, 40, [outcome("churn", 29.99)]) == RewardResult(0.0, **FINAL)


def test_retained_with_explicit_default() -> None:
    spec = reward_spec(kind="retained", event="churn", window="30d", default=0.8)
    assert evaluate(spec, 30, []) == RewardResult(0.8, **FINAL)


# --------------------------------------------------------------------------- change
CHANGE = {
    "kind": "change",
    "event": "data_usage",
    "window": "30d",
    "target": 10.0,
    "baseline_field": "usage_30d",
}


def test_change_reward_timeline() -> None:
    """Baseline 2 GB, target 10 GB; the last usage report in the window is 6 GB:
    (6 - 2) / (10 - 2) = 0.5. The 9 GB report on day 30 is after the window."""
    spec = reward_spec(**CHANGE)
    outcomes = [
        outcome("data_usage", 25, 6.0),
        outcome("data_usage", 5, 8.0),  # earlier, so not the KPI at the end
        outcome("data_usage", 30, 9.0),
        outcome("revenue", 29, 100.0),
    ]
    assert evaluate(spec, 29.9, outcomes, baseline=2.0) is None
    assert evaluate(spec, 30, outcomes, baseline=2.0) == RewardResult(0.5, **FINAL)


@pytest.mark.parametrize(
    ("kpi", "expected"),
    [
        (2.0, 0.0),  # no move
        (10.0, 1.0),  # reached
        (30.0, 1.0),  # passed: clipped to 1
        (0.0, -0.25),  # (0 - 2) / 8
        (-20.0, -1.0),  # far away: clipped to -1
    ],
)
def test_change_clipping(kpi: float, expected: float) -> None:
    spec = reward_spec(**CHANGE)
    result = evaluate(spec, 30, [outcome("data_usage", 29, kpi)], baseline=2.0)
    assert result == RewardResult(expected, **FINAL)


def test_change_toward_a_lower_target() -> None:
    """Baseline 12, target 10: dropping to 11 is half way, (11 - 12) / (10 - 12) = 0.5."""
    assert change_reward(11.0, baseline=12.0, target=10.0) == 0.5
    assert change_reward(14.0, baseline=12.0, target=10.0) == -1.0
    assert change_reward(5.0, baseline=12.0, target=10.0) == 1.0


def test_change_with_no_gap() -> None:
    """target == baseline: 1 when the KPI stays at or above the target, else -1."""
    assert change_reward(10.0, baseline=10.0, target=10.0) == 1.0
    assert change_reward(11.0, baseline=10.0, target=10.0) == 1.0
    assert change_reward(9.99, baseline=10.0, target=10.0) == -1.0


def test_change_default_and_ties() -> None:
    spec = reward_spec(**{**CHANGE, "default": -0.5})
    assert evaluate(spec, 30, [], baseline=2.0) == RewardResult(-0.5, **FINAL)
    tied = [outcome("data_usage", 20, 4.0), outcome("data_usage", 20, 6.0)]
    expected = RewardResult(0.5, **FINAL)
    assert evaluate(spec, 30, tied, baseline=2.0) == expected
    assert evaluate(spec, 30, tied[::-1], baseline=2.0) == expected


def test_change_needs_a_baseline() -> None:
    spec = reward_spec(**CHANGE)
    with pytest.raises(SpecError) as caught:
        evaluate(spec, 30, [])
    assert caught.value.field == "baseline"
    with pytest.raises(SpecError):
        evaluate(spec, 30, [], baseline=math.nan)


# --------------------------------------------------------------------------- bad inputs
def test_naive_datetimes_are_refused() -> None:
    spec = reward_spec(kind="event", event="click", window="1d")
    naive = datetime(2024, 3, 1, 9, 0)
    with pytest.raises(SpecError, match="timezone-aware") as caught:
        evaluate_reward(spec, decided_at=naive, now=T0, outcomes=[])
    assert caught.value.field == "decided_at"
    with pytest.raises(SpecError, match="timezone-aware") as caught:
        evaluate_reward(spec, decided_at=T0, now=naive, outcomes=[])
    assert caught.value.field == "now"
    with pytest.raises(SpecError, match="timezone-aware") as caught:
        OutcomeEvent("click", 1.0, naive)
    assert caught.value.field == "occurred_at"
    with pytest.raises(SpecError, match="timezone-aware"):
        window_closes_at(spec, naive)


@pytest.mark.parametrize("value", [math.nan, math.inf, True, "1"])
def test_outcome_values_must_be_finite_numbers(value: object) -> None:
    with pytest.raises(SpecError) as caught:
        OutcomeEvent("revenue", value, T0)  # type: ignore[arg-type]
    assert caught.value.field == "value"


def test_outcome_value_becomes_float_and_other_zones_compare_correctly() -> None:
    tokyo = timezone(timedelta(hours=9))
    # 17:59 in Tokyo on day 1 is 08:59 UTC: one minute before the decision
    early = OutcomeEvent("click", 1, datetime(2024, 3, 1, 17, 59, tzinfo=tokyo))
    assert isinstance(early.value, float)
    spec = reward_spec(kind="event", event="click", window="1d")
    assert evaluate(spec, 0.5, [early]) is None
    inside = OutcomeEvent("click", 1, datetime(2024, 3, 1, 18, 0, tzinfo=tokyo))
    assert evaluate(spec, 0.5, [inside]) == RewardResult(1.0, **FINAL)


# --------------------------------------------------------------------------- properties
# Times in whole seconds (days as exact multiples), so "inside the window" is unambiguous.
timelines = st.lists(
    st.tuples(
        st.integers(min_value=-3 * 86_400, max_value=17 * 86_400).map(lambda s: s / 86_400),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        st.sampled_from(["revenue", "click"]),
    ),
    max_size=30,
)


@given(timeline=timelines, data=st.data())
def test_sum_is_order_independent(timeline: list[tuple[float, float, str]], data: Any) -> None:
    spec = reward_spec(kind="sum", event="revenue", window="14d")
    outcomes = [outcome(event, days, value) for days, value, event in timeline]
    shuffled = data.draw(st.permutations(outcomes))
    first = evaluate(spec, 14, outcomes)
    assert first == evaluate(spec, 14, shuffled)
    inside = [value for days, value, event in timeline if event == "revenue" and 0 <= days < 14]
    assert first == RewardResult(math.fsum(inside) if inside else 0.0, **FINAL)


@given(timeline=timelines, now=st.floats(min_value=-1, max_value=20), data=st.data())
def test_every_kind_is_order_independent_and_bounded(
    timeline: list[tuple[float, float, str]], now: float, data: Any
) -> None:
    outcomes = [outcome(event, days, value) for days, value, event in timeline]
    shuffled = data.draw(st.permutations(outcomes))
    specs = [
        reward_spec(kind="event", event="click", window="14d"),
        reward_spec(kind="retained", event="click", window="14d"),
        reward_spec(**{**CHANGE, "event": "revenue", "window": "14d"}),
    ]
    for spec in specs:
        result = evaluate(spec, now, outcomes, baseline=1.0)
        assert result == evaluate(spec, now, shuffled, baseline=1.0)
        if result is not None:
            assert result.final
            assert -1.0 <= result.value <= 1.0
        if now >= 14:
            assert result is not None  # the window is closed: always known


@given(
    opens=st.one_of(st.none(), st.floats(min_value=-3, max_value=3)),
    occurred=st.floats(min_value=-5, max_value=12),
    received=st.floats(min_value=-5, max_value=12),
)
def test_an_outcome_labelled_before_its_decision_never_counts(
    opens: float | None, occurred: float, received: float
) -> None:
    """``before_decision`` (:func:`before_window`) implies the reward ignores the outcome, for
    a decision whose window opened at ``opens`` or, deferred, opens at an activation at or
    after ``received``; an outcome in the window is never labelled so."""
    spec = reward_spec(kind="sum", event="revenue", window="7d")
    before = before_window(
        None if opens is None else at(opens), occurred=at(occurred), received=at(received)
    )
    starts = [at(opens)] if opens is not None else [at(max(received, r)) for r in (-5, 0, 12)]
    for start in starts:
        result = evaluate_reward(
            spec, decided_at=start, now=start + 8 * DAY, outcomes=[outcome("revenue", occurred)]
        )
        assert result is not None
        if before:
            assert result == RewardResult(0.0, **FINAL)
    if opens is not None:
        assert before == (at(occurred) < at(opens))
