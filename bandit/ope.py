"""Off-policy value estimators: what would a target policy have earned on logged feedback?

The data contract is Open Bandit Pipeline's, typed: every estimator takes the same keyword
arrays and returns an :class:`Estimate` (a frozen dataclass, not a dict).

``reward``          (n,)            observed reward of the logged action
``action``          (n,) int        logged action index in ``[0, n_actions)``
``propensity``      (n,)            logging policy's probability of the logged action, in (0, 1]
``target_probs``    (n, n_actions)  target policy's probability of every action per row
``expected_reward`` (n, n_actions)  a reward model's predictions q̂(x, a); DM and DR only

The importance weight of row i is ``w_i = target_probs[i, action_i] / propensity_i``.
Intervals are two-sided normal approximations, ``value ± z · stderr`` with ``z`` the normal
quantile of ``(1 + confidence) / 2``; the quantile comes from :class:`statistics.NormalDist` so
that importing this module does not import scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

from bandit._validation import (
    BanditValueError,
    check_actions,
    check_matrix,
    check_real,
    check_vector,
)

__all__ = [
    "Estimate",
    "OffPolicyReport",
    "direct_method",
    "doubly_robust",
    "estimate_all",
    "ips",
    "snips",
    "snips_difference",
    "unsupported_actions",
]

# Rows of ``target_probs`` are probabilities computed upstream (softmax, epsilon-greedy mixes);
# allow float round-off in their sums but nothing a real bug would produce.
ROW_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's value of the target policy with its normal-approximation interval.

    ``ess`` (effective sample size, ``(Σ w)² / Σ w²``) and ``max_weight`` describe the importance
    weights; they are ``None`` for the direct method, which uses none.
    """

    estimator: str
    value: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float
    ess: float | None = None
    max_weight: float | None = None


@dataclass(frozen=True, slots=True)
class OffPolicyReport:
    """All four estimates on one log, plus the actions the log cannot speak for.

    ``dm`` and ``dr`` are ``None`` when no reward model was given; ``snips`` is ``None`` when it is
    undefined (the target gives probability 0 to every logged action). ``unsupported_actions``
    lists actions the target policy plays but the log never contains (see
    :func:`unsupported_actions`); a non-empty tuple means IPS-type estimates are biased.
    """

    ips: Estimate
    snips: Estimate | None
    dm: Estimate | None
    dr: Estimate | None
    unsupported_actions: tuple[int, ...]

    def estimates(self) -> dict[str, Estimate]:
        """Return the estimates that were computed, keyed by estimator name."""
        found = (self.ips, self.snips, self.dm, self.dr)
        return {estimate.estimator: estimate for estimate in found if estimate is not None}


@dataclass(frozen=True, slots=True)
class _Log:
    """Validated arrays of one log; ``weight`` is the importance weight per row."""

    reward: np.ndarray
    action: np.ndarray
    propensity: np.ndarray
    target_probs: np.ndarray
    expected_reward: np.ndarray | None
    weight: np.ndarray
    z: float
    confidence: float

    @property
    def n(self) -> int:
        return int(self.reward.shape[0])


def ips(
    *,
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike,
    target_probs: ArrayLike,
    expected_reward: ArrayLike | None = None,
    confidence: float = 0.95,
) -> Estimate:
    """Inverse propensity scoring (Horvitz & Thompson 1952).

    ``V̂ = (1/n) Σ_i w_i r_i`` with ``w_i = π(a_i | x_i) / μ(a_i | x_i)``; unbiased when the logging
    policy μ gives positive probability to every action the target π plays.
    ``stderr = std(w r, ddof=1) / √n``. ``expected_reward`` is validated if given but unused, so
    every estimator takes the same arrays.

    Horvitz, D. G. & Thompson, D. J. (1952). A generalization of sampling without replacement
    from a finite universe. JASA 47(260), 663-685.
    """
    return _ips(
        _validate("ips", reward, action, propensity, target_probs, expected_reward, confidence)
    )


