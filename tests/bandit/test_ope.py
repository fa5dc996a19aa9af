"""Off-policy estimators: hand-computed logs, identities, seeded coverage, input errors."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit._validation import BanditValueError
from bandit.ope import (
    Estimate,
    OffPolicyReport,
    direct_method,
    doubly_robust,
    estimate_all,
    ips,
    snips,
    snips_difference,
    unsupported_actions,
)

Z95 = NormalDist().inv_cdf(0.975)

# Four rows, two actions. Weights w = target_probs[i, a_i] / propensity_i = [2, 1, 2, 2].
TINY = {
    "reward": np.array([1.0, 0.0, 1.0, 1.0]),
    "action": np.array([0, 1, 0, 1]),
    "propensity": np.array([0.5, 0.5, 0.25, 0.5]),
    "target_probs": np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.0, 1.0]]),
    "expected_reward": np.array([[0.5, 0.5], [1.0, 0.0], [1.0, 0.5], [0.0, 0.5]]),
}


def test_ips_by_hand() -> None:
    """w = [1/.5, .5/.5, .5/.25, 1/.5] = [2, 1, 2, 2]; w r = [2, 0, 2, 2].

    value = 6/4 = 1.5; deviations [.5, -1.5, .5, .5], squares sum 3, var (ddof 1) = 1,
    stderr = 1/√4 = 0.5; ESS = 7² / (4 + 1 + 4 + 4) = 49/13; max weight 2.
    """
    est = ips(**TINY)
    assert est == Estimate(
        estimator="ips",
        value=1.5,
        stderr=0.5,
        ci_low=1.5 - Z95 * 0.5,
        ci_high=1.5 + Z95 * 0.5,
        n=4,
        confidence=0.95,
        ess=49 / 13,
        max_weight=2.0,
    )


def test_snips_by_hand() -> None:
    """Σ w r = 6, Σ w = 7: value = 6/7.

    r - V = [1/7, -6/7, 1/7, 1/7]; w (r - V) = [2/7, -6/7, 2/7, 2/7] (sums to 0); mean w = 7/4,
    so ψ = w (r - V) · 4/7 = [8, -24, 8, 8] / 49; Σ ψ² = 768/2401;
    stderr = √(768/2401 / (4 · 3)) = √(64/2401) = 8/49.
    """
    est = snips(**TINY)
    assert est.value == 6 / 7
    assert est.stderr == pytest.approx(8 / 49, rel=1e-14)
    assert est.ci_low == pytest.approx(6 / 7 - Z95 * 8 / 49, rel=1e-14)
    assert est.ci_high == pytest.approx(6 / 7 + Z95 * 8 / 49, rel=1e-14)
    assert (est.ess, est.max_weight, est.n) == (49 / 13, 2.0, 4)


def test_direct_method_by_hand() -> None:
    """Σ_a π q̂ per row: 1·.5 = .5; .5·1 + .5·0 = .5; .5·1 + .5·.5 = .75; 1·.5 = .5.

    value = 2.25/4 = 0.5625; deviations [-1/16, -1/16, 3/16, -1/16], squares sum 12/256,
    var (ddof 1) = 4/256, stderr = (1/8)/2 = 0.0625. No weights: ess and max_weight are None.
    """
    est = direct_method(**TINY)
    assert (est.value, est.stderr) == (0.5625, 0.0625)
    assert (est.ci_low, est.ci_high) == (0.5625 - Z95 * 0.0625, 0.5625 + Z95 * 0.0625)
    assert est.ess is None
    assert est.max_weight is None


def test_doubly_robust_by_hand() -> None:
    """DM row + w (r - q̂(x, a_i)): .5 + 2(1 - .5) = 1.5; .5 + 1(0 - 0) = .5;
    .75 + 2(1 - 1) = .75; .5 + 2(1 - .5) = 1.5.

    value = 4.25/4 = 1.0625; deviations [7, -9, -5, 7]/16, squares sum 204/256 = 51/64,
    var (ddof 1) = 17/64, stderr = √(17/256) = √17/16.
    """
    est = doubly_robust(**TINY)
    assert est.value == 1.0625
    assert est.stderr == pytest.approx(math.sqrt(17) / 16, rel=1e-14)
    assert est.ess == 49 / 13


def test_estimate_all_matches_each_estimator() -> None:
    report = estimate_all(**TINY)
    assert report == OffPolicyReport(
        ips=ips(**TINY),
        snips=snips(**TINY),
        dm=direct_method(**TINY),
        dr=doubly_robust(**TINY),
        unsupported_actions=(),
    )
    assert list(report.estimates()) == ["ips", "snips", "dm", "dr"]


def test_estimate_all_without_reward_model_skips_dm_and_dr() -> None:
    log = {k: v for k, v in TINY.items() if k != "expected_reward"}
    report = estimate_all(**log)
    assert (report.dm, report.dr) == (None, None)
    assert list(report.estimates()) == ["ips", "snips"]


def test_confidence_sets_the_interval_width() -> None:
    est = ips(**TINY, confidence=0.9)
    z90 = NormalDist().inv_cdf(0.95)
    assert (est.ci_low, est.ci_high, est.confidence) == (1.5 - z90 * 0.5, 1.5 + z90 * 0.5, 0.9)


def test_ips_equals_on_policy_mean_when_target_is_logging_policy() -> None:
    """π = μ gives w = 1 exactly, so IPS is the plain mean and ESS is n."""
    rng = np.random.default_rng(7)
    n, k = 500, 4
    logging = rng.dirichlet(np.ones(k), size=n)
    action = (logging.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    reward = rng.normal(size=n)
    est = ips(
        reward=reward,
        action=action,
        propensity=logging[np.arange(n), action],
        target_probs=logging,
    )
    assert est.value == np.mean(reward)
    assert est.stderr == np.std(reward, ddof=1) / math.sqrt(n)
    assert (est.ess, est.max_weight) == (n, 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_snips_equals_ips_when_weights_average_to_one(seed: int) -> None:
    """Weights in pairs 1 ± d (d dyadic, so exact) average exactly 1: Σ w r / Σ w = Σ w r / n."""
    rng = np.random.default_rng(seed)
    half = 8
    d = rng.integers(0, 8, size=half) / 8
    target = np.concatenate([(1 - d) / 2, (1 + d) / 2])  # propensity 1/2, so w = 2 · target
    target_probs = np.column_stack([target, 1 - target])
    log = {
        "reward": rng.normal(size=2 * half),
        "action": np.zeros(2 * half, dtype=int),
        "propensity": np.full(2 * half, 0.5),
        "target_probs": target_probs,
    }
    assert ips(**log).value == pytest.approx(snips(**log).value, rel=1e-15, abs=1e-15)


# A synthetic world with a known truth: two context types, three actions, Bernoulli rewards.
CONTEXT_SHARE = np.array([0.3, 0.7])
MEANS = np.array([[0.2, 0.5, 0.7], [0.6, 0.3, 0.1]])  # MEANS[context, action]
TARGETS = {
    # Deterministic: the best action per context.
    "deterministic": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
    "stochastic": np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]]),
}


def true_value(policy: np.ndarray) -> float:
    return float(CONTEXT_SHARE @ (policy * MEANS).sum(axis=1))


def simulate_log(rng: np.random.Generator, n: int, policy: np.ndarray) -> dict[str, np.ndarray]:
    """Uniform logging over 3 actions; ``expected_reward`` is the true mean (a perfect model)."""
    context = (rng.random(n) < CONTEXT_SHARE[1]).astype(int)
    action = rng.integers(0, 3, size=n)
    reward = (rng.random(n) < MEANS[context, action]).astype(float)
    return {
        "reward": reward,
        "action": action,
        "propensity": np.full(n, 1 / 3),
        "target_probs": policy[context],
        "expected_reward": MEANS[context],
    }


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_intervals_cover_the_true_value(target: str) -> None:
    """200 seeded logs of 400 rows: each 95% interval covers the truth in >= 90% of them.

    DR is also run with a reward model that has every mean backwards (q̂ = 1 - μ) and still
    covers: the known propensities make it unbiased. DM with that model is biased and its
    interval, which ignores model error, almost never covers.
    """
    policy = TARGETS[target]
    truth = true_value(policy)
    rng = np.random.default_rng(20240611)
    covered = dict.fromkeys(["ips", "snips", "dm", "dr", "dr_wrong_model", "dm_wrong_model"], 0)
    replications = 200
    for _ in range(replications):
        log = simulate_log(rng, 400, policy)
        wrong = {**log, "expected_reward": 1.0 - log["expected_reward"]}
        estimates = estimate_all(**log).estimates()
        estimates["dr_wrong_model"] = doubly_robust(**wrong)
        estimates["dm_wrong_model"] = direct_method(**wrong)
        for name, est in estimates.items():
            covered[name] += est.ci_low <= truth <= est.ci_high
    rates = {name: hits / replications for name, hits in covered.items()}
    for name in ("ips", "snips", "dm", "dr", "dr_wrong_model"):
        assert rates[name] >= 0.90, rates
    assert rates["dm_wrong_model"] <= 0.10, rates


def population_sd(policy: np.ndarray) -> tuple[float, float]:
    """Per-row standard deviations of the IPS term w r and of the DR term (perfect model).

    Under uniform logging w = 3 π(a|x) and each action has probability 1/3, so
    E[(w r)²] = Σ_x p(x) Σ_a (1/3) 9 π² μ and E[DR²] = Σ_x p(x) (DM(x)² + Σ_a (1/3) 9 π² μ(1-μ)),
    DM(x) = Σ_a π μ; both terms have mean V.
    """
    value = true_value(policy)
    dm = (policy * MEANS).sum(axis=1)
    ips_square = CONTEXT_SHARE @ (3 * policy**2 * MEANS).sum(axis=1)
    dr_square = CONTEXT_SHARE @ (dm**2 + (3 * policy**2 * MEANS * (1 - MEANS)).sum(axis=1))
    return math.sqrt(ips_square - value**2), math.sqrt(dr_square - value**2)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_doubly_robust_with_perfect_model_has_lower_stderr_than_ips(target: str) -> None:
    """DR's stderr is below IPS's, by the population ratio (0.68 deterministic, 0.78 stochastic)."""
    policy = TARGETS[target]
    report = estimate_all(**simulate_log(np.random.default_rng(3), 4000, policy))
    assert report.dr is not None
    assert report.dr.stderr < report.ips.stderr
    ips_sd, dr_sd = population_sd(policy)
    assert report.dr.stderr / report.ips.stderr == pytest.approx(dr_sd / ips_sd, abs=0.04)


def test_unsupported_actions_lists_target_mass_never_logged() -> None:
    action = np.array([0, 0, 1, 0])
    target_probs = np.array([[0.5, 0.0, 0.5, 0.0]] * 4)
    assert unsupported_actions(action, target_probs).tolist() == [2]
    report = estimate_all(
        reward=[1.0, 0.0, 1.0, 1.0],
        action=action,
        propensity=[0.5] * 4,
        target_probs=target_probs,
    )
    assert report.unsupported_actions == (2,)


def test_snips_undefined_when_target_never_plays_a_logged_action() -> None:
    log = {
        "reward": [1.0, 0.0],
        "action": [0, 0],
        "propensity": [0.5, 0.5],
        "target_probs": [[0.0, 1.0], [0.0, 1.0]],
    }
    with pytest.raises(BanditValueError, match="SNIPS is undefined") as info:
        snips(**log)
    assert info.value.field == "target_probs"
    report = estimate_all(**log)
    assert report.snips is None
    assert report.ips.value == 0.0
    assert report.ips.ess == 0.0
    assert report.unsupported_actions == (1,)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reward": [1.0, np.nan, 1.0, 1.0]}, "reward"),
        ({"reward": [[1.0, 0.0, 1.0, 1.0]]}, "reward"),
        ({"reward": [1.0]}, "reward"),
        ({"action": [0, 1, 0]}, "action"),
        ({"action": [0, 1, 0, 2]}, "action"),
        ({"action": [0, -1, 0, 1]}, "action"),
        ({"action": [0.0, 1.0, 0.0, 1.0]}, "action"),
        ({"propensity": [0.5, 0.0, 0.25, 0.5]}, "propensity"),
        ({"propensity": [0.5, 1.5, 0.25, 0.5]}, "propensity"),
        ({"propensity": [0.5, np.nan, 0.25, 0.5]}, "propensity"),
        ({"propensity": [0.5, 0.5, 0.25]}, "propensity"),
        ({"target_probs": [[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]]}, "target_probs"),
        ({"target_probs": [[1.0, 0.0], [0.5, 0.6], [0.5, 0.5], [0.0, 1.0]]}, "target_probs"),
        ({"target_probs": [[1.5, -0.5], [0.5, 0.5], [0.5, 0.5], [0.0, 1.0]]}, "target_probs"),
        ({"target_probs": [[1.0, 0.0], [np.nan, 0.5], [0.5, 0.5], [0.0, 1.0]]}, "target_probs"),
        ({"expected_reward": [[0.5], [1.0], [1.0], [0.0]]}, "expected_reward"),
        ({"expected_reward": [[0.5, 0.5], [1.0, 0.0]]}, "expected_reward"),
        ({"confidence": 1.0}, "confidence"),
    ],
)
@pytest.mark.parametrize("estimator", [ips, snips, direct_method, doubly_robust, estimate_all])
def test_bad_input_names_the_field(estimator, change: dict, field: str) -> None:
    with pytest.raises(BanditValueError) as info:
        estimator(**{**TINY, **change})
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


@pytest.mark.parametrize("estimator", [direct_method, doubly_robust])
def test_model_based_estimators_require_expected_reward(estimator) -> None:
    log = {k: v for k, v in TINY.items() if k != "expected_reward"}
    with pytest.raises(BanditValueError, match="expected_reward") as info:
        estimator(**log)
    assert info.value.field == "expected_reward"


def test_estimators_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        ips(TINY["reward"], TINY["action"], TINY["propensity"], TINY["target_probs"])  # type: ignore[misc]


# The uniform policy as a baseline on TINY: weights [.5/.5, .5/.5, .5/.25, .5/.5] = [1, 1, 2, 1].
UNIFORM = np.full((4, 2), 0.5)


def test_snips_difference_by_hand() -> None:
    """Target as in :func:`test_snips_by_hand`: V_t = 6/7, ψ_t = [8, -24, 8, 8] / 49.

    Baseline uniform: Σ w r = 1 + 0 + 2 + 1 = 4, Σ w = 5, V_b = 4/5; r - V_b = [1, -4, 1, 1]/5,
    w (r - V_b) = [1, -4, 2, 1]/5, mean w = 5/4, ψ_b = [4, -16, 8, 4]/25.
    Δ = 6/7 - 4/5 = 2/35; ψ_t - ψ_b = [4, 184, -192, 4]/1225, Σ squares = 70752/1225²,
    stderr = √(70752 / 12) / 1225 = √5896 / 1225.
    """
    est = snips_difference(
        reward=TINY["reward"],
        action=TINY["action"],
        propensity=TINY["propensity"],
        target_probs=TINY["target_probs"],
        baseline_probs=UNIFORM,
    )
    stderr = math.sqrt(5896) / 1225
    assert est.estimator == "snips_difference"
    assert est.value == pytest.approx(2 / 35, rel=1e-14)
    assert est.stderr == pytest.approx(stderr, rel=1e-14)
    assert est.ci_low == pytest.approx(2 / 35 - Z95 * stderr, rel=1e-14)
    assert (est.n, est.ess, est.max_weight) == (4, 49 / 13, 2.0)


def _random_log(seed: int, n: int, k: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logging = rng.dirichlet(np.ones(k), size=n)
    action = np.array([rng.choice(k, p=row) for row in logging])
    log = {
        "reward": rng.normal(size=n),
        "action": action,
        "propensity": logging[np.arange(n), action],
    }
    return log, rng.dirichlet(np.ones(k), size=n), rng.dirichlet(np.ones(k), size=n)


@pytest.mark.parametrize("seed", range(5))
def test_snips_difference_is_the_delta_method_on_four_means(seed: int) -> None:
    """Independent recomputation: Δ = a/b - c/d over the means (a, b, c, d) of (w_t r, w_t,
    w_b r, w_b); its delta-method variance is gᵀ S g / n with the gradient
    g = (1/b, -a/b², -1/d, c/d²) and S the rows' sample covariance (ddof 1)."""
    n = 400
    log, target, baseline = _random_log(seed, n, 3)
    reward, action, propensity = log["reward"], log["action"], log["propensity"]
    est = snips_difference(
        reward=reward,
        action=action,
        propensity=propensity,
        target_probs=target,
        baseline_probs=baseline,
    )
    w_t = target[np.arange(n), action] / propensity
    w_b = baseline[np.arange(n), action] / propensity
    z = np.column_stack([w_t * reward, w_t, w_b * reward, w_b])
    a, b, c, d = z.mean(axis=0)
    g = np.array([1 / b, -a / b**2, -1 / d, c / d**2])
    variance = g @ np.cov(z, rowvar=False, ddof=1) @ g / n
    assert est.value == pytest.approx(a / b - c / d, rel=1e-12)
    assert est.stderr == pytest.approx(math.sqrt(variance), rel=1e-10)
    separate = snips(reward=reward, action=action, propensity=propensity, target_probs=target)
    base = snips(reward=reward, action=action, propensity=propensity, target_probs=baseline)
    assert est.value == pytest.approx(separate.value - base.value, rel=1e-12)


