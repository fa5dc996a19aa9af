"""A generic battery run over every registered policy (river's habit).

Probabilities are a distribution over eligible actions with the exploration floor; choices
respect masks and rules; propensities are exact; state round-trips; seeds reproduce;
batch updates equal row-by-row updates for the conjugate models; any batch size works.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_support import context_width
from scipy.stats import chi2

from bandit import POLICIES, DecisionSpace, make_policy

NAMES = sorted(POLICIES)
#: Policies whose choice probabilities are a deterministic function of state and context.
DETERMINISTIC = {"uniform", "fixed", "epsilon_greedy", "linucb"}

SPACES = {
    "one-arm": DecisionSpace({"arm": ["only"]}),
    "five-arms": DecisionSpace({"arm": [f"a{i}" for i in range(5)]}),
    "factored": DecisionSpace(
        {"offer": ["none", "bundle", "discount"], "channel": ["sms", "email", "push"]},
        rules=[{"offer": "bundle", "channel": "email"}, {"offer": "none", "channel": ["push"]}],
    ),
}


@dataclass
class Scenario:
    """A policy's construction arguments, training rows and one query batch with its mask."""

    name: str
    space: DecisionSpace
    n_context: int
    params: dict
    train: tuple[np.ndarray, np.ndarray, np.ndarray]
    X: np.ndarray
    mask: np.ndarray | None

    def build(self, seed: int = 0):
        return make_policy(
            self.name, space=self.space, n_context=self.n_context, seed=seed, **self.params
        )

    def trained(self, seed: int = 0):
        policy = self.build(seed)
        policy.update(*self.train)
        return policy

    @property
    def eligible(self) -> np.ndarray:
        allowed = np.broadcast_to(self.space.allowed, (self.X.shape[0], self.space.n_actions))
        return allowed if self.mask is None else self.mask & allowed


