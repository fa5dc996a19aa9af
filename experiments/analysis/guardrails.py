"""The trust checks of a live experiment: the sample-ratio check of its split, and its
guardrail KPIs, each holding, breached or not yet decided.

:func:`guardrail_checks` reads one experiment's customers once (:mod:`experiments.store.guardrails`)
and returns a :class:`GuardrailChecks`: the live report carries it at its top (HTTP, ``engage
report``, MLflow), and the engine reads the same value to stop an experiment by itself
(:mod:`experiments.engine.guardrails`), so what is shown is what is acted on.

- **Split.** Customers are counted per group, each once, and compared with the configured
  holdout share by Pearson's chi-square; flagged at p < 0.001
  (:func:`bandit.guardrails.sample_ratio_test`). No check without a holdout (share 0). The
  automatic stop acts on the anytime-valid p-value of the same counts instead
  (:func:`bandit.guardrails.sequential_sample_ratio_p`, also below 0.001): it is checked again
  and again as customers arrive, which a fixed-n test does not allow.
- **Guardrails.** Each KPI (``[[guardrails.kpi]]``, :mod:`experiments.spec.guardrails`) is
  measured per customer, and the always-valid interval of ``treatment - holdout`` at the
  section's confidence (:func:`bandit.guardrails.guarded_difference`: the report's boundary,
  with a variance that cannot collapse on a rare event) is read against the margin
  (:func:`bandit.guardrails.non_inferiority`). The interval is a confidence sequence, so the
  checks may run after every learning step without inflating the false-stop rate.

``since`` restricts both to customers whose decisions were made after an admin resumed the
experiment: a resume starts a new period of evidence instead of being undone at once by the
evidence that stopped it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlmodel import Session

from bandit.guardrails import (
    SRM_ALPHA,
    guarded_difference,
    non_inferiority,
    sample_ratio_test,
    sequential_sample_ratio_p,
)
from experiments.analysis.lift import MIN_UNITS, significant
from experiments.analysis.model import Number, ReportModel
from experiments.analysis.tracking_params import clean_key
from experiments.spec import ExperimentSpec, GuardrailSpec
from experiments.store.guardrails import CustomerRow, customer_events, customer_rows
from experiments.vocabulary import Group, GuardrailStatus

__all__ = [
    "GuardrailChecks",
    "GuardrailRow",
    "SampleRatioCheck",
    "checks_markdown",
    "guardrail_checks",
    "guardrail_tags",
]


class SampleRatioCheck(ReportModel):
    """Customers per group against the configured holdout share (chi-square, 1 df)."""

    treatment: int
    holdout: int
    expected_holdout_share: float
    observed_holdout_share: Number
    statistic: float
    p_value: float
    #: Anytime-valid p-value of the same counts (what the automatic stop acts on).
    always_valid_p: float
    alpha: float
    mismatch: bool
    action: str

    @property
    def stops(self) -> bool:
        """Whether the automatic stop acts: action ``stop`` and the anytime-valid p below
        ``alpha`` (a chi-square flag alone is reported, not acted on)."""
        return self.action == "stop" and self.always_valid_p < self.alpha

    @property
    def reason(self) -> str:
        """The sentence a report and a stop give for a mismatch."""
        return (
            f"sample-ratio mismatch: {self.holdout} of {self.treatment + self.holdout} "
            f"customers in the holdout ({100 * (self.observed_holdout_share or 0.0):.1f}%) "
            f"where the spec says {100 * self.expected_holdout_share:.1f}% (chi-square p = "
            f"{self.p_value:.2g}, anytime-valid p = {self.always_valid_p:.2g}; flagged below "
            f"{self.alpha:g})"
        )


class GuardrailRow(ReportModel):
    """One guardrail KPI per customer: the groups' means, the difference ``treatment -
    holdout`` with its always-valid interval ``av_low, av_high`` at ``confidence``, and the
    reading against ``margin`` (``status``); ``note`` says why a KPI is not yet computable."""

    kpi: str
    direction: str
    margin: float
    action: str
    status: GuardrailStatus
    n_treatment: int
    n_holdout: int
    mean_treatment: Number = None
    mean_holdout: Number = None
    difference: Number = None
    av_low: Number = None
    av_high: Number = None
    confidence: float
    note: str | None = None

    @property
    def reason(self) -> str:
        """The sentence a report and a stop give for a breach."""
        worse = "below" if self.direction == "higher" else "above"
        return (
            f"guardrail {self.kpi} breached: treatment {significant(self.mean_treatment)} vs "
            f"holdout {significant(self.mean_holdout)}, difference {significant(self.difference)} "
            f"with {100 * self.confidence:g}% always-valid interval [{significant(self.av_low)}, "
            f"{significant(self.av_high)}], {worse} the margin of {significant(self.margin)}"
        )


class GuardrailChecks(ReportModel):
    """The split's check (None without a holdout) and every guardrail's reading, over the
    customers decided at or after ``since`` (None: all of them)."""

    since: datetime | None
    sample_ratio: SampleRatioCheck | None
    guardrails: tuple[GuardrailRow, ...]

    def stop_reasons(self) -> list[str]:
        """Why the experiment should fall back to control: each breach or mismatch whose
        action is ``stop`` (empty when none is)."""
        reasons = []
        if self.sample_ratio is not None and self.sample_ratio.stops:
            reasons.append(self.sample_ratio.reason)
        reasons += [
            row.reason
            for row in self.guardrails
            if row.status == GuardrailStatus.BREACHED and row.action == "stop"
        ]
        return reasons


def guardrail_checks(
    session: Session, spec: ExperimentSpec, *, key: str, since: datetime | None = None
) -> GuardrailChecks:
    """The checks of experiment ``key`` under ``spec`` (see the module docstring)."""
    customers = customer_rows(session, experiment_key=key, since=since)
    holdout = np.array([row.group == Group.HOLDOUT for row in customers], dtype=bool)
    section = spec.guardrails
    events = sorted({g.event_name for g in section.kpi if g.event_name is not None})
    counts: dict[tuple[str, str], tuple[int, float]] = {
        (item.customer_id, item.event): (item.count, item.total)
        for item in customer_events(session, experiment_key=key, events=events, since=since)
    }
    rows = tuple(
        _row(guardrail, _measure(guardrail, customers, counts), holdout, section.confidence)
        for guardrail in section.kpi
    )
    return GuardrailChecks(
        since=since,
        sample_ratio=_sample_ratio(spec, holdout),
        guardrails=rows,
    )


def _sample_ratio(spec: ExperimentSpec, holdout: np.ndarray) -> SampleRatioCheck | None:
    share = spec.holdout.share
    if share <= 0:
        return None
    held = int(holdout.sum())
    treated = int(holdout.size - held)
    counts, shares = np.array([treated, held]), [1.0 - share, share]
    test = sample_ratio_test(counts, shares, alpha=SRM_ALPHA)
    return SampleRatioCheck(
        treatment=treated,
        holdout=held,
        expected_holdout_share=share,
        observed_holdout_share=held / holdout.size if holdout.size else None,
        statistic=test.statistic,
        p_value=test.p_value,
        always_valid_p=sequential_sample_ratio_p(counts, shares),
        alpha=test.alpha,
        mismatch=test.mismatch,
        action=spec.guardrails.sample_ratio,
    )


def _measure(
    guardrail: GuardrailSpec,
    customers: Sequence[CustomerRow],
    counts: dict[tuple[str, str], tuple[int, float]],
) -> np.ndarray:
    """The KPI of every customer ``(n,)``, in the order of ``customers``."""
    if guardrail.measure == "contacts":
        return np.array([row.served for row in customers], dtype=np.float64)
    event = guardrail.event_name  # the spec requires one for every other measure
    found = [counts.get((row.customer_id, event or ""), (0, 0.0)) for row in customers]
    if guardrail.measure == "retention":
        return np.array([count == 0 for count, _ in found], dtype=np.float64)
    if guardrail.measure == "count":
        return np.array([count for count, _ in found], dtype=np.float64)
    return np.array([total for _, total in found], dtype=np.float64)


def _row(
    guardrail: GuardrailSpec, values: np.ndarray, holdout: np.ndarray, confidence: float
) -> GuardrailRow:
    treated, control = values[~holdout], values[holdout]
    common: dict[str, object] = {
        "kpi": guardrail.label,
        "direction": "higher" if guardrail.higher_is_better else "lower",
        "margin": guardrail.margin,
        "action": guardrail.action,
        "n_treatment": int(treated.size),
        "n_holdout": int(control.size),
        "confidence": confidence,
    }
    if treated.size < MIN_UNITS or control.size < MIN_UNITS:
        return GuardrailRow.model_validate(
            {
                **common,
                "status": GuardrailStatus.UNDECIDED,
                "note": f"needs at least {MIN_UNITS} customers in each group",
            }
        )
    lift = guarded_difference(treated, control, confidence=confidence)
    low, high = lift.low, lift.high
    status = non_inferiority(
        low, high, margin=guardrail.margin, higher_is_better=guardrail.higher_is_better
    )
    return GuardrailRow.model_validate(
        {
            **common,
            "status": GuardrailStatus(status),
            "mean_treatment": lift.mean_treatment,
            "mean_holdout": lift.mean_holdout,
            "difference": lift.difference,
            "av_low": low,
            "av_high": high,
        }
    )


def checks_markdown(checks: GuardrailChecks) -> str:
    """The checks as markdown: the split's line, then one table row per guardrail."""
    ratio = checks.sample_ratio
    if ratio is None:
        lines = ["Split: no holdout, nothing to check."]
    elif ratio.mismatch:
        lines = [f"**Split: {ratio.reason}.**"]
    else:
        lines = [
            f"Split: {ratio.holdout} of {ratio.treatment + ratio.holdout} customers in the "
            f"holdout, expected {100 * ratio.expected_holdout_share:.1f}% (chi-square p = "
            f"{ratio.p_value:.2g}): no sample-ratio mismatch."
        ]
    if checks.since is not None:
        lines.append(f"Checks cover decisions since {checks.since.isoformat()}.")
    if checks.guardrails:
        lines += [
            "",
            "| guardrail | better | margin | treatment | holdout | difference "
            "| always-valid CI | status | action |",
            "|---|---|---:|---:|---:|---:|---|---|---|",
        ]
        for row in checks.guardrails:
            status = row.status.value if row.note is None else f"{row.status.value} ({row.note})"
            lines.append(
                f"| {row.kpi} | {row.direction} | {significant(row.margin)} "
                f"| {significant(row.mean_treatment)} | {significant(row.mean_holdout)} "
                f"| {significant(row.difference)} "
                f"| [{significant(row.av_low)}, {significant(row.av_high)}] "
                f"| {status} | {row.action} |"
            )
    return "\n".join(lines)


def guardrail_tags(
    checks: GuardrailChecks | None, *, stop_reason: str | None, stopped_at: datetime | None
) -> dict[str, str]:
    """MLflow tags of a report's checks, so runs can be filtered on them: ``engage.stopped``
    (``true``/``false``) with ``engage.stop_reason`` and ``engage.stopped_at`` when it stopped
    itself, ``engage.srm`` (``mismatch``, ``ok`` or ``none`` without a holdout) and
    ``engage.guardrail.<kpi>`` per guardrail (its status; characters MLflow refuses in a
    name become ``_``, :func:`~experiments.analysis.tracking_params.clean_key`)."""
    tags = {"engage.stopped": "false" if stop_reason is None else "true"}
    if stop_reason is not None:
        tags["engage.stop_reason"] = stop_reason
        if stopped_at is not None:
            tags["engage.stopped_at"] = stopped_at.isoformat()
    if checks is None:
        return tags
    ratio = checks.sample_ratio
    tags["engage.srm"] = "none" if ratio is None else "mismatch" if ratio.mismatch else "ok"
    for row in checks.guardrails:
        tags[clean_key(f"engage.guardrail.{row.kpi}")] = row.status.value
    return tags
