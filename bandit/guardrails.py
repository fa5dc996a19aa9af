"""Guardrail statistics: non-inferiority read from an always-valid interval, and the
sample-ratio-mismatch test of a randomized split.

* :func:`non_inferiority` - whether a guardrail KPI is holding, breached or not yet decided,
  from an always-valid interval of ``treatment - holdout`` (:func:`bandit.lift.welch_lift`'s
  ``always_valid_ci``) and a non-inferiority margin. Because the interval is a confidence
  sequence, the reading may be recomputed after every batch and acted on at any of them: the
  chance that a harmless treatment is ever read as breached is at most ``alpha / 2`` (one side
  of the two-sided sequence) in large samples.
* :func:`sample_ratio_test` - Pearson's chi-square goodness-of-fit test of observed group counts
  against the configured shares (Fabijan et al. 2019, "Diagnosing sample ratio mismatch in
  online controlled experiments", KDD; Kohavi, Tang & Xu 2020, *Trustworthy Online Controlled
  Experiments*, ch. 21, who flag at p < 0.001).

scipy is imported inside :func:`sample_ratio_test` only (see :mod:`bandit.lift` on import cost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from bandit._validation import BanditValueError, check_real

__all__ = [
    "SRM_ALPHA",
    "GuardrailReading",
    "SampleRatio",
    "non_inferiority",
    "sample_ratio_test",
]

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
