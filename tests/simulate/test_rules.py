"""Contact rules in plain numbers: the quiet hours and the rolling limit as the engine reads
them, and the oracles kept to them (without rules, the oracles are today's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments.simulate import ContactRules, CustomerWorld, WorldConfig, greedy_rollout
from experiments.simulate.rules import ContactLedger
from experiments.spec import load_spec

MECHANISM = load_spec(Path(__file__).resolve().parents[2] / "examples" / "mechanism.toml")
SPACE = MECHANISM.decision_space()
ENGINE_RULES = ContactRules(max_decisions=3, per_days=7, quiet_hours=(22, 8))


def test_quiet_hours_are_judged_on_the_whole_local_hour() -> None:
    """(22, 8) is quiet from 22:00 to 07:59, as ``ContactSpec.is_quiet`` reads it; (9, 17)
    does not wrap midnight."""
    hours = np.array([21.99, 22.0, 23.5, 0.0, 7.99, 8.0, 12.0])
    assert ENGINE_RULES.is_quiet(hours).tolist() == [False, True, True, True, True, False, False]
    daytime = ContactRules(quiet_hours=(9, 17))
    assert daytime.is_quiet(np.array([8.5, 9.0, 16.9, 17.0])).tolist() == [
        False,
        True,
        True,
        False,
    ]
    assert not ContactRules().is_quiet(hours).any()


def test_the_ledger_allows_at_most_n_decisions_in_any_window() -> None:
    """3 per 7 days: decided on days 0, 1 and 2, a customer waits until day 7 (days 1-7 hold
    only the decisions of days 1 and 2); another customer decided once is never held."""
    ledger = ContactLedger(ContactRules(max_decisions=3, per_days=7), n_customers=2)
    noon = np.array([12.0, 12.0])
    both = np.array([0, 1])
    allowed_days = []
    for day in range(10):
        allows = ledger.allows(both, noon, day)
        allowed_days.append(allows.tolist())
        if day < 3:
            ledger.record(np.array([0]), day)
        if day == 0:
            ledger.record(np.array([1]), day)
    assert [first for first, _ in allowed_days] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        True,
        True,
        True,
    ]
    assert all(second for _, second in allowed_days)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ContactRules(max_decisions=0), r"'max_decisions' parameter of ContactRules"),
        (lambda: ContactRules(per_days=0), r"'per_days' parameter of ContactRules"),
        (lambda: ContactRules(quiet_hours=(22, 22)), r"must have start != end"),
        (lambda: ContactRules(quiet_hours=(22, 24)), r"must be an int in \[0, 23\]"),
        (lambda: ContactRules(quiet_hours=[22, 8]), r"must be a \(start, end\) pair"),  # type: ignore[arg-type]
    ],
)
def test_bad_rules_are_refused_by_name(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_the_oracle_under_contact_rules_contacts_no_one_more_than_allowed() -> None:
    """3 decisions per 7 days, none at 22:00-07:59 local time: no customer is contacted
    twice a day, more than 3 times in any 7 consecutive days, or in the quiet hours. The
    hours are read from a world of the same seed left idle: when a customer visits (the
    hour, not whether) does not depend on what is sent."""
    days, n = 28, 1_500
    config = WorldConfig(n_customers=n, n_days=days, seed=0, emit_usage=False)
    result = greedy_rollout(config, SPACE, MECHANISM.context, "revenue_28d", rules=ENGINE_RULES)
    counts = np.zeros((days, n), dtype=np.int64)
    np.add.at(counts, (result.days, result.customers), 1)
    assert counts.max() == 1
    in_week = np.cumsum(np.vstack([np.zeros((1, n), np.int64), counts]), axis=0)
    assert (in_week[7:] - in_week[:-7]).max() == 3  # the limit binds and holds
    np.testing.assert_array_equal(
        np.bincount(result.customers, minlength=n), result.kpis["contacts"]
    )

    idle = CustomerWorld(config, SPACE, MECHANISM.context)
    quiet_visitors = 0
    for day in range(days):
        local = idle.visit_local_hours(np.arange(n))
        assert not ENGINE_RULES.is_quiet(local[result.customers[result.days == day]]).any()
        quiet_visitors += int(ENGINE_RULES.is_quiet(local[idle.visitors()]).sum())
        idle.end_day()
    assert quiet_visitors > 100  # there were visitors the quiet hours turned away

    free = greedy_rollout(config, SPACE, MECHANISM.context, "revenue_28d")
    assert result.actions.size < 0.9 * free.actions.size  # measured 4,965 against 6,570


def test_without_rules_the_oracle_is_todays() -> None:
    """No rules, or rules that restrict nothing, give the same rollout: every visitor
    contacted every day, the same actions and the same truth."""
    config = WorldConfig(n_customers=600, n_days=10, seed=2, emit_usage=False)
    plain = greedy_rollout(config, SPACE, MECHANISM.context, "click")
    empty = greedy_rollout(config, SPACE, MECHANISM.context, "click", rules=ContactRules())
    np.testing.assert_array_equal(plain.actions, empty.actions)
    np.testing.assert_array_equal(plain.customers, empty.customers)
    for key, value in plain.kpis.items():
        np.testing.assert_array_equal(value, empty.kpis[key])
    world = CustomerWorld(config, SPACE, MECHANISM.context)
    assert plain.customers[plain.days == 0].tolist() == world.visitors().tolist()
