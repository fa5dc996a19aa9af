"""lookahead_ts with a gate: the short-term learner chooses until an always-valid test shows
delayed effects. Closed, it is linear Thompson sampling on the context without the contact
state, draw for draw; it opens where a level's contacts lower later responses and not where
nothing does; open, it is the lifetime policy; its state round-trips and bad input is refused
by name."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import BanditValueError, DecisionSpace
from bandit.policies.linear_ts import LinearTSPolicy
from bandit.policies.lookahead_ts import LookaheadTSPolicy
from bandit.policies.short_term_gate import ShortTermGate

#: msg {a, b} x chan {x, y}, (b, y) excluded: actions (a, x) = 0, (a, y) = 1, (b, x) = 2.
SPACE = DecisionSpace({"msg": ["a", "b"], "chan": ["x", "y"]}, rules=[{"msg": "b", "chan": "y"}])
#: One plain feature, then counts of a, b, x, y and the days since the previous contact.
D = 6


def _contexts(rng: np.random.Generator, n: int) -> np.ndarray:
    X = np.zeros((n, D))
    X[:, 0] = rng.random(n)
    X[:, 1:5] = rng.exponential(0.7, (n, 4))
    X[:, 5] = rng.uniform(1.0, 6.0, n)
    return X


def _funnel(
    rng: np.random.Generator, X: np.ndarray, actions: np.ndarray, harm: float
) -> np.ndarray:
    """0, 1 or 2 (click, click and purchase); the click's chance falls by ``harm`` per unit of
    message b's count."""
    click = 0.4 + 0.1 * X[:, 0] + 0.05 * (actions == 2) - harm * X[:, 2]
    clicked = rng.random(X.shape[0]) < np.clip(click, 0.02, 0.98)
    bought = clicked & (rng.random(X.shape[0]) < 0.3)
    return clicked + bought.astype(float)


def test_a_closed_gate_is_the_short_term_learner_draw_for_draw() -> None:
    """Same seed, same contexts, the short-term learner fed the click (the funnel capped at
    1): every batch's probabilities and actions are identical."""
    gated = LookaheadTSPolicy(SPACE, D, gate_level=1e-12, short_term_cap=1.0, n_samples=16, seed=7)
    plain = LinearTSPolicy(SPACE, 1, n_samples=16, seed=7)
    rng = np.random.default_rng(0)
    for _ in range(6):
        X = _contexts(rng, 50)
        ours, theirs = gated.select(X), plain.select(X[:, :1])
        np.testing.assert_array_equal(ours.actions, theirs.actions)
        np.testing.assert_array_equal(ours.probabilities, theirs.probabilities)
        rewards = _funnel(rng, X, ours.actions, harm=0.0)
        gated.update(X, ours.actions, rewards, ours.propensities)
        plain.update(X[:, :1], theirs.actions, np.minimum(rewards, 1.0), theirs.propensities)
    assert not gated.gate_open_


def test_a_short_term_reward_of_its_own_reaches_only_the_short_term_learner() -> None:
    """With ``short_term_reward = "own"`` the funnel teaches the lifetime model and not the
    short-term policy, the click teaches the short-term policy (whenever it is given, apart
    from the funnel) and not the lifetime model, and the closed gate still chooses draw for
    draw what linear Thompson sampling fed the click chooses."""
    gated = LookaheadTSPolicy(
        SPACE, D, gate_level=1e-12, short_term_reward="own", n_samples=16, seed=3
    )
    plain = LinearTSPolicy(SPACE, 1, n_samples=16, seed=3)
    rng = np.random.default_rng(1)
    for _ in range(5):
        X = _contexts(rng, 40)
        ours, theirs = gated.select(X), plain.select(X[:, :1])
        np.testing.assert_array_equal(ours.actions, theirs.actions)
        np.testing.assert_array_equal(ours.probabilities, theirs.probabilities)
        funnel = _funnel(rng, X, ours.actions, harm=0.0)
        clicks = np.minimum(funnel, 1.0)
        short_before = gated.get_state()["short_mean"].copy()
        gated.update(X, ours.actions, funnel, ours.propensities)
        np.testing.assert_array_equal(gated.get_state()["short_mean"], short_before)
        lifetime_before = gated.get_state()["mean"].copy()
        gated.update_short_term(X, ours.actions, clicks)
        np.testing.assert_array_equal(gated.get_state()["mean"], lifetime_before)
        plain.update(X[:, :1], theirs.actions, clicks, theirs.propensities)
    ours_state, theirs_state = gated.get_state(), plain.get_state()
    for name in ("mean", "cov", "noise_scale"):
        np.testing.assert_array_equal(ours_state[f"short_{name}"], theirs_state[name])


