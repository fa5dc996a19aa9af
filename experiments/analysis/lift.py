"""One KPI's lift of treatment over holdout as a report row, and the lift table.

:class:`LiftRow` is the one row every lift engage reports is written in: the live report (HTTP,
``engage report``, MLflow), the KPI lifts of an ``engage run`` and the lift figure
(:func:`experiments.analysis.plots.lift_intervals`). :meth:`LiftRow.from_lift` is the one
converter from :class:`bandit.lift.Lift`: the statistics are computed there, and the relative
always-valid interval by :func:`bandit.lift.relative_always_valid_interval`.

Intervals are flat ``*_low``/``*_high`` pairs at level ``confidence``:

- ``diff_low, diff_high``: Welch's interval of ``difference = mean_treatment - mean_holdout``;
- ``diff_av_low, diff_av_high``: the always-valid interval of the difference;
- ``ci_low, ci_high``: the delta-method interval of ``relative_lift`` (0.05 = +5%);
- ``av_low, av_high``: the always-valid interval on the relative scale.

With pre-period covariates (the spec's ``[report] covariates``), :meth:`LiftRow.adjusted_by`
adds the same lift on CUPED-adjusted values (:func:`bandit.adjustment.cuped_lift`):

- ``adjusted_difference`` with ``adjusted_low, adjusted_high``, and the relative form
  ``adjusted_relative_lift`` with ``adjusted_ci_low, adjusted_ci_high``;
- ``width_reduction = 1 - (adjusted_high - adjusted_low) / (diff_high - diff_low)``: the
  share by which the adjustment narrows the difference's interval (0.2 = 20% narrower).

A statistic that is undefined (every relative one when the holdout mean is 0) is None. A KPI
whose groups are too small for a lift still gets a row, with ``note`` saying why.

Every table reads a difference with :func:`reading`: "no detectable difference" whenever its
95% interval contains 0, never "beats". :func:`paired_difference` is the difference of two
measurements of the same units (two policies on the same customers), with its interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from bandit.adjustment import cuped_lift
from bandit.lift import Lift, relative_always_valid_interval, welch_lift
from experiments.analysis.model import Number, ReportModel

__all__ = [
    "NO_DIFFERENCE",
    "LiftRow",
    "PairedDifference",
    "adjustment_note",
    "kpi_lift_rows",
    "lift_table_markdown",
    "narrower",
    "paired_difference",
    "percent",
    "reading",
    "significant",
]

#: How every report reads a difference whose interval contains 0.
NO_DIFFERENCE = "no detectable difference"

#: Fewest units per group a lift or a paired difference is computed on.
MIN_UNITS = 2


class LiftRow(ReportModel):
    """One KPI's lift of treatment over holdout for one policy (see the module docstring)."""

    kpi: str
    policy: str
    n_treatment: int
    n_holdout: int
    mean_treatment: Number
    mean_holdout: Number
    difference: Number
    diff_low: Number
    diff_high: Number
    relative_lift: Number
    ci_low: Number
    ci_high: Number
    av_low: Number
    av_high: Number
    p_value: Number
    stderr: Number
    df: Number
    diff_av_low: Number
    diff_av_high: Number
    confidence: float
    mixing_variance: Number
    note: str | None = None
    #: The covariates of the adjusted interval (empty: none; see the module docstring).
    covariates: tuple[str, ...] = ()
    adjusted_difference: Number = None
    adjusted_low: Number = None
    adjusted_high: Number = None
    adjusted_relative_lift: Number = None
    adjusted_ci_low: Number = None
    adjusted_ci_high: Number = None
    width_reduction: Number = None

    @classmethod
    def from_lift(cls, kpi: str, policy: str, lift: Lift) -> LiftRow:
        """The row of a :class:`bandit.lift.Lift` (its tuples become ``*_low``/``*_high``)."""
        av_low, av_high = relative_always_valid_interval(lift)
        return cls(
            kpi=kpi,
            policy=policy,
            n_treatment=lift.n_treatment,
            n_holdout=lift.n_holdout,
            mean_treatment=lift.mean_treatment,
            mean_holdout=lift.mean_holdout,
            difference=lift.difference,
            diff_low=lift.diff_ci[0],
            diff_high=lift.diff_ci[1],
            relative_lift=lift.relative_lift,
            ci_low=lift.relative_ci[0],
            ci_high=lift.relative_ci[1],
            av_low=av_low,
            av_high=av_high,
            p_value=lift.p_value,
            stderr=lift.stderr,
            df=lift.df,
            diff_av_low=lift.always_valid_ci[0],
            diff_av_high=lift.always_valid_ci[1],
            confidence=lift.confidence,
            mixing_variance=lift.mixing_variance,
        )

    @classmethod
    def too_small(cls, kpi: str, policy: str, n_treatment: int, n_holdout: int) -> LiftRow:
        """The row of a KPI whose groups are too small for a lift: counts and the reason."""
        stats_fields = set(cls.model_fields) - {
            "kpi",
            "policy",
            "n_treatment",
            "n_holdout",
            "confidence",
            "note",
            "covariates",
        }
        return cls.model_validate(
            {
                "kpi": kpi,
                "policy": policy,
                "n_treatment": n_treatment,
                "n_holdout": n_holdout,
                "confidence": 0.95,
                "note": (
                    f"no lift: {n_treatment} treatment and {n_holdout} holdout customers; "
                    f"it needs at least {MIN_UNITS} in each group"
                ),
                **dict.fromkeys(stats_fields),
            }
        )

    def adjusted_by(self, covariates: Sequence[str], adjusted: Lift) -> LiftRow:
        """This row with the CUPED lift ``adjusted`` on ``covariates`` beside it."""
        raw_width = (
            None
            if self.diff_low is None or self.diff_high is None
            else self.diff_high - self.diff_low
        )
        low, high = adjusted.diff_ci
        # Relative to a holdout mean of 0 the lift is undefined, adjusted or not (the adjusted
        # holdout mean is only near 0, and a ratio to it would be noise).
        relative = self.relative_lift is not None
        return self.model_copy(
            update={
                "covariates": tuple(covariates),
                "adjusted_difference": adjusted.difference,
                "adjusted_low": low,
                "adjusted_high": high,
                "adjusted_relative_lift": adjusted.relative_lift if relative else None,
                "adjusted_ci_low": adjusted.relative_ci[0] if relative else None,
                "adjusted_ci_high": adjusted.relative_ci[1] if relative else None,
                "width_reduction": (
                    1.0 - (high - low) / raw_width
                    if raw_width is not None and raw_width > 0
                    else None
                ),
            }
        )

    @property
    def adjusted_reading(self) -> str | None:
        """How the adjusted difference reads (None without an adjustment)."""
        if self.adjusted_low is None or self.adjusted_high is None:
            return None
        return reading(
            self.adjusted_low, self.adjusted_high, higher="above holdout", lower="below holdout"
        )

    @property
    def reading(self) -> str:
        """How the difference reads (:func:`reading` of Welch's interval of the difference)."""
        if self.note is not None:
            return self.note
        return reading(self.diff_low, self.diff_high, higher="above holdout", lower="below holdout")


