"""Propensity-centred contact counts: each level's marginal chance of being sent
(bandit.contact_state.level_marginals), the expected counts they decay into
(ContactDecay.record_amounts), the randomised part R = c - E having mean zero whoever the
customer is, and lookahead_ts's pooled model reading the effect of a send from R with E as a
control, where the raw counts read who the customer is as an effect."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import BanditValueError, DecisionSpace
from bandit.churn import ridge_solve
from bandit.contact_state import (
    ContactDecay,
    level_columns,
    level_incidence,
    level_marginals,
)
from bandit.policies.lookahead_ts import LookaheadTSPolicy


def test_marginals_by_hand() -> None:
    """Factors m = [x, y], c = [e, s]; actions xe, xs, ye, ys (c fastest) with
    P = [0.1, 0.2, 0.3, 0.4]: x 0.1 + 0.2 = 0.3, y 0.7, e 0.1 + 0.3 = 0.4, s 0.6. A rule
    excluding ys leaves it probability 0 in the second row, uniform over the other three:
    x 2/3, y 1/3, e 2/3, s 1/3."""
    space = DecisionSpace({"m": ["x", "y"], "c": ["e", "s"]}, rules=[{"m": "y", "c": "s"}])
    np.testing.assert_array_equal(
        level_incidence(space), [[1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 1]]
    )
    P = np.array([[0.1, 0.2, 0.3, 0.4], [1 / 3, 1 / 3, 1 / 3, 0.0]])
    np.testing.assert_allclose(
        level_marginals(space, P),
        [[0.3, 0.7, 0.4, 0.6], [2 / 3, 1 / 3, 2 / 3, 1 / 3]],
        rtol=0,
        atol=1e-15,
    )
    with pytest.raises(BanditValueError, match="'probabilities' must have shape"):
        level_marginals(space, np.ones((2, 3)))
    with pytest.raises(BanditValueError, match="finite and >= 0"):
        level_marginals(space, -P)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_marginals_are_the_chance_of_each_level(seed: int) -> None:
    """Each factor's marginals sum to 1, and ``p_l`` is the sum of the probabilities of the
    actions whose name holds level ``l`` (recounted from the action names)."""
    rng = np.random.default_rng(seed)
    space = DecisionSpace({"m": ["a", "b", "c"], "c": ["e", "s"], "t": ["d", "n"]})
    P = rng.dirichlet(np.ones(space.n_actions), size=3)
    marginals = level_marginals(space, P)
    np.testing.assert_allclose(marginals[:, :3].sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(marginals[:, 3:5].sum(axis=1), 1.0, rtol=1e-12)
    levels = [f"{f}={lv}" for f, names in space.factors.items() for lv in names]
    for column, level in enumerate(levels):
        holding = [a for a in range(space.n_actions) if level in space.action_name(a).split("|")]
        np.testing.assert_allclose(marginals[:, column], P[:, holding].sum(axis=1), rtol=1e-12)


def test_record_amounts_with_indicators_equals_record() -> None:
    """One-hot amounts fold in exactly what ``record`` folds in, in any split of the batch."""
    rng = np.random.default_rng(0)
    space = DecisionSpace({"m": ["x", "y", "z"], "c": ["e", "s"]})
    decay = ContactDecay(half_life=5.0)
    n = 40
    who, when = rng.integers(0, 6, n), rng.uniform(-20, 0, n)
    actions = rng.integers(0, space.n_actions, n)
    start = decay.initial_state(6, 5)
    counts = decay.record(start, who, when, level_columns(space, actions))
    amounts = level_incidence(space)[actions]
    whole = decay.record_amounts(start, who, when, amounts)
    split = decay.record_amounts(start, who[:13], when[:13], amounts[:13])
    split = decay.record_amounts(split, who[13:], when[13:], amounts[13:])
    for other in (whole, split):
        np.testing.assert_allclose(other.counts, counts.counts, rtol=1e-13)
        np.testing.assert_array_equal(other.last_contact, counts.last_contact)
    with pytest.raises(BanditValueError, match="'amounts' must have shape"):
        decay.record_amounts(start, who, when, amounts[:, :3])
    with pytest.raises(BanditValueError, match="'amounts' must be finite and non-negative"):
        decay.record_amounts(start, who, when, -amounts)


def test_centred_counts_by_hand() -> None:
    """Half-life 7. Contacts on days 0 and 7 valued on day 14 weigh 1/4 and 1/2. The first
    sent (x, e) with marginals [0.2, 0.8 | 0.6, 0.4], the second (y, e) with
    [0.5, 0.5 | 0.9, 0.1]; a third on day 14 sent (y, s) with [0.1, 0.9 | 0.5, 0.5]:

        c = [1/4, 1/2 + 1, 1/4 + 1/2, 1]         = [0.25, 1.5, 0.75, 1]
        E = 1/4 [0.2, 0.8, 0.6, 0.4] + 1/2 [0.5, 0.5, 0.9, 0.1] + [0.1, 0.9, 0.5, 0.5]
          = [0.05 + 0.25 + 0.1, 0.2 + 0.25 + 0.9, 0.15 + 0.45 + 0.5, 0.1 + 0.05 + 0.5]
          = [0.4, 1.35, 1.1, 0.65]
        R = c - E = [-0.15, 0.15, -0.35, 0.35]   (within each factor R sums to 0)."""
    space = DecisionSpace({"m": ["x", "y"], "c": ["e", "s"]})
    decay = ContactDecay(half_life=7.0)
    actions = np.array(
        [
            space.index_of({"m": "x", "c": "e"}),
            space.index_of({"m": "y", "c": "e"}),
            space.index_of({"m": "y", "c": "s"}),
        ]
    )
    marginals = np.array([[0.2, 0.8, 0.6, 0.4], [0.5, 0.5, 0.9, 0.1], [0.1, 0.9, 0.5, 0.5]])
    who, when = np.zeros(3, dtype=np.int64), np.array([0.0, 7.0, 14.0])
    start = decay.initial_state(1, 4)
    c = decay.record(start, who, when, level_columns(space, actions)).counts[0]
    E = decay.record_amounts(start, who, when, marginals).counts[0]
    np.testing.assert_allclose(c, [0.25, 1.5, 0.75, 1.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(E, [0.4, 1.35, 1.1, 0.65], rtol=0, atol=1e-15)
    np.testing.assert_allclose(c - E, [-0.15, 0.15, -0.35, 0.35], rtol=0, atol=1e-15)


def _history(
    n: int, rng: np.random.Generator, night_owl: np.ndarray, contacts: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's decayed counts ``c`` and expected counts ``E`` ``(n, 2)`` (levels day,
    night; half-life 7) on day 28 after ``contacts`` contacts at uniform times in [0, 28),
    sent at night with a chance the policy learned from who the customer is and that
    drifts over time: ``0.2 + 0.6 owl`` on day 0 moving to ``0.3 + 0.4 owl`` on day 28."""
    times = rng.uniform(0.0, 28.0, size=(n, contacts))
    p_night = (0.2 + 0.6 * night_owl[:, None]) + (0.1 - 0.2 * night_owl[:, None]) * times / 28
    night = rng.random((n, contacts)) < p_night
    weights = np.exp2(-(28.0 - times) / 7.0)
    c = np.column_stack([(weights * ~night).sum(axis=1), (weights * night).sum(axis=1)])
    E = np.column_stack([(weights * (1 - p_night)).sum(axis=1), (weights * p_night).sum(axis=1)])
    return c, E


