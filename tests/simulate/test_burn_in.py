"""Burn-in: customers start day 0 with a history of business-as-usual contacts (fatigue,
nurture, contact counts, offers) but with no outcomes of it reported, and with the same
traits as a world without burn-in; no burn-in is today's world."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments.simulate import ContactRules, CustomerWorld, Events, WorldConfig
from experiments.simulate.fields import HISTORY_DAYS
from experiments.spec import load_spec

MECHANISM = load_spec(Path(__file__).resolve().parents[2] / "examples" / "mechanism.toml")
SPACE = MECHANISM.decision_space()
ENGINE_RULES = ContactRules(max_decisions=3, per_days=7, quiet_hours=(22, 8))


def world(n: int = 2_000, **knobs: Any) -> CustomerWorld:
    return CustomerWorld(WorldConfig(n_customers=n, **knobs), SPACE, MECHANISM.context)


def idle(target: CustomerWorld, days: int) -> list[Events]:
    return [target.end_day() for _ in range(days)]


def test_burn_in_starts_customers_with_a_history_and_no_outcomes() -> None:
    fresh = world()
    lived = world(burn_in_days=28, burn_in_rules=ENGINE_RULES)
    assert fresh.day == lived.day == 0
    assert not fresh.customers.fatigue.any()
    assert not fresh.customers.nurture.any()
    assert (lived.customers.fatigue > 0).mean() > 0.5
    assert (lived.customers.nurture > 0).any(axis=1).mean() > 0.3
    # Who the customers are does not change; only what they lived through.
    for trait in ("device", "plan", "region", "engagement_level", "preferred_hour", "frailty"):
        np.testing.assert_array_equal(
            getattr(fresh.customers, trait), getattr(lived.customers, trait)
        )
    # Nobody left during the burn-in, and nothing of it is counted as an outcome.
    kpis = lived.kpis()
    assert kpis["retained"].all()
    assert (kpis["churn_day"] == -1).all()
    for name in ("revenue", "contacts", "clicks", "accepts"):
        assert not kpis[name].any(), name
    # Responses to burn-in contacts are not reported on the days after it either.
    events = idle(lived, 4)
    assert not any(np.isin(day.event, ["click", "accept"]).any() for day in events)
    # What a decision sees does show the history.
    since = [row["days_since_contact"] for row in lived.contexts(np.arange(2_000))]
    since_fresh = [row["days_since_contact"] for row in fresh.contexts(np.arange(2_000))]
    assert np.mean(since) < np.mean(since_fresh) - 10


def test_burn_in_contacts_keep_the_cadence_they_are_given() -> None:
    """Under 3 decisions per 7 days no customer got more than 3 contacts in any 7 burn-in
    days (the world's 30-day contact history covers the 28 burn-in days); without rules
    every visitor is contacted every day, so some customers get more."""
    days = 28
    for rules, most in ((ENGINE_RULES, 3), (ContactRules(), None)):
        lived = world(burn_in_days=days, burn_in_rules=rules)
        rows = [(day % HISTORY_DAYS) for day in range(-days, 0)]
        history = lived.customers.contact_history[rows].astype(np.int64)  # (days, n)
        in_week = np.cumsum(np.vstack([np.zeros((1, 2_000), np.int64), history]), axis=0)
        weekly = in_week[7:] - in_week[:-7]
        if most is None:
            assert weekly.max() > 3
        else:
            assert weekly.max() == most


def test_burn_in_is_seeded_and_zero_days_is_todays_world() -> None:
    first = world(n=800, burn_in_days=14, burn_in_rules=ENGINE_RULES)
    second = world(n=800, burn_in_days=14, burn_in_rules=ENGINE_RULES)
    np.testing.assert_array_equal(first.customers.fatigue, second.customers.fatigue)
    np.testing.assert_array_equal(first.visitors(), second.visitors())
    for a, b in zip(idle(first, 3), idle(second, 3), strict=True):
        np.testing.assert_array_equal(a.value, b.value)
    plain, ruled = world(n=800), world(n=800, burn_in_days=0, burn_in_rules=ENGINE_RULES)
    for a, b in zip(idle(plain, 3), idle(ruled, 3), strict=True):
        for name in ("customer", "event", "value", "hour"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_burn_in_without_fatigue_still_nurtures() -> None:
    lived = world(n=800, burn_in_days=21, burn_in_rules=ENGINE_RULES, fatigue=False)
    assert not lived.customers.fatigue.any()
    assert lived.customers.nurture.any()
