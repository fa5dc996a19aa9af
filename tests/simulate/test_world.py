"""The customer-lifetime world: deterministic under a seed, mechanisms that do what they say
when switched on and nothing when switched off, drift that moves the best action, a truth
that matches what the world then does, consistent events and spec-valid contexts.

Worlds here share a seed with their comparison world, so both see the same customers and
the same random numbers (common random numbers): differences come from what was sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bandit import DecisionSpace
from experiments.simulate import EVENT_NAMES, CustomerWorld, Events, WorldConfig
from experiments.spec import NumericField, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "examples" / "engagement.toml")
SPACE = SPEC.decision_space()
ALLOWED = np.flatnonzero(SPACE.allowed)


def make_world(n: int = 2_000, seed: int = 0, **knobs: Any) -> CustomerWorld:
    return CustomerWorld(WorldConfig(n_customers=n, seed=seed, **knobs), SPACE, SPEC.context)


def action(offer: str, message: str, channel: str, timing: str) -> int:
    return SPACE.index_of(
        {"offer": offer, "message": message, "channel": channel, "timing": timing}
    )


def run_random(world: CustomerWorld, days: int, seed: int = 1) -> list[Events]:
    """Contact every visitor with a uniformly random allowed action for ``days`` days."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(days):
        ids = world.visitors()
        world.act(ids, rng.choice(ALLOWED, size=ids.shape[0]))
        out.append(world.end_day())
    return out


def contact_everyone(world: CustomerWorld, chosen: int, days: int) -> list[Events]:
    out = []
    for _ in range(days):
        ids = np.flatnonzero(world.alive)
        world.act(ids, np.full(ids.shape[0], chosen))
        out.append(world.end_day())
    return out


def idle(world: CustomerWorld, days: int) -> list[Events]:
    return [world.end_day() for _ in range(days)]