def test_snips_difference_of_a_policy_with_itself_is_exactly_zero() -> None:
    est = snips_difference(
        reward=TINY["reward"],
        action=TINY["action"],
        propensity=TINY["propensity"],
        target_probs=TINY["target_probs"],
        baseline_probs=TINY["target_probs"],
    )
    assert (est.value, est.stderr, est.ci_low, est.ci_high) == (0.0, 0.0, 0.0, 0.0)


def test_snips_difference_names_the_policy_that_plays_no_logged_action() -> None:
    never = np.tile([0.0, 1.0], (4, 1))
    with pytest.raises(BanditValueError, match="'baseline_probs' gives probability 0") as info:
        snips_difference(
            reward=[1.0, 0.0, 1.0, 1.0],
            action=[0, 0, 0, 0],
            propensity=[0.5] * 4,
            target_probs=UNIFORM,
            baseline_probs=never,
        )
    assert info.value.field == "baseline_probs"


def test_snips_difference_names_the_baseline_when_its_rows_do_not_sum_to_one() -> None:
    with pytest.raises(BanditValueError, match=r"Every row of 'baseline_probs' must sum") as info:
        snips_difference(
            reward=TINY["reward"],
            action=TINY["action"],
            propensity=TINY["propensity"],
            target_probs=TINY["target_probs"],
            baseline_probs=np.full((4, 2), 0.4),
        )
    assert info.value.field == "baseline_probs"


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 60),
    k=st.integers(1, 5),
    shift=st.floats(-1e3, 1e3),
)
def test_snips_difference_is_antisymmetric_and_shift_invariant(
    seed: int, n: int, k: int, shift: float
) -> None:
    """Swapping the policies negates Δ and keeps its stderr; adding a constant to every reward
    moves both SNIPS values by it (each is a weighted mean), so Δ and its stderr stay."""
    log, target, baseline = _random_log(seed, n, k)
    forward = snips_difference(**log, target_probs=target, baseline_probs=baseline)
    backward = snips_difference(**log, target_probs=baseline, baseline_probs=target)
    assert backward.value == pytest.approx(-forward.value, abs=1e-12)
    assert backward.stderr == pytest.approx(forward.stderr, rel=1e-9, abs=1e-12)
    moved = snips_difference(
        **{**log, "reward": log["reward"] + shift}, target_probs=target, baseline_probs=baseline
    )
    assert moved.value == pytest.approx(forward.value, abs=1e-9 * (1 + abs(shift)))
    assert moved.stderr == pytest.approx(forward.stderr, rel=1e-6, abs=1e-9 * (1 + abs(shift)))