@st.composite
def scenarios(draw: st.DrawFn, name: str) -> Scenario:
    space = SPACES[draw(st.sampled_from(sorted(SPACES)))]
    n_context = context_width(name, space, draw(st.sampled_from([0, 1, 3])))
    params: dict = {}
    floor = draw(st.sampled_from([None, 0.0, 0.05, 0.5, 1.0]))
    if floor is not None:
        params["exploration_floor"] = floor
    if name in {"linucb", "linear_ts", "epsilon_greedy", "kalman_ts", "logistic_ts", "drift_ts"}:
        params["interactions"] = draw(st.booleans())
    if name == "fixed":
        params["action"] = draw(st.integers(0, space.n_actions - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    n_train = draw(st.integers(0, 30))
    allowed = np.flatnonzero(space.allowed)
    train = (
        rng.standard_normal((n_train, n_context)) * scale,
        rng.choice(allowed, n_train),
        (rng.random(n_train) < 0.5).astype(float),
    )
    n = draw(st.integers(0, 6))
    X = rng.standard_normal((n, n_context)) * scale
    mask = None
    if draw(st.booleans()):
        mask = rng.random((n, space.n_actions)) < draw(st.sampled_from([0.2, 0.6]))
        mask[np.arange(n), rng.choice(allowed, n)] = True  # every row keeps one eligible
    return Scenario(name, space, n_context, params, train, X, mask)


def battery(test):
    """Run ``test(scenario)`` for every registered policy with hypothesis-drawn scenarios."""

    @pytest.mark.parametrize("name", NAMES)
    @settings(max_examples=25, deadline=None)
    @given(data=st.data())
    def wrapper(name: str, data: st.DataObject) -> None:
        test(data.draw(scenarios(name)))

    wrapper.__name__ = test.__name__
    wrapper.__doc__ = test.__doc__
    return wrapper


@battery
def test_probabilities_are_a_floored_distribution_over_eligible_actions(s: Scenario) -> None:
    policy = s.trained()
    probabilities = policy.action_probabilities(s.X, s.mask)
    assert probabilities.shape == (s.X.shape[0], s.space.n_actions)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    assert (probabilities[~s.eligible] == 0.0).all()
    floor = policy.exploration_floor / s.eligible.sum(axis=1, keepdims=True)
    lower = np.broadcast_to(floor, probabilities.shape)[s.eligible]
    assert (probabilities[s.eligible] >= lower * (1 - 1e-12)).all()


@battery
def test_select_respects_masks_and_returns_valid_propensities(s: Scenario) -> None:
    decision = s.trained().select(s.X, s.mask)
    n = s.X.shape[0]
    assert decision.actions.shape == (n,)
    assert decision.propensities.shape == (n,)
    assert decision.actions.dtype == np.int64
    assert s.eligible[np.arange(n), decision.actions].all()
    assert ((decision.propensities > 0) & (decision.propensities <= 1)).all()


@battery
def test_propensity_is_the_probability_of_the_chosen_action(s: Scenario) -> None:
    """Exact for deterministic policies; Thompson propensities are at least the floor."""
    policy = s.trained()
    decision = policy.select(s.X, s.mask)
    rows = np.arange(s.X.shape[0])
    if s.name in DETERMINISTIC:
        probabilities = policy.action_probabilities(s.X, s.mask)
        np.testing.assert_array_equal(decision.propensities, probabilities[rows, decision.actions])
    else:
        floor = policy.exploration_floor / s.eligible.sum(axis=1)
        assert (decision.propensities >= floor * (1 - 1e-12)).all()


@battery
def test_state_round_trips_exactly(s: Scenario) -> None:
    policy = s.trained(seed=3)
    state = policy.get_state()
    assert all(isinstance(value, np.ndarray) for value in state.values())
    fresh = s.build(seed=3)
    fresh.set_state(state)
    again = fresh.get_state()
    assert sorted(again) == sorted(state)
    for key in state:
        np.testing.assert_array_equal(again[key], state[key])
    # The exported arrays are copies: changing them changes neither policy.
    for value in state.values():
        value[...] = 0
    for key, value in policy.get_state().items():
        np.testing.assert_array_equal(fresh.get_state()[key], value)
    # Training draws nothing from the generator, so the restored policy decides the same.
    first, second = policy.select(s.X, s.mask), fresh.select(s.X, s.mask)
    np.testing.assert_array_equal(first.actions, second.actions)
    np.testing.assert_array_equal(first.propensities, second.propensities)


@battery
def test_same_seed_same_decisions(s: Scenario) -> None:
    runs = []
    for _ in range(2):
        policy = s.build(seed=11)
        history = []
        for _round in range(3):
            decision = policy.select(s.X, s.mask)
            history.append((decision.actions, decision.propensities))
            policy.update(s.X, decision.actions, np.ones(s.X.shape[0]) * 0.5, decision.propensities)
        runs.append(history)
    for (a1, p1), (a2, p2) in zip(*runs, strict=True):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(p1, p2)


@battery
def test_empty_and_single_row_batches(s: Scenario) -> None:
    policy = s.trained()
    before = policy.get_state()
    empty = policy.select(np.zeros((0, s.n_context)))
    assert empty.actions.shape == (0,)
    assert empty.propensities.shape == (0,)
    assert policy.action_probabilities(np.zeros((0, s.n_context))).shape == (0, s.space.n_actions)
    policy.update(np.zeros((0, s.n_context)), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
    policy.update(np.zeros((0, s.n_context)), [], [])
    for key, value in policy.get_state().items():
        np.testing.assert_array_equal(value, before[key])
    one = policy.select(np.ones((1, s.n_context)))
    assert one.actions.shape == (1,)
    policy.update(np.ones((1, s.n_context)), one.actions, [1.0], one.propensities)
    assert int(policy.get_state()["n_updates"]) == int(before["n_updates"]) + 1


# -- batch equals sequential -----------------------------------------------------------------

CONJUGATE = {
    "linucb": {},
    "linear_ts": {},
    "epsilon_greedy": {},
    "kalman_ts": {"process_noise": 0.0, "forgetting": 1.0},
    "drift_ts": {"drift_rates": [0.0]},
    "beta_ts": {},
    "gaussian_ts": {},
}


@pytest.mark.parametrize("name", sorted(CONJUGATE))
@settings(max_examples=25, deadline=None)
@given(
    space_name=st.sampled_from(sorted(SPACES)),
    interactions=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 25),
)
def test_batch_update_equals_sequential(
    name: str, space_name: str, interactions: bool, seed: int, n: int
) -> None:
    space = SPACES[space_name]
    params = dict(CONJUGATE[name])
    if name not in {"beta_ts", "gaussian_ts"}:
        params["interactions"] = interactions
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    actions = rng.choice(np.flatnonzero(space.allowed), n)
    # Fractional rewards in [0, 1] for beta_ts; real-valued for the Gaussian models.
    rewards = rng.random(n).round(1) if name == "beta_ts" else rng.normal(0.5, 2.0, n)
    batch = make_policy(name, space=space, n_context=2, **params)
    sequential = make_policy(name, space=space, n_context=2, **params)
    batch.update(X, actions, rewards)
    for i in range(n):
        sequential.update(X[i : i + 1], actions[i : i + 1], rewards[i : i + 1])
    one, other = batch.get_state(), sequential.get_state()
    for key in one:
        np.testing.assert_allclose(one[key], other[key], rtol=1e-8, atol=1e-10)


# -- choice frequencies ----------------------------------------------------------------------


#: Pearson chi-square bound: the statistic exceeds it with probability 1e-4 when the
#: propensities are the choice probabilities (seeded, so a pass is reproducible).
CHI_SQUARE_LEVEL = 1e-4


def _trained(name: str, space: DecisionSpace) -> object:
    params = {"action": 4, "exploration_floor": 0.2} if name == "fixed" else {}
    if name in {"linucb", "epsilon_greedy"}:
        params["exploration_floor"] = 0.3  # spread a deterministic choice over several actions
    width = context_width(name, space, 2)
    policy = make_policy(name, space=space, n_context=width, seed=1, **params)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 2))
    # Beyond the first two columns, non-negative: the counts of a contact state.
    X = np.hstack([X, np.abs(rng.standard_normal((40, width - 2)))])
    policy.update(X, rng.choice(np.flatnonzero(space.allowed), 40), (rng.random(40) < 0.5) * 1.0)
    return policy


