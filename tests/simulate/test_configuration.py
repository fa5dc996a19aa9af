"""Configurable worlds: each override of the level semantics or of the mechanism's constants
changes what it says and nothing else, the defaults are today's world, and bad values are
refused by name with their range.

Worlds compared here share a seed (common random numbers), so any difference comes from the
configuration. Drift is off where a run must be reproduced exactly: the drift's random walks
belong to level positions, not to semantics, so with drift on a swapped level would keep its
own walk.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from experiments.simulate import (
    ChannelSemantics,
    CustomerWorld,
    Events,
    LevelSemantics,
    Mechanism,
    MessageSemantics,
    TimingSemantics,
    WorldConfig,
)
from experiments.simulate.semantics.messages import KNOWN_MESSAGES
from experiments.spec import load_spec

MECHANISM = load_spec(Path(__file__).resolve().parents[2] / "examples" / "mechanism.toml")
SPACE = MECHANISM.decision_space()
MESSAGES = SPACE.factors["message"]


def world(n: int = 2_000, seed: int = 0, **knobs: Any) -> CustomerWorld:
    return CustomerWorld(WorldConfig(n_customers=n, seed=seed, **knobs), SPACE, MECHANISM.context)


def action(message: str, channel: str = "sms", timing: str = "evening") -> int:
    return SPACE.index_of(
        {"offer": "content_pass", "message": message, "channel": channel, "timing": timing}
    )


def same_action_other_message(index: int, message: str) -> int:
    levels = SPACE.levels_of(index)
    return SPACE.index_of({**levels, "message": message})


def assert_same_events(first: list[Events], second: list[Events]) -> None:
    for a, b in zip(first, second, strict=True):
        for name in ("customer", "event", "value", "hour"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def run(target: CustomerWorld, choose: dict[int, int], days: int) -> list[Events]:
    """Contact every visitor each day with ``choose[id % len(choose)]``."""
    events = []
    for _ in range(days):
        ids = target.visitors()
        target.act(ids, np.array([choose[int(i) % len(choose)] for i in ids], dtype=np.int64))
        events.append(target.end_day())
    return events


def clicks_by_group(events: list[Events], groups: int) -> np.ndarray:
    """Clicks per customer group ``id % groups``."""
    clicks = np.zeros(groups, dtype=np.int64)
    for day in events:
        clicks += np.bincount(day.customer[day.event == "click"] % groups, minlength=groups)
    return clicks


# --------------------------------------------------------------------------- defaults
def test_the_defaults_are_todays_world() -> None:
    """Naming every built-in message level's own semantics, and an explicit default
    Mechanism, reproduce the default world's events bit for bit."""
    own = {name: name for name in MESSAGES}
    plain = world(n=1_500, seed=3)
    explicit = world(n=1_500, seed=3, levels=LevelSemantics(messages=own), mechanism=Mechanism())
    rng = np.random.default_rng(0)
    allowed = np.flatnonzero(SPACE.allowed)
    for _ in range(8):
        ids = plain.visitors()
        np.testing.assert_array_equal(ids, explicit.visitors())
        chosen = rng.choice(allowed, size=ids.size)
        plain.act(ids, chosen)
        explicit.act(ids, chosen)
        assert_same_events([plain.end_day()], [explicit.end_day()])
    assert WorldConfig() == WorldConfig(levels=LevelSemantics(), mechanism=Mechanism())
    assert hash(WorldConfig(levels=LevelSemantics(messages=own))) is not None