def test_the_randomised_part_has_mean_zero_whoever_the_customer_is() -> None:
    """``E[R | history of probabilities] = 0``: over 40,000 customers of each type the mean
    of ``R_night`` is within 4 standard errors of 0 for night owls and for the others alike,
    while their raw night counts differ by far more (the confounding ``E`` carries)."""
    rng = np.random.default_rng(11)
    n = 40_000
    for owl in (0.0, 1.0):
        c, E = _history(n, rng, np.full(n, owl))
        R = c[:, 1] - E[:, 1]
        assert abs(R.mean()) < 4 * R.std(ddof=1) / np.sqrt(n)
    owls, others = _history(n, rng, np.ones(n))[0], _history(n, rng, np.zeros(n))[0]
    gap = owls[:, 1].mean() - others[:, 1].mean()
    assert gap > 0.5  # night counts: about 1.1 against 0.5


def _confounded(centred: bool, n: int = 20_000, seed: int = 5) -> tuple[float, float]:
    """lookahead_ts (pooled) fitted on a confounded log, returning the night-minus-day
    contrast of the counts' weights in its pooled model and its standard error.

    Night owls (half the customers, unseen by the model: its one context feature is noise)
    respond 1.0 more to every contact and were sent more at night (:func:`_history`). A
    night contact truly lowers later responses by 0.3 per unit of its decayed count, a day
    contact does nothing; the current contact's night slot adds 0.1:

        y = 0.5 + 1.0 owl - 0.3 c_night + 0.1 [a = night] + N(0, 0.5^2).
    """
    rng = np.random.default_rng(seed)
    space = DecisionSpace({"timing": ["day", "night"]})
    owl = (rng.random(n) < 0.5).astype(float)
    c, E = _history(n, rng, owl)
    actions = (rng.random(n) < 0.5).astype(np.int64)
    y = 0.5 + owl - 0.3 * c[:, 1] + 0.1 * actions + 0.5 * rng.normal(size=n)
    noise, days = rng.normal(size=n), np.full(n, 1.0)
    X = np.column_stack([noise, c, E, days]) if centred else np.column_stack([noise, c, days])
    policy = LookaheadTSPolicy(
        space,
        X.shape[1],
        state_effects="pooled",
        expected_counts=centred,
        future_contacts=1.0,
        seed=0,
    )
    policy.update(X, actions, y)
    theta = ridge_solve(policy.state_gram_, policy.state_moment_, policy.ridge)
    # Independently: the design by hand (the current slot crossed with [1, noise], then R and
    # E, or the raw counts, then the days), solved by numpy's lstsq on the ridge-augmented
    # system.
    phi = np.zeros((n, 2, 2))
    phi[np.arange(n), actions] = np.column_stack([np.ones(n), noise])
    state = [c - E, E, days] if centred else [c, days]
    U = np.column_stack([np.ones(n), phi.reshape(n, 4), *state])
    augmented = np.vstack([U, np.sqrt(policy.ridge) * np.eye(U.shape[1])])
    by_hand = np.linalg.lstsq(augmented, np.concatenate([y, np.zeros(U.shape[1])]), rcond=None)
    np.testing.assert_allclose(theta, by_hand[0], rtol=1e-7, atol=1e-9)
    first = policy.state_gram_.shape[0] - 1 - (4 if centred else 2)  # the counts (or R)
    contrast = np.zeros(theta.size)
    contrast[first], contrast[first + 1] = -1.0, 1.0
    residual = (
        policy.state_square_ - 2 * theta @ policy.state_moment_ + theta @ policy.state_gram_ @ theta
    )
    sigma2 = float(residual) / (n - theta.size)
    covariance = sigma2 * np.linalg.inv(policy.state_gram_ + policy.ridge * np.eye(theta.size))
    # The shift M g with M = 1 is the same contrast, read through the policy's own charges.
    shift = policy.state_shift_
    np.testing.assert_allclose(shift[1] - shift[0], contrast @ theta, rtol=1e-10)
    return float(contrast @ theta), float(np.sqrt(contrast @ covariance @ contrast))