def snips(
    *,
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike,
    target_probs: ArrayLike,
    expected_reward: ArrayLike | None = None,
    confidence: float = 0.95,
) -> Estimate:
    """Self-normalized IPS (Swaminathan & Joachims 2015).

    ``V̂ = Σ_i w_i r_i / Σ_i w_i``: biased but consistent, bounded by the reward range, and much
    less variable than IPS when weights are large. The standard error is the delta method's:
    with influence ``ψ_i = w_i (r_i - V̂) / w̄`` (``w̄`` the mean weight; the ``ψ_i`` sum to 0),
    ``stderr = √(Σ ψ_i² / (n (n - 1)))``.

    Raises :class:`BanditValueError` on ``target_probs`` when ``Σ w = 0`` (the target gives
    probability 0 to every logged action), where the ratio is undefined.

    Swaminathan, A. & Joachims, T. (2015). The self-normalized estimator for counterfactual
    learning. NeurIPS 28.
    """
    log = _validate("snips", reward, action, propensity, target_probs, expected_reward, confidence)
    estimate = _snips(log)
    if estimate is None:
        raise BanditValueError(
            "target_probs",
            "SNIPS is undefined: 'target_probs' gives probability 0 to every logged action.",
        )
    return estimate


def snips_difference(
    *,
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike,
    target_probs: ArrayLike,
    baseline_probs: ArrayLike,
    confidence: float = 0.95,
) -> Estimate:
    """SNIPS value of a target policy minus that of a baseline policy, on the same log.

    ``Δ̂ = V̂_t - V̂_b`` with each ``V̂`` self-normalized IPS (:func:`snips`). Both are ratios of
    means over the same rows, so their sampling errors are correlated; the delta method on the
    difference keeps that: with each policy's SNIPS influence ``ψ_i = w_i (r_i - V̂) / w̄``, the
    difference's influence is ``ψ_t,i - ψ_b,i`` and ``stderr = √(Σ (ψ_t,i - ψ_b,i)² / (n (n - 1)))``
    (van der Vaart 1998, *Asymptotic Statistics*, Ch. 3; Swaminathan & Joachims 2015 for the
    SNIPS influence). A target that equals the baseline has ``Δ̂ = 0`` with ``stderr = 0``, where
    two separate intervals would overlap by their full width. ``baseline_probs`` has the shape
    of ``target_probs``; ``ess`` and ``max_weight`` describe the target's weights.

    Raises :class:`BanditValueError` when either policy gives probability 0 to every logged
    action (SNIPS is undefined).
    """
    target = _validate(
        "snips_difference", reward, action, propensity, target_probs, None, confidence
    )
    baseline = _validate(
        "snips_difference",
        reward,
        action,
        propensity,
        baseline_probs,
        None,
        confidence,
        probs_name="baseline_probs",
    )
    parts = []
    for log, name in ((target, "target_probs"), (baseline, "baseline_probs")):
        part = _snips_parts(log)
        if part is None:
            raise BanditValueError(
                name, f"SNIPS is undefined: '{name}' gives probability 0 to every logged action."
            )
        parts.append(part)
    (value_t, influence_t), (value_b, influence_b) = parts
    stderr = _influence_stderr(influence_t - influence_b)
    return _estimate("snips_difference", value_t - value_b, stderr, target, weighted=True)


def direct_method(
    *,
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike,
    target_probs: ArrayLike,
    expected_reward: ArrayLike | None = None,
    confidence: float = 0.95,
) -> Estimate:
    """Direct method: the reward model's prediction of the target policy's value.

    Per row ``v_i = Σ_a π(a | x_i) q̂(x_i, a)``; ``V̂ = mean(v)``, ``stderr = std(v, ddof=1) / √n``.
    The interval reflects only the sampling of contexts, not the reward model's error, so it is
    too narrow whenever q̂ is biased (Dudík, Langford & Li 2011, Section 2). ``reward``, ``action``
    and ``propensity`` are validated but unused; ``expected_reward`` is required.
    """
    log = _validate(
        "direct_method", reward, action, propensity, target_probs, expected_reward, confidence
    )
    return _direct_method(log, _required_model(log))