# --------------------------------------------------------------------------- levels
def test_swapping_two_messages_swaps_what_they_do_and_nothing_else() -> None:
    """In the swapped world informational behaves as urgency does and urgency as
    informational: sending informational where the plain world sends urgency (and the other
    way round) gives the very same events, fatigue and nurture, so each level's measured
    click rate and fatigue are the other's. Educational, sent to a third of the customers in
    both worlds, is untouched, and so is every other level's truth."""
    swapped = LevelSemantics.swapped("message", "informational", "urgency")
    plain, other = world(drift=False), world(drift=False, levels=swapped)
    ids = np.arange(2_000)
    truth_plain = plain.expected_reward(ids, "click")
    truth_other = other.expected_reward(ids, "click")
    for index in np.flatnonzero(SPACE.allowed):
        message = SPACE.levels_of(int(index))["message"]
        partner = {"informational": "urgency", "urgency": "informational"}.get(message, message)
        np.testing.assert_array_equal(
            truth_other[:, same_action_other_message(int(index), partner)], truth_plain[:, index]
        )

    urgency, informational, educational = (
        action("urgency"),
        action("informational"),
        action("educational"),
    )
    plain_events = run(plain, {0: urgency, 1: informational, 2: educational}, 12)
    other_events = run(other, {0: informational, 1: urgency, 2: educational}, 12)
    assert_same_events(plain_events, other_events)
    # Measured: the plain world's urgency clicks are the swapped world's informational ones.
    clicks_plain, clicks_other = clicks_by_group(plain_events, 3), clicks_by_group(other_events, 3)
    np.testing.assert_array_equal(clicks_plain, clicks_other)
    assert clicks_plain[0] > 1.5 * clicks_plain[1]  # urgency (plain) out-clicks informational
    np.testing.assert_array_equal(plain.customers.fatigue, other.customers.fatigue)
    np.testing.assert_array_equal(plain.customers.nurture, other.customers.nurture)
    # The swap did something: the plain world's urgency group is the more tired one.
    group = np.arange(2_000) % 3
    assert (
        plain.customers.fatigue[group == 0].mean() > 2 * plain.customers.fatigue[group == 1].mean()
    )


def test_a_per_level_value_changes_that_value_only() -> None:
    """Urgency at half its fatigue multiplier (1.1 instead of 2.2): one urgency contact adds
    exactly half the fatigue, while clicks, events and every other level are unchanged."""
    halved = LevelSemantics(messages={"urgency": {"fatigue": 1.1}})
    assert halved.messages["urgency"] == {"fatigue": 1.1}
    plain, other = world(drift=False), world(drift=False, levels=halved)
    ids = np.arange(2_000)
    np.testing.assert_array_equal(
        plain.expected_reward(ids, "revenue_28d")[:, action("educational")],
        other.expected_reward(ids, "revenue_28d")[:, action("educational")],
    )
    np.testing.assert_array_equal(
        plain.expected_reward(ids, "click"), other.expected_reward(ids, "click")
    )
    choose = {0: action("urgency"), 1: action("educational")}
    first_plain, first_other = run(plain, choose, 1), run(other, choose, 1)
    assert_same_events(first_plain, first_other)
    contacted = plain.customers.fatigue > 0
    group = np.arange(2_000) % 2
    np.testing.assert_allclose(
        other.customers.fatigue[contacted & (group == 0)],
        0.5 * plain.customers.fatigue[contacted & (group == 0)],
        rtol=1e-12,
    )
    np.testing.assert_array_equal(
        other.customers.fatigue[group == 1], plain.customers.fatigue[group == 1]
    )


def test_channel_and_timing_values_by_name() -> None:
    """A night click shift of -1 moves exactly the night actions' click logit by -1; SMS at
    a fatigue multiplier of 0.5 (its own is 1.0) halves SMS contacts' fatigue only."""
    shifted = LevelSemantics(timings={"night": {"click": -1.0}}, channels={"sms": {"fatigue": 0.5}})
    plain, other = world(drift=False), world(drift=False, levels=shifted)
    ids = np.arange(500)
    p_plain, p_other = plain.expected_reward(ids, "click"), other.expected_reward(ids, "click")
    logit = np.log(p_other / (1 - p_other)) - np.log(p_plain / (1 - p_plain))
    night = np.array([SPACE.levels_of(a)["timing"] == "night" for a in range(SPACE.n_actions)])
    np.testing.assert_allclose(logit[:, night], -1.0, atol=1e-9)
    np.testing.assert_array_equal(p_other[:, ~night], p_plain[:, ~night])
    choose = {0: action("promotional", "sms"), 1: action("promotional", "email")}
    run(plain, choose, 1)
    run(other, choose, 1)
    group = np.arange(2_000) % 2
    np.testing.assert_allclose(
        other.customers.fatigue[group == 0], 0.5 * plain.customers.fatigue[group == 0]
    )
    np.testing.assert_array_equal(
        other.customers.fatigue[group == 1], plain.customers.fatigue[group == 1]
    )