@pytest.mark.parametrize(
    "params", [{}, {"gate_level": 0.01}, {"gate_level": 0.01, "short_term_cap": 1.0}]
)
def test_short_term_rewards_are_refused_without_a_gate_that_takes_them(params: dict) -> None:
    policy = LookaheadTSPolicy(SPACE, D, **params)
    X = _contexts(np.random.default_rng(0), 3)
    with pytest.raises(BanditValueError) as error:
        policy.update_short_term(X, np.array([0, 1, 2]), np.ones(3))
    assert error.value.field == "short_term_reward"


def test_bad_short_term_rewards_are_refused_by_name() -> None:
    policy = LookaheadTSPolicy(SPACE, D, gate_level=0.01, short_term_reward="own")
    X = _contexts(np.random.default_rng(0), 3)
    with pytest.raises(BanditValueError) as error:
        policy.update_short_term(X, np.array([0, 1, 2]), np.array([1.0, np.nan, 0.0]))
    assert error.value.field == "rewards"
    with pytest.raises(BanditValueError) as error:
        policy.update_short_term(X[:, :2], np.array([0, 1, 2]), np.ones(3))
    assert error.value.field == "X"


def _learned(harm: float, seed: int, rows: int = 3000) -> LookaheadTSPolicy:
    """A gated policy after ``rows`` uniformly random contacts; its test is scaled to this
    world's differences (``M g`` of message b is about -0.3 per unit of harm 0.1)."""
    gated = LookaheadTSPolicy(
        SPACE, D, gate_level=0.01, gate_scale=0.2, short_term_cap=1.0, seed=seed
    )
    rng = np.random.default_rng(seed)
    for _ in range(rows // 500):
        X = _contexts(rng, 500)
        actions = rng.integers(0, 3, 500)
        gated.update(X, actions, _funnel(rng, X, actions, harm), np.full(500, 1 / 3))
    return gated


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_gate_opens_on_a_delayed_harm_and_not_without_one(seed: int) -> None:
    harmed = _learned(harm=0.1, seed=seed)
    assert harmed.gate_open_
    assert float(harmed.get_state()["gate_evidence"]) >= np.log(1 / 0.01)
    assert not _learned(harm=0.0, seed=seed).gate_open_


def test_an_open_gate_chooses_as_the_lifetime_policy_and_stays_open() -> None:
    gated = _learned(harm=0.1, seed=0)
    lifetime = LookaheadTSPolicy(SPACE, D, seed=0)
    own = {name: value for name, value in gated.get_state().items() if not _gate_key(name)}
    lifetime.set_state(own)
    X = _contexts(np.random.default_rng(9), 40)
    gated.rng_, lifetime.rng_ = np.random.default_rng(5), np.random.default_rng(5)
    ours, theirs = gated.select(X), lifetime.select(X)
    np.testing.assert_array_equal(ours.actions, theirs.actions)
    np.testing.assert_array_equal(ours.probabilities, theirs.probabilities)
    rng = np.random.default_rng(4)
    for _ in range(4):  # evidence of no harm later does not close it
        X = _contexts(rng, 500)
        actions = rng.integers(0, 3, 500)
        gated.update(X, actions, _funnel(rng, X, actions, 0.0), np.full(500, 1 / 3))
    assert gated.gate_open_


def _gate_key(name: str) -> bool:
    return name.startswith("short_") or name.startswith("gate_")


def test_the_state_round_trips_with_the_gate_and_the_short_term_policy() -> None:
    gated = _learned(harm=0.1, seed=1)
    state = gated.get_state()
    assert {"gate_open", "gate_evidence", "short_mean", "short_cov"} <= set(state)
    fresh = LookaheadTSPolicy(SPACE, D, gate_level=0.01, gate_scale=0.2, seed=1)
    fresh.set_state(state)
    assert fresh.gate_open_
    for name, value in fresh.get_state().items():
        np.testing.assert_array_equal(value, state[name])
    closed = _learned(harm=0.0, seed=1)
    fresh.set_state(closed.get_state())
    assert not fresh.gate_open_


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"gate_open": np.array(0.5)}, "state.gate_open"),
        ({"gate_evidence": np.array(np.nan)}, "state.gate_evidence"),
    ],
)
def test_a_bad_gate_state_is_refused_by_name(change: dict, field: str) -> None:
    state = {**_learned(harm=0.0, seed=2, rows=500).get_state(), **change}
    fresh = LookaheadTSPolicy(SPACE, D, gate_level=0.01, seed=2)
    with pytest.raises(BanditValueError) as error:
        fresh.set_state(state)
    assert error.value.field == field