def doubly_robust(
    *,
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike,
    target_probs: ArrayLike,
    expected_reward: ArrayLike | None = None,
    confidence: float = 0.95,
) -> Estimate:
    """Doubly robust estimator (Dudík, Langford & Li 2011).

    Per row ``v_i = Σ_a π(a | x_i) q̂(x_i, a) + w_i (r_i - q̂(x_i, a_i))``: the direct method
    corrected by the importance-weighted residual of the logged action. Unbiased when either the
    propensities or the reward model are correct; with a good model its variance is well below
    IPS's. ``V̂ = mean(v)``, ``stderr = std(v, ddof=1) / √n``; ``expected_reward`` is required.

    Dudík, M., Langford, J. & Li, L. (2011). Doubly robust policy evaluation and learning.
    ICML 2011.
    """
    log = _validate(
        "doubly_robust", reward, action, propensity, target_probs, expected_reward, confidence
    )
    return _doubly_robust(log, _required_model(log))


def estimate_all(
    *,
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike,
    target_probs: ArrayLike,
    expected_reward: ArrayLike | None = None,
    confidence: float = 0.95,
) -> OffPolicyReport:
    """Validate the log once and run every estimator it supports; see :class:`OffPolicyReport`."""
    log = _validate(
        "estimate_all", reward, action, propensity, target_probs, expected_reward, confidence
    )
    model = log.expected_reward
    return OffPolicyReport(
        ips=_ips(log),
        snips=_snips(log),
        dm=None if model is None else _direct_method(log, model),
        dr=None if model is None else _doubly_robust(log, model),
        unsupported_actions=tuple(int(a) for a in _unsupported(log.action, log.target_probs)),
    )


def unsupported_actions(action: ArrayLike, target_probs: ArrayLike) -> np.ndarray:
    """Return the sorted actions that get target probability somewhere but never appear in the log.

    ``action`` has shape (n,), ``target_probs`` shape (n, n_actions); the result is an int64
    array. Importance weighting never sees rewards of these actions: IPS and SNIPS silently
    count them as zero and DR falls back on the reward model's guess, so all three are biased.
    """
    probs = check_matrix(target_probs, "target_probs")
    actions = check_actions(action, probs.shape[0], probs.shape[1], name="action")
    return _unsupported(actions, probs)


def _unsupported(action: np.ndarray, target_probs: np.ndarray) -> np.ndarray:
    played = (target_probs > 0).any(axis=0)
    logged = np.zeros(target_probs.shape[1], dtype=bool)
    logged[action] = True
    return np.flatnonzero(played & ~logged).astype(np.int64)


def _ips(log: _Log) -> Estimate:
    terms = log.weight * log.reward
    return _from_terms("ips", terms, log, weighted=True)


def _snips_parts(log: _Log) -> tuple[float, np.ndarray] | None:
    """SNIPS value and per-row influence ``w_i (r_i - V̂) / w̄``; None when ``Σ w = 0``."""
    total = float(log.weight.sum())
    if total == 0.0:
        return None
    value = float((log.weight * log.reward).sum()) / total
    return value, log.weight * (log.reward - value) / (total / log.n)


def _influence_stderr(influence: np.ndarray) -> float:
    """``√(Σ ψ_i² / (n (n - 1)))``: the delta method's standard error from influences."""
    n = influence.shape[0]
    return math.sqrt(float(np.square(influence).sum()) / (n * (n - 1)))


def _snips(log: _Log) -> Estimate | None:
    parts = _snips_parts(log)
    if parts is None:
        return None
    value, influence = parts
    return _estimate("snips", value, _influence_stderr(influence), log, weighted=True)


def _direct_method(log: _Log, model: np.ndarray) -> Estimate:
    terms = (log.target_probs * model).sum(axis=1)
    return _from_terms("dm", terms, log, weighted=False)