def test_complete_semantics_values_replace_a_level() -> None:
    """A MessageSemantics replaces all of a level's values; the same values as the built-in
    level give the same world."""
    as_urgency = LevelSemantics(messages={"informational": KNOWN_MESSAGES["urgency"]})
    by_name = LevelSemantics(messages={"informational": "urgency"})
    assert as_urgency == by_name
    custom = LevelSemantics(
        messages={"promotional": MessageSemantics(click=0.4, accept=0.25, fatigue=0.3)},
        channels={"email": ChannelSemantics(android=0.5)},
        timings={"lunch": TimingSemantics(hour=13.0)},
    )
    changed = world(n=300, levels=custom).expected_reward(np.arange(300), "click")
    plain = world(n=300).expected_reward(np.arange(300), "click")
    untouched = np.array(
        [
            SPACE.levels_of(a)["channel"] != "email" and SPACE.levels_of(a)["timing"] != "lunch"
            for a in range(SPACE.n_actions)
        ]
    )
    np.testing.assert_array_equal(changed[:, untouched], plain[:, untouched])
    assert not np.array_equal(changed[:, ~untouched], plain[:, ~untouched])


# --------------------------------------------------------------------------- mechanism
def test_fatigue_response_moves_the_click_logit_by_exactly_its_change() -> None:
    """After the same contacts (which see no fatigue yet, so both worlds stay identical),
    doubling ``fatigue_response`` lowers every click logit by 0.3 F, F the fatigue."""
    plain = world(drift=False)
    other = world(drift=False, mechanism=Mechanism(fatigue_response=0.6))
    ids = np.arange(2_000)
    for target in (plain, other):
        target.act(ids, np.full(2_000, action("urgency")))
    np.testing.assert_array_equal(plain.customers.fatigue, other.customers.fatigue)
    p_plain, p_other = plain.expected_reward(ids, "click"), other.expected_reward(ids, "click")
    logit = np.log(p_other / (1 - p_other)) - np.log(p_plain / (1 - p_plain))
    expected = np.broadcast_to(-0.3 * plain.customers.fatigue[:, None], logit.shape)
    np.testing.assert_allclose(logit, expected, atol=1e-9)


def test_fatigue_half_life_sets_the_daily_decay() -> None:
    plain = world(drift=False)
    other = world(drift=False, mechanism=Mechanism(fatigue_half_life=3.5))
    run(plain, {0: action("urgency")}, 1)
    run(other, {0: action("urgency")}, 1)
    contacted = plain.customers.fatigue > 0
    assert contacted.sum() > 100
    ratio = other.customers.fatigue[contacted] / plain.customers.fatigue[contacted]
    np.testing.assert_allclose(ratio, 0.5 ** (1 / 3.5) / 0.5 ** (1 / 7), rtol=1e-12)


def test_without_fatigue_churn_contacts_tire_but_cannot_raise_churn() -> None:
    """``fatigue_churn = 0``: urgency by SMS at night to everyone for 20 days builds fatigue
    (and lowers clicks) as before, but, with common random numbers, nobody churns who would
    not have churned without contacts."""
    pushy = action("urgency", "sms", "night")
    calm = Mechanism(fatigue_churn=0.0)
    contacted, quiet = world(mechanism=calm), world(mechanism=calm)
    for _ in range(20):
        ids = np.flatnonzero(contacted.alive)
        contacted.act(ids, np.full(ids.size, pushy))
        contacted.end_day()
        quiet.end_day()
    assert contacted.customers.fatigue.mean() > 5.0
    churned_contacted = ~contacted.kpis()["retained"]
    churned_quiet = ~quiet.kpis()["retained"]
    assert churned_quiet.sum() > 10
    assert not (churned_contacted & ~churned_quiet).any()


