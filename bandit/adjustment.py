"""Regression adjustment on a pre-period value, and differences compared within strata.

An epoch's KPI (revenue over two weeks, say) varies mostly with where the customer started:
a customer who spent 100 last month spends more this month whatever we send. Two pure
functions take that variation out of comparisons:

- :func:`regression_adjusted` subtracts the part of each value that the baseline predicts,
  with one slope pooled over every row, estimated within cells (a cohort, or a cohort and an
  arm) and applied around each cohort's mean (CUPED: Deng, Xu, Kohavi & Walker 2013,
  "Improving the Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment
  Data"; with cells, the within estimator of a fixed-effects regression)::

      y_adj_i = y_i - (b_i - mean_c(i)(b)) . theta
      theta   = argmin sum_i ((y_i - mean_k(i)(y)) - (b_i - mean_k(i)(b)) . theta)^2

  where ``c(i)`` is row i's cohort and ``k(i)`` its cell. Every cohort's mean is unchanged.
  With arms given, an arm's mean of ``y_adj`` in a cohort is the analysis-of-covariance
  estimate ``mean(y) - (mean(b) - mean_c(b)) . theta`` with the slope fitted inside arms, so
  arms whose customers started at different baselines (a policy that assigns by context)
  are compared as if they had started at the cohort's mean; the adjustment also shrinks the
  variance by the share of it the baseline explains.

- :func:`stratified_difference` compares a treatment with a control stratum by stratum (an
  epoch) and weighs the strata by the treatment's rows, so a treatment that grew over time is
  not compared with a control spread evenly over good and bad epochs (post-stratification)::

      d   = sum_e w_e (mean_e(treatment) - mean_e(control)),   w_e = n_e(treatment) / n
      se2 = sum_e w_e^2 (v_e(treatment) + s2_e(control) / n_e(control))

  with the normal interval ``d -+ z se``. Strata without two rows on each side are left out.
  Unweighted, ``mean_e`` is the plain mean and ``v_e = s2_e / n_e``. With inverse-propensity
  weights ``u_i = 1 / p_i`` on the treatment's rows (a policy that chose it more often for
  some customers than others), ``mean_e`` is the self-normalised (Hajek) estimate of what the
  whole stratum would have averaged under the treatment, and ``v_e`` its linearised variance
  (Hajek 1971; Lunceford & Davidian 2004, eq. 9)::

      mean_e = sum_i u_i y_i / sum_i u_i
      v_e    = n_e / (n_e - 1) sum_i u_i^2 (y_i - mean_e)^2 / (sum_i u_i)^2

  which is ``s2_e / n_e`` when every weight is equal.

- :func:`cuped_lift` is the lift of a randomized comparison (treatment against holdout) on
  values regression-adjusted on pre-period covariates, the slope fitted within each group:
  Welch's interval (:func:`bandit.lift.welch_lift`) of ``y_adj``. The slope is treated as
  known, as in Deng et al. (2013, section 3.3); its estimation error is of order ``1/n``.
  Because randomization makes the groups' covariate means equal in expectation, the adjusted
  difference estimates the same lift with variance ``(1 - rho^2)`` times the raw one, ``rho``
  the within-group correlation of the KPI and what the covariates predict of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtri

from bandit._validation import BanditValueError
from bandit.lift import Lift, welch_lift

__all__ = ["StratifiedDifference", "cuped_lift", "regression_adjusted", "stratified_difference"]


def _cohort_means(values: np.ndarray, cohorts: np.ndarray) -> np.ndarray:
    """Each row's cohort mean of ``values`` (rows of a 1-D or 2-D array)."""
    labels, inverse = np.unique(cohorts, return_inverse=True)
    counts = np.bincount(inverse, minlength=labels.size).astype(np.float64)
    if values.ndim == 1:
        totals = np.bincount(inverse, weights=values, minlength=labels.size)
        return (totals / counts)[inverse]
    sums = np.zeros((labels.size, values.shape[1]))
    np.add.at(sums, inverse, values)
    return (sums / counts[:, None])[inverse]


def regression_adjusted(
    values: ArrayLike,
    baselines: ArrayLike,
    cohorts: ArrayLike | None = None,
    arms: ArrayLike | None = None,
) -> np.ndarray:
    """``values`` with the part the baselines predict taken out (see the module docstring).

    Args:
        values: ``(n,)`` the KPI per row.
        baselines: ``(n,)`` or ``(n, k)`` pre-period values per row; ``k = 0`` returns
            ``values`` unchanged.
        cohorts: ``(n,)`` labels (epochs); the adjustment centres within each. None: one.
        arms: ``(n,)`` labels (strategies); the slope is fitted within cohort x arm cells.
            None: within cohorts.

    Returns:
        ``(n,)`` float64, the adjusted values; each cohort's mean is that of ``values``.
        A baseline that does not vary within cohorts gets slope 0 (least-norm solution).
    """
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1:
        raise BanditValueError("values", "'values' must be a 1-D array.")
    b = np.asarray(baselines, dtype=np.float64)
    b = b[:, None] if b.ndim == 1 else b
    if b.ndim != 2 or b.shape[0] != y.shape[0]:
        raise BanditValueError("baselines", f"'baselines' must have {y.shape[0]} rows.")
    groups = np.zeros(y.shape[0], dtype=np.int64) if cohorts is None else np.asarray(cohorts)
    if groups.shape != y.shape:
        raise BanditValueError("cohorts", f"'cohorts' must have shape {y.shape}.")
    cells = groups
    if arms is not None:
        labels = np.asarray(arms)
        if labels.shape != y.shape:
            raise BanditValueError("arms", f"'arms' must have shape {y.shape}.")
        _, group_codes = np.unique(groups, return_inverse=True)
        _, arm_codes = np.unique(labels, return_inverse=True)
        cells = group_codes * (int(arm_codes.max(initial=0)) + 1) + arm_codes
    if not (np.isfinite(y).all() and np.isfinite(b).all()):
        raise BanditValueError("values", "'values' and 'baselines' must be finite.")
    if y.size == 0 or b.shape[1] == 0:
        return y.copy()
    within_b = b - _cohort_means(b, cells)
    within_y = y - _cohort_means(y, cells)
    theta, *_ = np.linalg.lstsq(within_b, within_y, rcond=None)
    return y - (b - _cohort_means(b, groups)) @ theta


