"""Safe promotion's verdicts as report values: what ``engage experiments show``, the HTTP API
(``GET /v1/experiments/{key}/promotions`` and the report) and ``engage report`` show.

Each learned snapshot under ``[promotion] enabled`` has one record (see
:mod:`experiments.engine.promotion`): pending, promoted or rejected, with the SNIPS estimates
it was judged by and the reason in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from experiments.analysis.model import Number, ReportModel
from experiments.store.database import Database
from experiments.store.models import PolicyPromotion
from experiments.store.promotions import list_promotions
from experiments.vocabulary import PromotionStatus

__all__ = ["PromotionRecord", "promotion_lines", "read_promotions"]

#: How many of the newest records a report shows.
SHOWN = 20


class PromotionRecord(ReportModel):
    """One snapshot's promotion record (as :class:`experiments.store.models.PolicyPromotion`):
    the candidate ``version``, the ``serving_version`` it was judged against, the SNIPS
    estimates on ``rows`` fresh rewards, the paired difference and its interval, the margin,
    and the reason. Estimates are None while pending."""

    version: int
    serving_version: int
    status: PromotionStatus
    estimator: str | None
    rows: int | None
    candidate_value: Number
    candidate_low: Number
    candidate_high: Number
    serving_value: Number
    difference: Number
    difference_low: Number
    difference_high: Number
    margin: Number
    confidence: Number
    reason: str
    created_at: datetime
    decided_at: datetime | None


def read_promotions(
    database: Database, key: str, *, limit: int = SHOWN
) -> tuple[PromotionRecord, ...]:
    """The newest ``limit`` promotion records of experiment ``key``, newest first (none for an
    experiment without safe promotion)."""
    with database.session() as session:
        rows: Sequence[PolicyPromotion] = list_promotions(session, experiment_key=key, limit=limit)
        return tuple(PromotionRecord.model_validate(row, from_attributes=True) for row in rows)


def promotion_lines(records: Sequence[PromotionRecord]) -> list[str]:
    """One line per record, newest first: ``v3 rejected: <reason>``."""
    return [f"v{record.version}: {record.reason}" for record in records]