def test_nurture_gain_zero_keeps_the_stock_empty() -> None:
    """``nurture_gain = 0``: read informational messages still lift engagement (their own
    effect) but add nothing to readiness."""
    plain = world(drift=False)
    other = world(drift=False, mechanism=Mechanism(nurture_gain=0.0))
    ids = np.arange(2_000)
    for target in (plain, other):
        target.act(ids, np.full(2_000, action("informational", "email")))
    assert plain.customers.nurture.max() > 0.0
    assert other.customers.nurture.max() == 0.0
    np.testing.assert_array_equal(plain.customers.engagement, other.customers.engagement)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Mechanism(fatigue_half_life=0.0),
            r"The 'fatigue_half_life' parameter of Mechanism must be a float in \[0.001, inf\]",
        ),
        (
            lambda: Mechanism(engagement_persistence=1.5),
            r"The 'engagement_persistence' parameter of Mechanism must be a float in \[0, 1\]",
        ),
        (
            lambda: MessageSemantics(fatigue=-1.0),
            r"The 'fatigue' parameter of MessageSemantics must be a float in \[0, 100\]",
        ),
        (
            lambda: TimingSemantics(hour=24.0),
            r"The 'hour' parameter of TimingSemantics must be a float in \[0, 24\)",
        ),
        (
            lambda: ChannelSemantics(trend="up"),  # type: ignore[arg-type]
            r"The 'trend' parameter of ChannelSemantics must be a float in \[-1, 1\]",
        ),
        (
            lambda: LevelSemantics(messages={"urgency": {"fatigue": -1.0}}),
            r"'messages' parameter of LevelSemantics: level 'urgency': The 'fatigue' "
            r"parameter of MessageSemantics must be a float in \[0, 100\]",
        ),
        (
            lambda: LevelSemantics(messages={"urgency": {"fatgue": 1.0}}),
            r"level 'urgency' sets \['fatgue'\], not fields of MessageSemantics",
        ),
        (
            lambda: LevelSemantics(channels={"sms": "carrier_pigeon"}),
            r"level 'sms' is given the semantics of 'carrier_pigeon', which is not a "
            r"built-in channel level",
        ),
        (
            lambda: LevelSemantics(timings={"night": 3}),
            r"level 'night' must map to a built-in level's name, a TimingSemantics",
        ),
        (
            lambda: WorldConfig(mechanism={"fatigue_churn": 0.0}),  # type: ignore[arg-type]
            r"The 'mechanism' parameter of WorldConfig must be a Mechanism",
        ),
        (
            lambda: WorldConfig(burn_in_days=-1),
            r"The 'burn_in_days' parameter of WorldConfig must be an int in \[0, 3650\]",
        ),
    ],
)
def test_bad_values_are_refused_by_name_with_their_range(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


@pytest.mark.parametrize("name", [item.name for item in fields(Mechanism)])
def test_every_mechanism_field_is_checked(name: str) -> None:
    with pytest.raises(ValueError, match=rf"The '{name}' parameter of Mechanism must be a float"):
        Mechanism(**{name: float("nan")})


def test_overrides_must_name_levels_of_the_space() -> None:
    with pytest.raises(ValueError, match=r"message levels \['urgent'\], but the message factor"):
        world(n=10, levels=LevelSemantics(messages={"urgent": "informational"}))
    from bandit import DecisionSpace

    with pytest.raises(ValueError, match="the decision space has no timing factor"):
        CustomerWorld(
            WorldConfig(n_customers=10, levels=LevelSemantics(timings={"night": {"click": 1}})),
            DecisionSpace({"arm": ["a", "b"]}),
            {},
        )