@dataclass(frozen=True)
class StratifiedDifference:
    """A treatment's mean minus the control's, compared within strata.

    ``mean_treatment`` and ``mean_control`` are the two sides' means weighted by the
    treatment's rows per stratum (their difference is ``difference``); ``n_*`` count the rows
    of the strata used; ``strata`` how many strata were used.
    """

    difference: float
    stderr: float
    ci_low: float
    ci_high: float
    mean_treatment: float
    mean_control: float
    n_treatment: int
    n_control: int
    strata: int
    confidence: float


def stratified_difference(
    treatment: ArrayLike,
    treatment_strata: ArrayLike,
    control: ArrayLike,
    control_strata: ArrayLike,
    *,
    treatment_weights: ArrayLike | None = None,
    confidence: float = 0.95,
) -> StratifiedDifference | None:
    """The post-stratified difference of means and its normal interval (module docstring).

    ``treatment_weights``: positive inverse-propensity weights of the treatment's rows (None:
    all equal). Returns None when no stratum has two rows on each side.
    """
    t = np.asarray(treatment, dtype=np.float64)
    c = np.asarray(control, dtype=np.float64)
    t_strata, c_strata = np.asarray(treatment_strata), np.asarray(control_strata)
    if t.shape != t_strata.shape or c.shape != c_strata.shape or t.ndim != 1 or c.ndim != 1:
        raise BanditValueError("strata", "each side needs one stratum label per value (1-D).")
    u = np.ones_like(t) if treatment_weights is None else np.asarray(treatment_weights, float)
    if u.shape != t.shape or not (np.isfinite(u).all() and (u > 0).all()):
        raise BanditValueError(
            "treatment_weights", "'treatment_weights' must be positive, one per treatment row."
        )
    if not 0.0 < confidence < 1.0:
        raise BanditValueError("confidence", "'confidence' must be in (0, 1).")
    rows = []
    for stratum in np.unique(t_strata):
        inside = t_strata == stratum
        ours, weights, theirs = t[inside], u[inside], c[c_strata == stratum]
        if ours.size >= 2 and theirs.size >= 2:
            mean = float(weights @ ours / weights.sum())
            spread = (weights**2 @ (ours - mean) ** 2) / weights.sum() ** 2
            rows.append(
                (
                    ours.size,
                    theirs.size,
                    mean,
                    theirs.mean(),
                    ours.size / (ours.size - 1) * spread + theirs.var(ddof=1) / theirs.size,
                )
            )
    if not rows:
        return None
    table = np.array(rows, dtype=np.float64)
    weights = table[:, 0] / table[:, 0].sum()
    mean_t = float(weights @ table[:, 2])
    mean_c = float(weights @ table[:, 3])
    stderr = float(np.sqrt(weights**2 @ table[:, 4]))
    z = float(ndtri(0.5 + confidence / 2.0))
    difference = mean_t - mean_c
    return StratifiedDifference(
        difference=difference,
        stderr=stderr,
        ci_low=difference - z * stderr,
        ci_high=difference + z * stderr,
        mean_treatment=mean_t,
        mean_control=mean_c,
        n_treatment=int(table[:, 0].sum()),
        n_control=int(table[:, 1].sum()),
        strata=len(rows),
        confidence=confidence,
    )


def cuped_lift(
    values: ArrayLike,
    holdout: ArrayLike,
    baselines: ArrayLike,
    confidence: float = 0.95,
) -> Lift:
    """Lift of treatment over holdout on CUPED-adjusted values (see the module docstring).

    Args:
        values: ``(n,)`` the KPI per unit.
        holdout: ``(n,)`` bool, True for the holdout's units (at least 2 on each side).
        baselines: ``(n,)`` or ``(n, k)`` pre-period covariates per unit, measured before
            the treatment could touch them.
        confidence: the level of the intervals.

    Returns:
        :func:`bandit.lift.welch_lift` of ``regression_adjusted(values, baselines,
        arms=holdout)``, treatment over holdout.
    """
    group = np.asarray(holdout)
    if group.dtype != np.bool_ or group.shape != np.shape(values):
        raise BanditValueError("holdout", "'holdout' must be a bool array, one per value.")
    adjusted = regression_adjusted(values, baselines, arms=group)
    return welch_lift(adjusted[~group], adjusted[group], confidence)
