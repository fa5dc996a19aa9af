"""Transitions for a value-function policy (``fitted_q``), built from the decision log.

A rewarded decision ``(s, a, r)`` becomes the transition ``(s, a, r, s', done)``:

- ``s'`` is the logged context (with its customer state, :mod:`experiments.spec.state`) of
  the customer's *next* decision with an action served, made after it and within the spec's
  ``[state] horizon``; the actions eligible there are the ones that decision could choose from
  (the spec's rules and the request's exclusions);
- ``done`` when the customer churned after it (an outcome of ``[state] churn_event`` on the
  decision), or when no next decision came within the horizon (the horizon has passed);
- otherwise the decision *waits*: no next decision yet, but the horizon is still open. It is
  neither learned nor marked learned, and is looked at again by the next learning step, until
  its customer decides again or the horizon passes. So a transition is learned at most
  ``horizon`` after its decision, whatever its reward window.

:func:`link` is the pure part (which next decision, done or wait, per row);
:func:`build_transitions` reads what it needs from the store in two queries and encodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
from sqlmodel import Session

from experiments.spec import ExperimentSpec, SpecError
from experiments.spec.state import StateSpec
from experiments.store.outcomes import outcomes_for_decisions
from experiments.store.rewards import LearningRow
from experiments.store.served import NextDecision, next_decisions

__all__ = ["Link", "LinkKind", "Transitions", "build_transitions", "link"]


class LinkKind(StrEnum):
    """What a rewarded decision leads to."""

    NEXT = "next"  # the customer's next decision, within the horizon
    DONE = "done"  # terminal: churned, or no next decision within the horizon
    WAIT = "wait"  # not known yet: no next decision so far, horizon still open


@dataclass(frozen=True)
class Link:
    """One rewarded decision's successor: its kind and, for ``next``, the next decision."""

    kind: LinkKind
    next: NextDecision | None = None


def link(
    rows: Sequence[LearningRow],
    later: Sequence[NextDecision],
    churned: set[str],
    *,
    now: datetime,
    horizon: timedelta,
) -> list[Link]:
    """Per row, its successor (module docstring). ``later`` holds the rows' customers' decisions
    after the rows, in any order; ``churned`` the ids of rows whose customer churned."""
    by_customer: dict[str, list[NextDecision]] = {}
    for decision in sorted(later, key=lambda item: (item.created_at, item.id)):
        by_customer.setdefault(decision.customer_id, []).append(decision)
    links = []
    for row in rows:
        if row.decision_id in churned:
            links.append(Link(LinkKind.DONE))
            continue
        following = next(
            (
                decision
                for decision in by_customer.get(row.customer_id, ())
                if decision.created_at > row.created_at and decision.id != row.decision_id
            ),
            None,
        )
        closes = row.created_at + horizon
        if following is not None and following.created_at <= closes:
            links.append(Link(LinkKind.NEXT, following))
        elif following is not None or now >= closes:
            links.append(Link(LinkKind.DONE))
        else:
            links.append(Link(LinkKind.WAIT))
    return links


@dataclass(frozen=True)
class Transitions:
    """The rows ready to learn (``rows``, in order) as arrays for
    :meth:`bandit.policies.fitted_q.FittedQPolicy.update_transitions`: ``X`` (n, d), ``X_next``
    (n, d), ``done`` (n,), ``next_mask`` (n, A); and the rows that ``waiting``."""

    rows: list[LearningRow]
    X: np.ndarray
    X_next: np.ndarray
    done: np.ndarray
    next_mask: np.ndarray
    waiting: list[LearningRow]


def build_transitions(
    session: Session,
    key: str,
    spec: ExperimentSpec,
    rows: Sequence[LearningRow],
    X: np.ndarray,
    *,
    now: datetime,
) -> Transitions:
    """The transitions of rewarded ``rows`` (their encoded states ``X``, ``(n, d)``) as known at
    ``now``: one query for the customers' later decisions, one for churn outcomes.

    A next decision whose logged context no longer encodes (erased) ends its row as terminal.
    """
    state = spec.state or StateSpec()
    space = spec.decision_space()
    n = len(rows)
    later: list[NextDecision] = []
    churned: set[str] = set()
    if n:
        later = next_decisions(
            session,
            experiment_key=key,
            customer_ids=[row.customer_id for row in rows],
            after=min(row.created_at for row in rows),
            until=max(row.created_at for row in rows) + state.horizon,
        )
        if state.churn_event is not None:
            churned = {
                str(outcome.decision_id)
                for outcome in outcomes_for_decisions(
                    session,
                    decision_ids=[row.decision_id for row in rows],
                    events=[state.churn_event],
                )
            }
    links = link(rows, later, churned, now=now, horizon=state.horizon)
    ready = [index for index, item in enumerate(links) if item.kind != LinkKind.WAIT]
    X_next = np.zeros((len(ready), spec.n_features))
    done = np.ones(len(ready), dtype=bool)
    next_mask = np.zeros((len(ready), space.n_actions), dtype=bool)
    for position, index in enumerate(ready):
        following = links[index].next
        if following is None:
            continue
        try:
            X_next[position] = spec.encode_logged([following.context])[0]
        except SpecError:
            continue  # erased context: the row stays terminal
        next_mask[position] = space.eligibility(1, following.excluded or None)[0]
        done[position] = not next_mask[position].any()
    return Transitions(
        rows=[rows[index] for index in ready],
        X=X[ready],
        X_next=X_next,
        done=done,
        next_mask=next_mask,
        waiting=[rows[index] for index, item in enumerate(links) if item.kind == LinkKind.WAIT],
    )
