"""Arms against the interaction arm, customer by customer, and their share of the oracle edge.

Every arm of an ``engage run`` holds out the same customers (the holdout is hashed on the base
spec's key) and lives in a world with the same seed, so the *treated* customers are the same
people with the same luck in every arm. An arm is compared with the interaction arm (the click
learner) on them, per KPI, by the paired difference of each customer's outcome
(:func:`~experiments.analysis.lift.paired_difference`): ``arm - interaction`` with its 95%
interval, read as "no detectable difference" whenever the interval contains 0.

With the oracles (:mod:`experiments.runs.oracles`) each difference is also a share of the
oracle edge: ``share = (arm - interaction) / (revenue oracle - click oracle)``, its interval
the difference's divided by the edge (the oracles are deterministic given the seed). A share
is undefined when the edge's own paired interval reaches 0 (no edge to capture) or when the
edge is no larger than the difference's half-width (the share's interval would be wider than
+-100%: a ratio to a near-zero edge magnifies noise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from experiments.analysis.lift import PairedDifference, paired_difference, reading
from experiments.analysis.model import Number, ReportModel
from experiments.runs.oracles import OracleResult

__all__ = ["KPIS", "REFERENCE", "ArmComparison", "compare_arms", "comparison_of"]

#: The arm every other arm is compared with.
REFERENCE = "interaction"
#: The KPIs compared: per-customer outcome name -> label.
KPIS = {"revenue": "revenue per customer", "retention": "retention"}


class ArmComparison(ReportModel):
    """One arm against the reference arm on one KPI, over the same treated customers.

    ``difference`` is ``mean_arm - mean_reference`` with the paired interval ``low, high``;
    ``reading`` says what the interval supports. ``oracle_edge`` is revenue oracle minus click
    oracle on the KPI (``edge_low, edge_high`` its paired interval); ``share`` (with
    ``share_low, share_high``) the difference over the edge.
    ``note`` says why something is missing.
    """

    arm: str
    reference: str
    kpi: str
    n: int
    mean_arm: Number
    mean_reference: Number
    difference: Number
    low: Number
    high: Number
    confidence: float
    reading: str
    oracle_edge: Number = None
    edge_low: Number = None
    edge_high: Number = None
    share: Number = None
    share_low: Number = None
    share_high: Number = None
    note: str | None = None


def compare_arms(
    per_customer: Mapping[str, Mapping[str, np.ndarray]],
    treated: np.ndarray,
    oracles: OracleResult | None,
    *,
    decisions: Mapping[str, int] | None = None,
    reference: str = REFERENCE,
) -> list[ArmComparison]:
    """Every arm (the reference too, as its own zero) against ``reference``, per KPI.

    Args:
        per_customer: arm -> KPI -> per-customer values over all customers ``(n,)``, in the
            order of the arms' run.
        treated: ``(n,)`` bool, the customers outside the shared holdout.
        oracles: both oracles' KPIs over the treated customers, or None when not run.
        decisions: arm -> number of decisions; an arm without any is noted.
        reference: the arm compared with.

    Returns nothing when the reference arm was not run.
    """
    if reference not in per_customer:
        return []
    rows = []
    for arm, measures in per_customer.items():
        for kpi in KPIS:
            first = np.asarray(measures[kpi], dtype=np.float64)[treated]
            second = np.asarray(per_customer[reference][kpi], dtype=np.float64)[treated]
            paired = paired_difference(first, second)
            notes = []
            if arm == reference:
                notes.append("the reference arm")
            if decisions is not None and decisions.get(arm, 0) == 0:
                notes.append("no decisions: every visit was suppressed or the run too short")
            if paired.low is None:
                notes.append(f"no interval: {paired.n} treated customer(s), it needs 2")
            edge, shares, note = _share(paired, oracles, kpi)
            if note is not None:
                notes.append(note)
            share, share_low, share_high = shares
            rows.append(
                ArmComparison(
                    arm=arm,
                    reference=reference,
                    kpi=kpi,
                    n=paired.n,
                    mean_arm=paired.mean_first,
                    mean_reference=paired.mean_second,
                    difference=paired.difference,
                    low=paired.low,
                    high=paired.high,
                    confidence=paired.confidence,
                    reading=(
                        "reference"
                        if arm == reference
                        else reading(
                            paired.low,
                            paired.high,
                            higher=f"{arm} higher",
                            lower=f"{arm} lower",
                        )
                    ),
                    oracle_edge=edge,
                    edge_low=oracles.edge_low.get(kpi) if oracles is not None else None,
                    edge_high=oracles.edge_high.get(kpi) if oracles is not None else None,
                    share=share,
                    share_low=share_low,
                    share_high=share_high,
                    note="; ".join(notes) or None,
                )
            )
    return rows


def _share(
    paired: PairedDifference, oracles: OracleResult | None, kpi: str
) -> tuple[float | None, tuple[float | None, float | None, float | None], str | None]:
    """The oracle edge on ``kpi``, the difference's share of it with its interval, and why
    there is no share when there is none.

    A share needs an edge that is positive beyond its own interval and larger than the
    difference's half-width: a smaller edge would make the share's interval wider than
    +-100%, a ratio that magnifies noise rather than measuring capture.
    """
    none = (None, None, None)
    if oracles is None:
        return None, none, "oracles not run"
    edge = oracles.edge(kpi)
    low, high = oracles.edge_low.get(kpi, 0.0), oracles.edge_high.get(kpi, 0.0)
    if not oracles.has_edge(kpi):
        return (
            edge,
            none,
            f"no share: the oracle edge is not positive beyond its interval ({edge:+.4g} "
            f"[{low:+.4g}, {high:+.4g}])",
        )
    if paired.difference is None or paired.low is None or paired.high is None:
        return edge, none, "no share: the difference has no interval"
    half = (paired.high - paired.low) / 2.0
    if edge <= half:
        return (
            edge,
            none,
            (
                f"no share: the oracle edge ({edge:+.4g} [{low:+.4g}, {high:+.4g}]) is within this "
                f"difference's precision (+-{half:.4g})"
            ),
        )
    return edge, (paired.difference / edge, paired.low / edge, paired.high / edge), None


def comparison_of(rows: Sequence[ArmComparison], arm: str, kpi: str) -> ArmComparison | None:
    """The row of ``arm`` on ``kpi``, if there is one."""
    return next((row for row in rows if row.arm == arm and row.kpi == kpi), None)
