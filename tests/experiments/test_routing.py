"""The runner's outcome router: forgetting closed windows never changes where a later event
goes, and leaves no customer whose windows have all closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.runs.routing import OutcomeRouter

START = datetime(2026, 1, 5, tzinfo=UTC)
WINDOW = timedelta(hours=30)

# One simulated day: (customer, hour shown) for each decision, then the hours of the events
# asked about. Days follow each other; each day ends with forget_closed at the next midnight.
DAYS = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(0, 5), st.integers(0, 23)), max_size=8),
        st.lists(st.tuples(st.integers(0, 5), st.integers(0, 47)), max_size=8),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(days=DAYS)
def test_forgetting_closed_windows_changes_no_later_route(
    days: list[tuple[list[tuple[int, int]], list[tuple[int, int]]]],
) -> None:
    forgetting, keeping = OutcomeRouter(), OutcomeRouter()
    for day, (shown, asked) in enumerate(days):
        day_start = START + timedelta(days=day)
        for customer, hour in sorted(shown, key=lambda item: item[1]):
            at = day_start + timedelta(hours=hour)
            for router in (forgetting, keeping):
                router.add(customer, at, f"{day}-{customer}-{hour}", at + WINDOW)
        midnight = day_start + timedelta(days=1)
        forgetting.forget_closed(midnight)
        for customer, hour in asked:
            at = midnight + timedelta(hours=hour)
            assert forgetting.route(customer, at) == keeping.route(customer, at)
        for shown_of in forgetting._by_customer.values():
            assert shown_of.decisions
            assert shown_of.decisions[-1][1] > midnight


def test_a_customer_whose_windows_all_closed_is_dropped_and_may_come_back() -> None:
    router = OutcomeRouter()
    router.add(1, START, "a", START + WINDOW)
    router.add(1, START + timedelta(hours=2), "b", START + timedelta(hours=2) + WINDOW)
    router.add(2, START, "c", START + 3 * WINDOW)
    router.forget_closed(START + WINDOW)  # "a" closed, "b" open
    assert router.route(1, START + WINDOW + timedelta(hours=1)) == "b"
    router.forget_closed(START + 2 * WINDOW)  # both of customer 1's closed
    assert 1 not in router._by_customer
    assert router.route(2, START + 2 * WINDOW) == "c"
    later = START + 2 * WINDOW + timedelta(hours=1)
    router.add(1, later, "d", later + WINDOW)
    assert router.route(1, later) == "d"