def count(events: list[Events], name: str) -> int:
    return int(sum((day.event == name).sum() for day in events))


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_events_and_contexts() -> None:
    first, second = make_world(seed=3), make_world(seed=3)
    for a, b in zip(run_random(first, 12), run_random(second, 12), strict=True):
        for name in ("customer", "event", "value", "hour"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(first.visitors(), second.visitors())
    assert first.contexts(first.visitors()) == second.contexts(second.visitors())
    for key, value in first.kpis().items():
        np.testing.assert_array_equal(value, second.kpis()[key])


def test_different_seeds_differ() -> None:
    first, second = make_world(seed=1), make_world(seed=2)
    assert first.contexts(np.arange(50)) != second.contexts(np.arange(50))
    a, b = run_random(first, 5), run_random(second, 5)
    assert not np.array_equal(a[-1].value, b[-1].value)
    assert not np.array_equal(first.kpis()["revenue"], second.kpis()["revenue"])


# --------------------------------------------------------------------------- fatigue
@pytest.mark.parametrize("fatigue", [False, True])
def test_heavy_contacting_raises_churn_only_through_fatigue(fatigue: bool) -> None:
    """Urgency by SMS at night, every day, to everyone, for 20 days, against no contact.

    Without fatigue nothing a contact does can raise the hazard (accepted offers only lower
    it), and with common random numbers the contacted world's churners are a subset of the
    quiet world's. With fatigue the hazard is ``h0 (1 + 0.15 F)`` and F builds up to dozens.
    """
    pushy = action("data_bundle_5gb", "urgency", "sms", "night")
    contacted, quiet = make_world(fatigue=fatigue), make_world(fatigue=fatigue)
    contact_everyone(contacted, pushy, 20)
    idle(quiet, 20)
    churned_contacted = ~contacted.kpis()["retained"]
    churned_quiet = ~quiet.kpis()["retained"]
    assert churned_quiet.sum() > 20
    if fatigue:
        assert churned_contacted.sum() > 2 * churned_quiet.sum()
    else:
        assert not (churned_contacted & ~churned_quiet).any()
        assert churned_contacted.sum() <= churned_quiet.sum()


def test_fatigue_lowers_response_to_the_next_contact() -> None:
    pushy = action("discount_20", "urgency", "sms", "night")
    fresh, tired = make_world(), make_world()
    idle(fresh, 10)
    contact_everyone(tired, pushy, 10)
    ids = np.flatnonzero(fresh.alive & tired.alive)
    assert tired.expected_reward(ids, "click")[:, pushy].mean() < (
        0.7 * fresh.expected_reward(ids, "click")[:, pushy].mean()
    )


# --------------------------------------------------------------------------- nurturing
@pytest.mark.parametrize("nurturing", [False, True])
def test_informational_messages_raise_later_accepts_only_by_nurturing(nurturing: bool) -> None:
    """Two weeks of informational e-mails with no offer, then everyone gets the same offer.

    Fatigue is off in both worlds so that nurturing is the only path. Off: the e-mails change
    no hidden state, so the later accept probabilities and accept events are identical to
    the never-mailed world's. On: readiness and engagement rose, so both are higher.
    """
    mail = action("none", "informational", "email", "evening")
    offer = action("data_bundle_1gb", "personalised", "push", "evening")
    mailed = make_world(nurturing=nurturing, fatigue=False)
    unmailed = make_world(nurturing=nurturing, fatigue=False)
    contact_everyone(mailed, mail, 14)
    idle(unmailed, 14)
    ids = np.flatnonzero(mailed.alive & unmailed.alive)
    p_mailed = mailed.expected_reward(ids, "accept")[:, offer]
    p_unmailed = unmailed.expected_reward(ids, "accept")[:, offer]
    mailed.act(ids, np.full(ids.shape[0], offer))
    unmailed.act(ids, np.full(ids.shape[0], offer))
    accepts_mailed = count(idle(mailed, 5), "accept")
    accepts_unmailed = count(idle(unmailed, 5), "accept")
    if nurturing:
        assert p_mailed.mean() > 1.3 * p_unmailed.mean()
        assert accepts_mailed > 1.2 * accepts_unmailed
    else:
        np.testing.assert_array_equal(p_mailed, p_unmailed)
        assert accepts_mailed == accepts_unmailed


# --------------------------------------------------------------------------- drift
def best_actions(world: CustomerWorld, ids: np.ndarray) -> np.ndarray:
    value = world.expected_reward(ids, "click")
    value[:, ~SPACE.allowed] = -np.inf
    return value.argmax(axis=1)


@pytest.mark.parametrize("drift", [False, True])
def test_drift_changes_the_best_action_over_time(drift: bool) -> None:
    """Without contacts, the share of customers whose click-best action on day 0 is no
    longer best on day 28 is small without drift (engagement noise only) and large with it."""
    world = make_world(n=600, seed=4, drift=drift)
    ids = np.arange(300)
    before = best_actions(world, ids)
    idle(world, 28)
    alive = world.alive[ids]
    changed = (best_actions(world, ids) != before)[alive].mean()
    if drift:
        assert changed > 0.5
    else:
        assert changed < 0.25


# --------------------------------------------------------------------------- truth
@pytest.mark.parametrize("kind", ["click", "accept", "revenue_14d", "retained_30d"])
def test_expected_reward_shape_and_range(kind: str) -> None:
    world = make_world(n=500, churn_scale=30.0)
    idle(world, 5)
    ids = np.arange(500)
    value = world.expected_reward(ids, kind)
    assert value.shape == (500, SPACE.n_actions)
    assert value.dtype == np.float64
    assert np.isfinite(value).all()
    assert (value >= 0.0).all()
    if kind != "revenue_14d":
        assert (value <= 1.0).all()
    churned = ~world.alive
    assert churned.any()
    assert (value[churned] == 0.0).all()
    assert (value[~churned].max(axis=1) > 0.0).all()


def test_expected_reward_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="'kind' must be"):
        make_world(n=10).expected_reward(np.arange(3), "revenue")


def test_click_argmax_of_the_truth_beats_random() -> None:
    """The truth is the truth: acting on its click argmax gets clicks several times as
    often as random actions on the same customers, days and random numbers."""
    oracle, uniform = make_world(seed=5), make_world(seed=5)
    rng = np.random.default_rng(0)
    clicks = {}
    for name, world in (("oracle", oracle), ("random", uniform)):
        events = []
        for _ in range(3):
            ids = world.visitors()
            if name == "oracle":
                chosen = best_actions(world, ids)
            else:
                chosen = rng.choice(ALLOWED, size=ids.shape[0])
            world.act(ids, chosen)
            events.append(world.end_day())
        events += idle(world, 2)
        clicks[name] = count(events, "click")
    assert clicks["random"] > 0
    assert clicks["oracle"] > 3 * clicks["random"]