def _widened(name: str, space: DecisionSpace, contexts: np.ndarray) -> np.ndarray:
    """``contexts`` with the columns a policy needs beyond them (a contact state of 0.5s)."""
    extra = context_width(name, space, contexts.shape[1]) - contexts.shape[1]
    return np.hstack([contexts, np.full((contexts.shape[0], extra), 0.5)])


@pytest.mark.parametrize("name", NAMES)
def test_choice_frequencies_match_propensities(name: str) -> None:
    """One select of 3 x 4,000 rows (three contexts, two masks): within a context every row
    logs the same propensity for an action (a Thompson sampler's rows share their draws,
    ``bandit.montecarlo``), and the counts of each context's choices fit those propensities
    by Pearson's chi-square, the actions never chosen pooled into one cell of probability
    ``1 - sum q``. This is the property inverse-propensity weighting needs: given the draws,
    the logged propensity is the probability with which the action was chosen."""
    space = SPACES["factored"]
    policy = _trained(name, space)
    contexts = _widened(name, space, np.array([[0.3, -0.7], [-1.2, 0.4], [0.3, -0.7]]))
    masks = np.ones((3, space.n_actions), dtype=bool)
    masks[2, 0] = False
    per_context = 4_000
    group = np.repeat(np.arange(3), per_context)
    decision = policy.select(contexts[group], masks[group])
    for index in range(3):
        actions = decision.actions[group == index]
        propensities = decision.propensities[group == index]
        chosen, counts = np.unique(actions, return_counts=True)
        assert masks[index][chosen].all()
        assert space.allowed[chosen].all()
        logged = np.array([propensities[actions == action] for action in chosen], dtype=object)
        q = np.array([values[0] for values in logged])
        for action_propensities, value in zip(logged, q, strict=True):
            np.testing.assert_array_equal(action_propensities, value)
        rest = 1.0 - q.sum()
        assert rest > -1e-12
        observed = np.append(counts, 0)
        expected = per_context * np.append(q, max(rest, 0.0))
        cells = expected > 0
        statistic = (((observed - expected) ** 2)[cells] / expected[cells]).sum()
        assert observed[~cells].sum() == 0
        degrees = max(int(cells.sum()) - 1, 1)
        assert statistic < chi2.ppf(1.0 - CHI_SQUARE_LEVEL, degrees), (statistic, degrees)


@pytest.mark.parametrize("name", NAMES)
def test_inverse_propensity_weights_average_one(name: str) -> None:
    """Across separate one-row selects (fresh draws for a contextual sampler, one cached set
    per state for beta_ts / gaussian_ts): for every eligible action, the mean of
    ``1[a_t = a] / q_t`` over 3,000 calls estimates 1, as it does exactly when each ``q_t``
    is the probability the call chose ``a_t`` with. Within 5 standard errors."""
    space = SPACES["factored"]
    policy = _trained(name, space)
    context = _widened(name, space, np.array([[0.3, -0.7]]))
    calls = 3_000
    actions = np.empty(calls, dtype=np.int64)
    propensities = np.empty(calls)
    for call in range(calls):
        decision = policy.select(context)
        actions[call], propensities[call] = decision.actions[0], decision.propensities[0]
    eligible = np.flatnonzero(space.allowed)
    weights = (actions[:, None] == eligible[None, :]) / propensities[:, None]
    mean = weights.mean(axis=0)
    error = weights.std(axis=0, ddof=1) / np.sqrt(calls)
    assert (np.abs(mean - 1.0) <= 5 * error + 1e-9).all(), (mean, error)
