"""Churn labels over the days after a contact, for ``lookahead_ts``'s churn model.

A churn that a fatiguing contact causes comes days or weeks later, mostly after the
decision's own reward window (a day for the funnel). So the churn model
(:mod:`bandit.churn`) learns from every served decision once ``W`` (the policy's
``churn_window``) has passed since it: label 1 when the customer's ``[state] churn_event``
occurred in ``[decided, decided + W)``, else 0. The runner and a live client report such a
churn by customer (no decision's window holds it), so the labels read the customer's
outcomes by time, not by attribution.

Which decisions each learning step labels follows from the snapshots alone, with no cursor
stored: the step publishing a snapshot at ``now`` after one published at ``previous`` labels
the decisions made in ``[previous - W, now - W)``. These intervals tile time, so every
decision is labelled once, by the first step at least ``W`` after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlmodel import Session

from experiments.engine.encoding import encode_usable
from experiments.spec import ExperimentSpec
from experiments.store.outcomes import customer_event_times
from experiments.store.served import ServedDecision, served_decisions_between

__all__ = ["ChurnLabels", "label_churn", "matured_churn_labels", "matured_interval"]


@dataclass(frozen=True)
class ChurnLabels:
    """Encoded contexts ``(n, d)``, actions ``(n,)`` and 0/1 labels ``(n,)``."""

    X: np.ndarray
    actions: np.ndarray
    labels: np.ndarray


def matured_interval(
    previous: datetime | None, now: datetime, window: timedelta, since: datetime | None = None
) -> tuple[datetime | None, datetime]:
    """``[previous - W, now - W)``: the decisions whose label completes between the previous
    snapshot and this one (``previous`` None: every decision before ``now - W``), starting no
    earlier than ``since`` when given (decisions before it are never labelled)."""
    start = None if previous is None else previous - window
    if since is not None:
        start = since if start is None else max(start, since)
    return start, now - window


def label_churn(
    decisions: Sequence[ServedDecision],
    churn_times: Mapping[str, Sequence[datetime]],
    window: timedelta,
) -> np.ndarray:
    """``(n,)`` 1.0 where the decision's customer churned in ``[created_at, created_at +
    window)``, else 0.0."""
    labels = np.zeros(len(decisions))
    for row, decision in enumerate(decisions):
        end = decision.created_at + window
        times = churn_times.get(decision.customer_id, ())
        labels[row] = float(any(decision.created_at <= at < end for at in times))
    return labels


def matured_churn_labels(
    session: Session,
    *,
    key: str,
    spec: ExperimentSpec,
    event: str,
    previous: datetime | None,
    now: datetime,
    window: timedelta,
    since: datetime | None = None,
) -> ChurnLabels:
    """The churn labels that matured between the snapshot published at ``previous`` and
    ``now`` (module docstring), with the decisions' encoded contexts and actions, for
    decisions made at ``since`` or later (None: any). A decision whose context was erased is
    left out, as in learning."""
    start, end = matured_interval(previous, now, window, since)
    decisions = served_decisions_between(session, experiment_key=key, start=start, end=end)
    X, usable = encode_usable(spec, decisions)
    if not usable:
        return ChurnLabels(X, np.zeros(0, dtype=np.int64), np.zeros(0))
    times = customer_event_times(
        session,
        experiment_key=key,
        customer_ids=[decision.customer_id for decision in usable],
        event=event,
        start=usable[0].created_at,
        end=usable[-1].created_at + window,
    )
    actions = np.array([decision.action_index for decision in usable], dtype=np.int64)
    return ChurnLabels(X, actions, label_churn(usable, times, window))