def test_window_truth_matches_what_the_world_does() -> None:
    """Send everyone one action, then nothing: the mean truth predicts the realised click
    and accept rates and their sum (the funnel), the revenue booked in 14 days and the share
    still active after 30.

    Tolerances are a few standard errors at this size; revenue is within 2%.
    """
    chosen = action("data_bundle_1gb", "personalised", "push", "evening")
    world = make_world(n=8_000, seed=6)
    ids = np.flatnonzero(world.alive)
    expected = {
        kind: world.expected_reward(ids, kind)[:, chosen].mean()
        for kind in ("click", "accept", "funnel", "revenue_14d", "retained_30d")
    }
    world.act(ids, np.full(ids.shape[0], chosen))
    events = idle(world, 30)
    revenue = sum(day.value[day.event == "revenue"].sum() for day in events[:14]) / ids.size
    assert count(events, "click") / ids.size == pytest.approx(expected["click"], abs=0.006)
    assert count(events, "accept") / ids.size == pytest.approx(expected["accept"], abs=0.005)
    steps = count(events, "click") + count(events, "accept")  # the funnel's two steps
    assert steps / ids.size == pytest.approx(expected["funnel"], abs=0.01)
    assert revenue == pytest.approx(expected["revenue_14d"], rel=0.02)
    assert world.alive[ids].mean() == pytest.approx(expected["retained_30d"], abs=0.008)


# --------------------------------------------------------------------------- events and kpis
def test_events_are_consistent_and_churned_customers_fall_silent() -> None:
    world = make_world(n=1_500, churn_scale=15.0)
    days = run_random(world, 25)
    churn_day = np.full(1_500, -1)
    churn_hour = np.full(1_500, np.nan)
    revenue = np.zeros(1_500)
    accepts = np.zeros(1_500, dtype=np.int64)
    for day, events in enumerate(days):
        assert set(np.unique(events.event)) <= set(EVENT_NAMES)
        assert events.customer.dtype == np.int64
        assert events.value.dtype == np.float64
        assert events.hour.dtype == np.float64
        assert ((events.hour >= 0.0) & (events.hour < 24.0)).all()
        assert (np.diff(events.hour) >= 0.0).all()
        assert (events.value[np.isin(events.event, ["revenue", "usage"])] >= 0.0).all()
        assert (events.value[np.isin(events.event, ["click", "accept", "churn"])] == 1.0).all()
        gone = churn_day >= 0
        assert not gone[events.customer].any(), f"events after churn on day {day}"
        leaving = events.event == "churn"
        who = events.customer[leaving]
        assert np.unique(who).size == who.size
        churn_day[who] = day
        churn_hour[who] = events.hour[leaving]
        late = (churn_day[events.customer] == day) & (events.hour > churn_hour[events.customer])
        assert not late.any(), "events after the churn hour"
        is_revenue = events.event == "revenue"
        np.add.at(revenue, events.customer[is_revenue], events.value[is_revenue])
        np.add.at(accepts, events.customer[events.event == "accept"], 1)
        visitors = world.visitors() if day == len(days) - 1 else None
        if visitors is not None:
            assert not gone[visitors].any()
    assert (churn_day >= 0).sum() > 50
    kpis = world.kpis()
    assert set(kpis) >= {"revenue", "retained", "contacts", "accepts"}
    for value in kpis.values():
        assert value.shape == (1_500,)
    np.testing.assert_allclose(kpis["revenue"], revenue)
    np.testing.assert_array_equal(kpis["accepts"], accepts)
    np.testing.assert_array_equal(kpis["retained"], churn_day < 0)
    np.testing.assert_array_equal(kpis["churn_day"], churn_day)
    assert kpis["retained"].dtype == bool
    assert kpis["contacts"].sum() > 0
    assert (kpis["contacts"] >= kpis["accepts"]).all()
    assert not np.isin(world.visitors(), np.flatnonzero(churn_day >= 0)).any()
    churned = np.flatnonzero(churn_day >= 0)[:3]
    with pytest.raises(ValueError, match="churned customers cannot be contacted"):
        world.act(churned, np.full(3, ALLOWED[0]))


def test_act_validates_its_input() -> None:
    world = make_world(n=50)
    with pytest.raises(ValueError, match="ids in"):
        world.act(np.array([50]), np.array([0]))
    with pytest.raises(ValueError, match="indices in"):
        world.act(np.array([1]), np.array([SPACE.n_actions]))
    with pytest.raises(ValueError, match="repeat"):
        world.act(np.array([1, 1]), np.array([0, 0]))
    world.act(np.array([1, 2]), np.array([0, -1]))
    with pytest.raises(ValueError, match="once a day"):
        world.act(np.array([1]), np.array([0]))
    world.act(np.array([2]), np.array([0]))  # -1 was no contact
    assert world.kpis()["contacts"][[1, 2]].tolist() == [1, 1]


