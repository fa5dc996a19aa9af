"""Guardrail statistics: non-inferiority read from an always-valid interval, and the
sample-ratio-mismatch test of a randomized split.

* :func:`non_inferiority` - whether a guardrail KPI is holding, breached or not yet decided,
  from an always-valid interval of ``treatment - holdout`` (:func:`bandit.lift.welch_lift`'s
  ``always_valid_ci``) and a non-inferiority margin. Because the interval is a confidence
  sequence, the reading may be recomputed after every batch and acted on at any of them: the
  chance that a harmless treatment is ever read as breached is at most ``alpha / 2`` (one side
  of the two-sided sequence) in large samples.
* :func:`guarded_difference` - that interval, with a variance that cannot collapse when one
  group has seen no event yet (the larger of Welch's and the pooled variance);
* :func:`sample_ratio_test` - Pearson's chi-square goodness-of-fit test of observed group counts
  against the configured shares (Fabijan et al. 2019, "Diagnosing sample ratio mismatch in
  online controlled experiments", KDD; Kohavi, Tang & Xu 2020, *Trustworthy Online Controlled
  Experiments*, ch. 21, who flag at p < 0.001), and :func:`sequential_sample_ratio_p`, its
  anytime-valid counterpart for a check that is repeated as the counts grow (Lindon & Malek
  2022): a fixed-n test repeated for weeks crosses p < 0.001 by chance far more often than
  once in a thousand experiments.

scipy is imported inside :func:`sample_ratio_test` only (see :mod:`bandit.lift` on import cost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from bandit._validation import BanditValueError, check_real
from bandit.lift import (
    DEFAULT_PLANNED_N,
    RunningMoments,
    normal_mixture_radius,
    tuned_mixing_variance,
)

__all__ = [
    "SRM_ALPHA",
    "GuardedDifference",
    "GuardrailReading",
    "SampleRatio",
    "guarded_difference",
    "non_inferiority",
    "sample_ratio_test",
    "sequential_sample_ratio_p",
]

#: Dirichlet concentration of the sequential sample-ratio test's mixture (Lindon & Malek
#: 2022 use prior pseudo-counts in proportion to the expected shares).
SRM_CONCENTRATION = 100.0

#: The p-value below which a split is flagged as mismatched (Kohavi et al. 2020).
SRM_ALPHA = 0.001

#: How a guardrail reads: within its margin, beyond it, or not yet known either way.
GuardrailReading = Literal["holding", "breached", "undecided"]


def non_inferiority(
    low: float, high: float, *, margin: float, higher_is_better: bool
) -> GuardrailReading:
    """Read a guardrail from an interval ``[low, high]`` of ``D = treatment - holdout``.

    With margin ``m >= 0`` the guardrail tolerates a loss of up to ``m`` (in KPI units):

    - higher is better (retention, revenue): ``breached`` when ``high < -m`` (the treatment
      is worse by more than the margin), ``holding`` when ``low > -m`` (non-inferior);
    - lower is better (unsubscribes, contacts): ``breached`` when ``low > m``, ``holding``
      when ``high < m``;
    - ``undecided`` otherwise, and whenever a bound is not finite.

    Example: ``[-0.05, -0.03]`` with ``m = 0.02``, higher better: ``-0.03 < -0.02``, breached.
    """
    size = check_real(margin, "margin", "non_inferiority", low=0.0)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "undecided"
    if higher_is_better:
        if high < -size:
            return "breached"
        return "holding" if low > -size else "undecided"
    if low > size:
        return "breached"
    return "holding" if high < size else "undecided"


@dataclass(frozen=True, slots=True)
class GuardedDifference:
    """``difference = mean_treatment - mean_holdout`` with its always-valid ``(low, high)`` at
    level ``confidence``, its ``variance`` and the mixing variance of the boundary."""

    mean_treatment: float
    mean_holdout: float
    n_treatment: int
    n_holdout: int
    difference: float
    variance: float
    low: float
    high: float
    confidence: float
    mixing_variance: float


def guarded_difference(
    treatment: ArrayLike, holdout: ArrayLike, *, confidence: float = 0.95
) -> GuardedDifference:
    """Always-valid interval of ``mean(treatment) - mean(holdout)``, ``(n_t,)`` and ``(n_h,)``.

    The boundary is :func:`bandit.lift.always_valid_interval`'s normal mixture (Robbins 1970;
    Howard et al. 2021), ``D̂ ± normal_mixture_radius(V, τ², α)``, with one change to ``V``::

        V = max( s_t²/n_t + s_h²/n_h,  s²_pooled (1/n_t + 1/n_h) )

    A guardrail KPI is often a rare event (churn, unsubscribes): early on, the smaller group
    may have seen none, its sample variance is 0, and Welch's ``V`` then counts only the other
    group's noise. In a simulated world where treatment and holdout are identical that
    stopped 4 of 20 experiments at margin 0 (``bench/guardrails.py``), against a nominal
    2.5%; with this ``V``, 0 of 20. The pooled variance (the two-proportion test's, and
    consistent whenever the groups do not differ) cannot collapse that way; taking the larger
    of the two keeps the interval valid under either reading, at the price of some width when
    the groups really differ.
    ``τ²`` is :func:`bandit.lift.tuned_mixing_variance` for ``DEFAULT_PLANNED_N`` customers per
    group with the larger of the summed and twice the pooled variance plugged in.
    Each group needs at least 2 values.
    """
    owner = "guarded_difference"
    level = check_real(confidence, "confidence", owner, low=0.0, high=1.0, closed="neither")
    groups = []
    for name, values in (("treatment", treatment), ("holdout", holdout)):
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1 or array.size < 2 or not np.isfinite(array).all():
            raise BanditValueError(
                name, f"'{name}' must be a 1-D array of at least 2 finite values; got {array!r}."
            )
        groups.append(array)
    t, h = groups
    moments_t, moments_h = RunningMoments.from_values(t), RunningMoments.from_values(h)
    pooled = float(moments_t.merge(moments_h).variance)
    var_t, var_h = float(moments_t.variance), float(moments_h.variance)
    variance = max(var_t / t.size + var_h / h.size, pooled * (1.0 / t.size + 1.0 / h.size))
    alpha = 1.0 - level
    planned = max(var_t + var_h, 2.0 * pooled) / DEFAULT_PLANNED_N
    tau2 = tuned_mixing_variance(planned, alpha) if planned > 0 else 0.0
    radius = float(normal_mixture_radius(variance, mixing_variance=tau2, alpha=alpha))
    difference = float(moments_t.mean) - float(moments_h.mean)
    return GuardedDifference(
        mean_treatment=float(moments_t.mean),
        mean_holdout=float(moments_h.mean),
        n_treatment=int(t.size),
        n_holdout=int(h.size),
        difference=difference,
        variance=variance,
        low=difference - radius,
        high=difference + radius,
        confidence=level,
        mixing_variance=tau2,
    )


@dataclass(frozen=True, slots=True)
class SampleRatio:
    """Pearson's chi-square test of observed counts against expected shares.

    ``observed`` and ``expected`` are counts per group (``expected = n * share``);
    ``statistic = Σ (observed - expected)² / expected`` on ``df = groups - 1`` degrees of
    freedom, ``p_value`` its upper tail, and ``mismatch`` is ``p_value < alpha``.
    """

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    df: int
    p_value: float
    alpha: float
    mismatch: bool


def sample_ratio_test(
    observed: ArrayLike, shares: ArrayLike, *, alpha: float = SRM_ALPHA
) -> SampleRatio:
    """Test whether ``observed`` counts ``(k,)`` fit the configured ``shares`` ``(k,)``.

    ``shares`` must be positive and sum to 1. Pearson (1900)::

        E_i = n · share_i,   X² = Σ (O_i - E_i)² / E_i,   p = P(χ²_{k-1} > X²)

    ``p`` is ``scipy.special.chdtrc(k - 1, X²)``, the function ``scipy.stats.chisquare`` calls.
    With no observations there is nothing to test: ``p = 1``, no mismatch.
    Example: 450 and 50 against shares 0.8 and 0.2 (E = 400, 100): X² = 6.25 + 25 = 31.25.
    """
    owner = "sample_ratio_test"
    level = check_real(alpha, "alpha", owner, low=0.0, high=1.0, closed="neither")
    counts = np.asarray(observed)
    if counts.ndim != 1 or counts.size < 2:
        raise BanditValueError(
            "observed", f"'observed' must be a 1-D array of at least 2 counts; got {counts!r}."
        )
    if not np.issubdtype(counts.dtype, np.integer) or (counts < 0).any():
        raise BanditValueError(
            "observed", f"'observed' must hold non-negative integers; got {counts!r}."
        )
    probabilities = np.asarray(shares, dtype=np.float64)
    if probabilities.shape != counts.shape:
        raise BanditValueError(
            "shares",
            f"'shares' must have the shape of 'observed' {counts.shape}; "
            f"got {probabilities.shape}.",
        )
    if not (np.isfinite(probabilities).all() and (probabilities > 0).all()) or not math.isclose(
        float(probabilities.sum()), 1.0, rel_tol=0.0, abs_tol=1e-9
    ):
        raise BanditValueError(
            "shares", f"'shares' must be positive and sum to 1; got {probabilities!r}."
        )
    total = int(counts.sum())
    expected = total * probabilities
    df = counts.size - 1
    if total == 0:
        statistic, p_value = 0.0, 1.0
    else:
        from scipy.special import chdtrc  # lazy: see the module docstring

        statistic = float((np.square(counts - expected) / expected).sum())
        p_value = float(chdtrc(df, statistic))
    return SampleRatio(
        observed=tuple(int(count) for count in counts),
        expected=tuple(float(value) for value in expected),
        statistic=statistic,
        df=df,
        p_value=p_value,
        alpha=level,
        mismatch=p_value < level,
    )


def sequential_sample_ratio_p(
    observed: ArrayLike, shares: ArrayLike, *, concentration: float = SRM_CONCENTRATION
) -> float:
    """Anytime-valid p-value that ``observed`` counts ``(k,)`` come from ``shares`` ``(k,)``.

    Lindon & Malek (2022, "Anytime-valid inference for multinomial count data", NeurIPS): the
    Bayes factor of a Dirichlet-multinomial mixture, prior ``α_i = concentration · share_i``,
    against the multinomial at ``shares``, with ``n = Σ x_i`` and ``A = Σ α_i``::

        log BF = lnΓ(A) - lnΓ(A + n) + Σ [lnΓ(α_i + x_i) - lnΓ(α_i)] - Σ x_i ln share_i

    is a nonnegative martingale under the null, so by Ville's inequality
    ``P(BF_n >= 1/α for some n) <= α``: ``p = min(1, 1/BF_n)`` may be read after every
    customer and acted on the first time it falls below α. (The multinomial coefficient is in
    both likelihoods and cancels.)
    Example: 2 groups, shares (0.5, 0.5), concentration 2 (a uniform prior), counts (1, 0):
    BF = Γ(2)Γ(2)Γ(1)/(Γ(3)Γ(1)Γ(1)) / 0.5 = 1, so p = 1.
    """
    from scipy.special import gammaln  # lazy: see the module docstring

    size = check_real(
        concentration, "concentration", "sequential_sample_ratio_p", low=0.0, closed="neither"
    )
    test = sample_ratio_test(observed, shares)  # validates both arrays the same way
    counts = np.array(test.observed, dtype=np.float64)
    probabilities = np.asarray(shares, dtype=np.float64)
    prior = size * probabilities
    log_bf = (
        gammaln(prior.sum())
        - gammaln(prior.sum() + counts.sum())
        + float((gammaln(prior + counts) - gammaln(prior)).sum())
        - float((counts * np.log(probabilities)).sum())
    )
    return 1.0 if log_bf <= 0 else math.exp(-log_bf)