def reading(
    low: float | None, high: float | None, *, higher: str = "higher", lower: str = "lower"
) -> str:
    """A difference read from its interval: :data:`NO_DIFFERENCE` when ``[low, high]``
    contains 0, ``higher`` when it lies above 0, ``lower`` below; "n/a" when undefined."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return "n/a"
    if low > 0:
        return higher
    if high < 0:
        return lower
    return NO_DIFFERENCE


class PairedDifference(ReportModel):
    """The mean of ``first - second`` over the same ``n`` units, with its interval.

    ``low, high`` is the Student t interval at level ``confidence`` of the mean per-unit
    difference (a paired comparison: each unit's own level cancels); None below 2 units.
    """

    n: int
    mean_first: Number
    mean_second: Number
    difference: Number
    stderr: Number
    low: Number
    high: Number
    confidence: float


def paired_difference(
    first: np.ndarray, second: np.ndarray, *, confidence: float = 0.95
) -> PairedDifference:
    """Paired difference of two measurements of the same units, each shape ``(n,)``.

    ``d_i = first_i - second_i``; ``difference = mean(d)``; ``stderr = sd(d) / sqrt(n)``
    (sample standard deviation); the interval is ``difference +- t_{(1+c)/2, n-1} stderr``
    (Student 1908; any text on the paired t test).
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("first and second must be 1-D arrays of the same length")
    n = a.size
    if n < MIN_UNITS:
        mean_a = float(a.mean()) if n else None
        mean_b = float(b.mean()) if n else None
        gap = None if mean_a is None or mean_b is None else mean_a - mean_b
        return PairedDifference(
            n=n,
            mean_first=mean_a,
            mean_second=mean_b,
            difference=gap,
            stderr=None,
            low=None,
            high=None,
            confidence=confidence,
        )
    from scipy.special import stdtrit  # lazy, as in bandit.lift: scipy costs at import

    differences = a - b
    mean = float(differences.mean())
    stderr = float(differences.std(ddof=1) / np.sqrt(n))
    half = float(stdtrit(n - 1, 0.5 + confidence / 2.0)) * stderr
    return PairedDifference(
        n=n,
        mean_first=float(a.mean()),
        mean_second=float(b.mean()),
        difference=mean,
        stderr=stderr,
        low=mean - half,
        high=mean + half,
        confidence=confidence,
    )


def kpi_lift_rows(
    policy: str,
    measures: Mapping[str, np.ndarray],
    holdout: np.ndarray,
    *,
    covariates: Mapping[str, np.ndarray] | None = None,
) -> list[LiftRow]:
    """Lift of every KPI of treatment over holdout customers.

    ``measures`` maps a KPI to its per-customer values, shape ``(n,)``; ``holdout`` (n,) marks
    the holdout customers. A KPI with fewer than 2 customers in a group gets a row without
    statistics whose ``note`` says so (:meth:`LiftRow.too_small`). ``covariates`` maps a
    pre-period field to its per-customer values ``(n,)``; when given, every row also carries
    the lift adjusted on all of them (:meth:`LiftRow.adjusted_by`).
    """
    names = list(covariates or {})
    baselines = (
        np.column_stack([np.asarray(covariates[name], np.float64) for name in names])
        if covariates
        else None
    )
    rows = []
    for kpi, values in measures.items():
        treatment, control = values[~holdout], values[holdout]
        if treatment.size < MIN_UNITS or control.size < MIN_UNITS:
            rows.append(LiftRow.too_small(kpi, policy, treatment.size, control.size))
            continue
        row = LiftRow.from_lift(kpi, policy, welch_lift(treatment, control))
        if baselines is not None:
            row = row.adjusted_by(names, cuped_lift(values, holdout, baselines))
        rows.append(row)
    return rows


def percent(value: float | None) -> str:
    """A signed percentage ("+3.2%"), or "n/a" when undefined."""
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def significant(value: float | None) -> str:
    """``value`` to 4 significant digits, or "n/a" when undefined."""
    return "n/a" if value is None else f"{value:.4g}"


def lift_table_markdown(rows: Iterable[LiftRow]) -> str:
    """The lift table as markdown: one row per policy and KPI, each with its reading.

    When a row carries a CUPED adjustment, two columns follow the 95% interval: the adjusted
    interval and how much narrower it is than the unadjusted one (:func:`narrower`), and a
    line under the table names the covariates.
    """
    rows = list(rows)
    covariates = next((row.covariates for row in rows if row.covariates), ())
    extra = " CUPED 95% CI | narrower |" if covariates else ""
    lines = [
        f"| policy | KPI | treatment | holdout | lift | 95% CI |{extra} always-valid CI "
        "| n (T/H) | reading |",
        "|---|---|---:|---:|---:|---|" + ("---|---:|" if covariates else "") + "---|---:|---|",
    ]
    for row in rows:
        adjusted = (
            f" [{percent(row.adjusted_ci_low)}, {percent(row.adjusted_ci_high)}] "
            f"| {narrower(row.width_reduction)} |"
            if covariates
            else ""
        )
        lines.append(
            f"| {row.policy} | {row.kpi} | {significant(row.mean_treatment)} "
            f"| {significant(row.mean_holdout)} | {percent(row.relative_lift)} "
            f"| [{percent(row.ci_low)}, {percent(row.ci_high)}] |{adjusted}"
            f" [{percent(row.av_low)}, {percent(row.av_high)}] "
            f"| {row.n_treatment}/{row.n_holdout} | {row.reading} |"
        )
    if covariates:
        lines += ["", adjustment_note(covariates)]
    return "\n".join(lines)


def narrower(reduction: float | None) -> str:
    """A width reduction as "23% narrower" text ("n/a" when undefined; a negative one, an
    adjustment that widened the interval, reads "-4%")."""
    return "n/a" if reduction is None else f"{round(100 * reduction):d}%"


def adjustment_note(covariates: Sequence[str]) -> str:
    """The sentence naming what the CUPED intervals adjust on."""
    return (
        f"CUPED: adjusted on the pre-period covariates {', '.join(covariates)} (regression "
        "adjustment, slope fitted within each group); 'narrower' is how much narrower the "
        "adjusted 95% interval of the difference is than the unadjusted one."
    )