def _doubly_robust(log: _Log, model: np.ndarray) -> Estimate:
    baseline = (log.target_probs * model).sum(axis=1)
    logged = model[np.arange(log.n), log.action]
    terms = baseline + log.weight * (log.reward - logged)
    return _from_terms("dr", terms, log, weighted=True)


def _from_terms(name: str, terms: np.ndarray, log: _Log, *, weighted: bool) -> Estimate:
    """Mean of per-row terms with the standard error of a mean of i.i.d. rows."""
    stderr = float(np.std(terms, ddof=1)) / math.sqrt(log.n)
    return _estimate(name, float(np.mean(terms)), stderr, log, weighted=weighted)


def _estimate(name: str, value: float, stderr: float, log: _Log, *, weighted: bool) -> Estimate:
    ess = max_weight = None
    if weighted:
        squares = float(np.square(log.weight).sum())
        ess = float(log.weight.sum()) ** 2 / squares if squares > 0 else 0.0
        max_weight = float(log.weight.max())
    half = log.z * stderr
    return Estimate(
        estimator=name,
        value=value,
        stderr=stderr,
        ci_low=value - half,
        ci_high=value + half,
        n=log.n,
        confidence=log.confidence,
        ess=ess,
        max_weight=max_weight,
    )


def _validate(
    owner: str,
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike,
    target_probs: ArrayLike,
    expected_reward: ArrayLike | None,
    confidence: float,
    *,
    probs_name: str = "target_probs",
) -> _Log:
    """Check the whole log against the contract; every error names the offending argument
    (the policy's probabilities as ``probs_name``)."""
    level = check_real(confidence, "confidence", owner, low=0.0, high=1.0, closed="neither")
    shape = np.shape(reward)
    if len(shape) != 1 or shape[0] < 2:
        raise BanditValueError(
            "reward", f"'reward' must be a 1-D array of at least 2 rows; got shape {shape}."
        )
    n = shape[0]
    rewards = check_vector(reward, "reward", length=n)
    probs = check_matrix(target_probs, probs_name)
    if probs.shape[0] != n or probs.shape[1] < 1:
        raise BanditValueError(
            probs_name,
            f"'{probs_name}' must have shape ({n}, n_actions); got shape {probs.shape}.",
        )
    if probs.min() < 0:
        raise BanditValueError(probs_name, f"'{probs_name}' must be non-negative.")
    off = np.abs(probs.sum(axis=1) - 1.0)
    if off.max() > ROW_SUM_TOLERANCE:
        row = int(np.argmax(off))
        raise BanditValueError(
            probs_name,
            f"Every row of '{probs_name}' must sum to 1 (± {ROW_SUM_TOLERANCE:g}); row {row} sums "
            f"to {probs[row].sum():.9g}.",
        )
    n_actions = probs.shape[1]
    actions = check_actions(action, n, n_actions, name="action")
    propensities = check_vector(propensity, "propensity", length=n)
    if propensities.min() <= 0 or propensities.max() > 1:
        raise BanditValueError(
            "propensity",
            f"'propensity' must lie in (0, 1]; got values in [{propensities.min():g}, "
            f"{propensities.max():g}].",
        )
    model = None
    if expected_reward is not None:
        model = check_matrix(expected_reward, "expected_reward", n_columns=n_actions)
        if model.shape[0] != n:
            raise BanditValueError(
                "expected_reward",
                f"'expected_reward' must have shape ({n}, {n_actions}); got {model.shape}.",
            )
    weight = probs[np.arange(n), actions] / propensities
    return _Log(
        reward=rewards,
        action=actions,
        propensity=propensities,
        target_probs=probs,
        expected_reward=model,
        weight=weight,
        z=NormalDist().inv_cdf(0.5 + level / 2.0),
        confidence=level,
    )


def _required_model(log: _Log) -> np.ndarray:
    if log.expected_reward is None:
        raise BanditValueError(
            "expected_reward",
            "The direct method and doubly robust estimators need 'expected_reward', a reward "
            "model's predictions of shape (n, n_actions).",
        )
    return log.expected_reward