def test_responses_follow_the_visit() -> None:
    """A decision logged at the visit hour precedes every response to it."""
    world = make_world(n=3_000)
    ids = world.visitors()
    visit = world.visit_hours(ids)
    world.act(ids, np.full(ids.shape[0], action("discount_20", "urgency", "push", "morning")))
    events = world.end_day()
    responses = np.isin(events.event, ["click", "accept"])
    assert responses.any()
    position = np.searchsorted(ids, events.customer[responses])
    assert (events.hour[responses] > visit[position]).all()


# --------------------------------------------------------------------------- contexts
def test_contexts_validate_against_the_flagship_spec() -> None:
    world = make_world(n=2_000)
    for _ in range(4):
        ids = world.visitors()
        contexts = world.contexts(ids)
        assert len(contexts) == ids.size
        encoded = SPEC.encode_contexts(contexts)
        assert encoded.shape == (ids.size, SPEC.n_context)
        assert set(contexts[0]) == set(SPEC.context)
        for value in contexts[0].values():
            assert type(value) in (str, float, bool)
        world.act(ids, np.random.default_rng(0).choice(ALLOWED, size=ids.size))
        world.end_day()


def test_contexts_follow_the_simulated_series() -> None:
    world = make_world(n=300)
    idle(world, 3)
    ids = np.arange(300)
    rows = world.contexts(ids)
    usage_7d = np.array([row["usage_7d"] for row in rows])
    usage_30d = np.array([row["usage_30d"] for row in rows])
    assert (usage_30d >= usage_7d).all()
    hours = np.array([row["local_hour"] for row in rows])
    assert set(np.unique(hours)) <= set(range(24))
    assert rows[0]["days_since_contact"] >= 3


def test_unknown_fields_get_noise_and_known_names_must_keep_their_type() -> None:
    data = {
        "key": "other",
        "factors": {"arm": ["a", "b", "c"], "tone": ["warm", "dry"]},
        "context": {
            "device": {"type": "categorical", "levels": ["ios", "other"]},
            "spend_14d": {"type": "numeric", "min": 0},
            "score": {"type": "numeric", "min": 0, "max": 5},
            "vip": {"type": "boolean"},
            "segment": {"type": "categorical", "levels": ["x", "y"]},
            "unbounded": {"type": "numeric"},
        },
        "policy": {"name": "linear_ts"},
        "reward": {"kind": "sum", "event": "revenue", "window": "14d"},
    }
    spec = parse_spec(data)
    world = CustomerWorld(WorldConfig(n_customers=400), spec.decision_space(), spec.context)
    for _ in range(2):
        ids = world.visitors()
        spec.encode_contexts(world.contexts(ids))
        world.act(ids, np.random.default_rng(0).integers(0, 6, size=ids.size))
        world.end_day()
    rows = world.contexts(np.arange(400))
    assert {row["device"] for row in rows} == {"ios", "other"}
    assert all(0.0 <= row["score"] <= 5.0 for row in rows)
    assert world.contexts(np.arange(5)) == world.contexts(np.arange(5))

    wrong = {"device": NumericField(type="numeric")}
    with pytest.raises(ValueError, match="context field 'device'"):
        CustomerWorld(WorldConfig(n_customers=10), spec.decision_space(), wrong)


def test_any_decision_space_works() -> None:
    """Unknown factors and levels get seeded effects; a space with no offer factor still
    produces responses (every action carries one generic product)."""
    space = DecisionSpace({"arm": ["a", "b", "c", "d"]})
    world = CustomerWorld(WorldConfig(n_customers=3_000, seed=2), space, {})
    assert world.contexts(np.arange(2)) == [{}, {}]
    clicks = 0
    for _ in range(5):
        ids = world.visitors()
        world.act(ids, np.arange(ids.size) % 4)
        clicks += (world.end_day().event == "click").sum()
    assert clicks > 0
    value = world.expected_reward(np.arange(10), "click")
    assert value.shape == (10, 4)
    assert not np.allclose(value[:, 0], value[:, 1])


# --------------------------------------------------------------------------- configuration
def test_config_errors_name_the_parameter() -> None:
    with pytest.raises(ValueError, match=r"The 'visit_rate' parameter of WorldConfig"):
        WorldConfig(visit_rate=1.5)
    with pytest.raises(ValueError, match=r"The 'n_customers' parameter of WorldConfig"):
        WorldConfig(n_customers=0)
    with pytest.raises(ValueError, match=r"The 'fatigue' parameter of WorldConfig"):
        WorldConfig(fatigue="yes")  # type: ignore[arg-type]


def test_public_names() -> None:
    import experiments.simulate as simulate

    assert set(simulate.__all__) >= {"WorldConfig", "Events", "CustomerWorld"}
    assert Events.empty().customer.shape == (0,)