def test_centred_counts_recover_the_effect_the_raw_counts_miss() -> None:
    """The true effect of a night contact's count, relative to a day contact's, is -0.3.
    The raw counts read the night owls' higher response as an effect of the night sends:
    their contrast is biased upward by more than 20 standard errors (by hand, the
    confounding's size: night owls hold about 0.6 more night count and respond 1.0 more, so
    the raw estimate comes out near zero or positive). With ``R`` as the treatment and
    ``E`` as the control the contrast is within 4 standard errors of -0.3 (measured: raw
    +0.22 +- 0.007, centred -0.297 +- 0.008). Each fit is checked against numpy's lstsq on
    a design built by hand (:func:`_confounded`)."""
    raw, raw_se = _confounded(centred=False)
    centred, centred_se = _confounded(centred=True)
    assert raw - (-0.3) > 20 * raw_se
    assert raw > 0.0
    assert abs(centred - (-0.3)) < 4 * centred_se
    assert centred_se < 0.05


def test_expected_counts_widen_the_context_and_round_trip() -> None:
    """With ``expected_counts`` the context ends ``[c (L), E (L), days]``: too narrow a
    context is refused by name, the pooled model is ``1 + p + 2L + 1`` wide, its state
    round-trips exactly, and the crossed layout takes the expected counts as context."""
    space = DecisionSpace({"m": ["x", "y"], "c": ["e", "s"]})
    with pytest.raises(BanditValueError, match="and as many expected counts"):
        LookaheadTSPolicy(space, 8, expected_counts=True)
    with pytest.raises(BanditValueError, match="'expected_counts'"):
        LookaheadTSPolicy(space, 10, expected_counts="yes")  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    X = np.abs(rng.normal(size=(50, 10)))
    actions, rewards = rng.integers(0, 4, 50), rng.normal(size=50)
    pooled = LookaheadTSPolicy(space, 10, expected_counts=True, state_effects="pooled", seed=1)
    plain = LookaheadTSPolicy(space, 10, state_effects="pooled", seed=1)
    # Centred, the 10 columns are 1 feature, c (4), E (4), days: u = [1, phi (4 slots x
    # [1, feature]), R, E, days]; plain, 5 features, c (4), days: u = [1, 4 x 6, c, days].
    assert pooled.state_gram_.shape[0] == 1 + 4 * 2 + 2 * 4 + 1
    assert plain.state_gram_.shape[0] == 1 + 4 * 6 + 4 + 1
    pooled.update(X, actions, rewards)
    copy = LookaheadTSPolicy(space, 10, expected_counts=True, state_effects="pooled", seed=1)
    copy.set_state(pooled.get_state())
    np.testing.assert_array_equal(copy.state_shift_, pooled.state_shift_)
    np.testing.assert_array_equal(
        copy.action_probabilities(X[:5]).shape, pooled.action_probabilities(X[:5]).shape
    )
    crossed = LookaheadTSPolicy(space, 10, expected_counts=True, seed=1)
    crossed.update(X, actions, rewards)
    assert crossed.lookahead_values(X[:3]).shape == (3, 4)