def test_a_state_without_the_short_term_policy_is_refused() -> None:
    plain_state = LookaheadTSPolicy(SPACE, D, seed=0).get_state()
    with pytest.raises(BanditValueError, match="short_mean"):
        LookaheadTSPolicy(SPACE, D, gate_level=0.01, seed=0).set_state(plain_state)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"gate_level": 1.0}, "gate_level"),
        ({"gate_level": -0.1}, "gate_level"),
        ({"gate_level": "often"}, "gate_level"),
        ({"gate_level": 0.01, "gate_scale": 0.0}, "gate_scale"),
        ({"gate_level": 0.01, "short_term_cap": "click"}, "short_term_cap"),
        ({"gate_level": 0.01, "short_term_reward": "click"}, "short_term_reward"),
        (
            {"gate_level": 0.01, "short_term_reward": "own", "short_term_cap": 1.0},
            "short_term_cap",
        ),
    ],
)
def test_bad_gate_parameters_are_refused_by_name(params: dict, field: str) -> None:
    with pytest.raises(BanditValueError) as error:
        LookaheadTSPolicy(SPACE, D, **params)
    assert error.value.field == field


def test_the_split_of_alpha_is_fixed_by_the_tests_planned() -> None:
    """At 5% the bar is log 20 for one test and log 40 for two: evidence of 3.2 opens a gate
    that runs one test, not one that runs two, even while only one has data."""
    short_term = LinearTSPolicy(SPACE, 1)
    one, two = ShortTermGate(short_term, 0.05, None), ShortTermGate(short_term, 0.05, None)
    one.look([3.2], tests=1)
    two.look([3.2], tests=2)
    assert one.is_open
    assert not two.is_open
    two.look([3.7], tests=2)
    assert two.is_open


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_pooled_layout_and_a_churn_charge_are_tested_too(seed: int) -> None:
    """With pooled state effects ``M g`` comes from the pooled model, and with a churn charge
    its test splits alpha in two; the gate still opens on a harm of 0.2 and not on none (the
    churn labels carry no effect)."""

    def learned(harm: float) -> LookaheadTSPolicy:
        policy = LookaheadTSPolicy(
            SPACE,
            D,
            gate_level=0.01,
            gate_scale=0.2,
            short_term_cap=1.0,
            state_effects="pooled",
            churn_value=1.0,
            seed=seed,
        )
        rng = np.random.default_rng(seed)
        for _ in range(6):
            X = _contexts(rng, 500)
            actions = rng.integers(0, 3, 500)
            policy.update(X, actions, _funnel(rng, X, actions, harm), np.full(500, 1 / 3))
            policy.update_churn(X, actions, (rng.random(500) < 0.01).astype(float))
        return policy

    assert learned(0.2).gate_open_
    assert not learned(0.0).gate_open_


def test_a_bad_short_term_state_is_refused_under_its_stored_name() -> None:
    state = _learned(harm=0.0, seed=2, rows=500).get_state()
    state["short_mean"] = state["short_mean"][:-1]
    with pytest.raises(BanditValueError) as error:
        LookaheadTSPolicy(SPACE, D, gate_level=0.01, seed=2).set_state(state)
    assert error.value.field == "state.short_mean"


def test_the_state_keys_are_what_get_state_exports() -> None:
    for policy in (
        LookaheadTSPolicy(SPACE, D, seed=0),
        LookaheadTSPolicy(SPACE, D, gate_level=0.01, churn_value=1.0, seed=0),
        LinearTSPolicy(SPACE, 1),
    ):
        assert policy.state_keys() == set(policy.get_state())
