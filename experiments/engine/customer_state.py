"""The customer's observable state at decision time, read from the store and logged with the
decision (``[state]`` with ``contact_half_life``; :mod:`experiments.spec.state`).

For a batch of decision requests, one query per batch reads the customers' contacts within the
spec's look-back (:func:`~experiments.store.served.customer_contacts`), and
:class:`bandit.contact_state.ContactDecay` turns them into decayed counts per factor level and
the days since the last contact, valued at the decision time. :class:`CustomerState` appends
them to the encoded contexts the policies choose from, and logs the same numbers in each
decision's context under :data:`~experiments.spec.state.STATE_KEY`, so learning and evaluation
read back exactly what the policy saw (:meth:`ExperimentSpec.encode_logged`).

With ``[state] centred`` the query also reads each contact's logged level marginals, and every
block of counts gains a block of expected counts (:mod:`experiments.spec.state`).

Look-back ``B`` bounds the query: a contact older than ``B`` counts as none (its weight would be
at most ``2^(-B/h)``), and the days since the last contact are capped at ``B`` (also their value
for a customer with no contact within it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from bandit import DecisionSpace
from bandit.contact_state import ContactDecay, level_columns, level_incidence
from experiments.engine.planning import DecisionRequest, Encoded, PlannedDecision
from experiments.spec import ExperimentSpec
from experiments.spec.state import LEVELS_KEY, STATE_KEY, logged_levels
from experiments.store.database import Database
from experiments.store.served import ContactRow, customer_contacts

__all__ = ["CustomerState", "contact_features", "customer_state"]

_DAY_SECONDS = 86_400.0


def contact_features(
    spec: ExperimentSpec,
    contacts: Sequence[ContactRow],
    customer_ids: Sequence[str],
    now: datetime,
) -> np.ndarray:
    """The contact state of each of ``customer_ids`` at ``now``, ``(n, H L + 1)`` (columns
    :attr:`ExperimentSpec.state_feature_names`: ``L`` counts per half-life, ``H`` half-lives,
    then the days since the last contact), from their ``contacts`` (any order); with
    ``centred``, ``(n, 2 H L + 1)``: the ``H`` blocks of counts, then ``H`` blocks of expected
    counts, then the days.

    Pure: per half-life, ``ContactDecay(half_life, max_days=look-back)`` folds every contact
    in at its time in days before ``now`` (a contact stamped after ``now``, by a clock ahead of
    this one, counts as made at ``now``) and values the counts at ``now``. The expected counts
    fold in each contact's logged level marginals instead of its levels' indicators
    (:meth:`ContactDecay.record_amounts`); a contact without them adds its indicators.
    """
    state_spec = spec.state
    if state_spec is None or not state_spec.adds_features:
        raise ValueError("the spec adds no contact state ([state] contact_half_life)")
    space = spec.decision_space()
    look_back = state_spec.lookback.total_seconds() / _DAY_SECONDS
    unique = list(dict.fromkeys(customer_ids))
    position = {customer: index for index, customer in enumerate(unique)}
    rows = [row for row in contacts if row.customer_id in position]
    asked = np.array([position[customer] for customer in customer_ids], dtype=np.int64)
    who = np.array([position[row.customer_id] for row in rows], dtype=np.int64)
    when = np.array([(row.at - now).total_seconds() / _DAY_SECONDS for row in rows])
    chosen = np.array([row.action_index for row in rows], dtype=np.int64)
    columns = level_columns(space, chosen)
    n_levels = sum(space.factor_sizes)
    amounts = _expected_amounts(space, rows, chosen) if state_spec.centred else None
    blocks, expected = [], []
    for half_life in state_spec.half_lives:
        decay = ContactDecay(half_life=half_life.total_seconds() / _DAY_SECONDS, max_days=look_back)
        state = decay.initial_state(len(unique), n_levels)
        if rows:
            state = decay.record(state, who, np.minimum(when, 0.0), columns)
        blocks.append(decay.features(state, asked, np.zeros(asked.size)))
        if amounts is not None:
            mass = decay.initial_state(len(unique), n_levels)
            if rows:
                mass = decay.record_amounts(mass, who, np.minimum(when, 0.0), amounts)
            expected.append(decay.counts_at(mass, asked, np.zeros(asked.size)))
    # Each block ends with the same days since the last contact: keep it once, at the end.
    return np.column_stack([block[:, :-1] for block in blocks] + expected + [blocks[0][:, -1]])


def _expected_amounts(
    space: DecisionSpace, rows: Sequence[ContactRow], chosen: np.ndarray
) -> np.ndarray:
    """Each contact's level marginals ``(n, L)``: the logged ones, else (none logged, or not
    valid) the indicators of the levels it sent, so it counts as fully expected."""
    amounts = level_incidence(space, chosen)
    width = amounts.shape[1]
    for index, row in enumerate(rows):
        logged = logged_levels(row.levels, width)
        if logged is not None:
            amounts[index] = logged
    return amounts


@dataclass(frozen=True)
class CustomerState:
    """The state columns of one batch of requests, in request order (``(n, H L + 1)``, or
    ``(n, 2 H L + 1)`` centred: :func:`contact_features`)."""

    features: np.ndarray

    def augment(self, encoded: Encoded) -> Encoded:
        """The requests' encoded contexts with the state columns appended."""
        return Encoded(np.concatenate([encoded.contexts, self.features], axis=1), encoded.eligible)

    def log(self, planned: Sequence[PlannedDecision]) -> list[PlannedDecision]:
        """The planned rows with each one's state in its context, under ``@state``."""
        return [
            row._replace(context={**row.context, STATE_KEY: self.features[index].tolist()})
            for index, row in enumerate(planned)
        ]


def customer_state(
    database: Database,
    key: str,
    spec: ExperimentSpec,
    requests: Sequence[DecisionRequest],
    now: datetime,
) -> CustomerState | None:
    """The state of the requests' customers at ``now`` (one query), or None when the spec adds
    no state."""
    if spec.state is None or not spec.state.adds_features:
        return None
    customers = [request.customer_id for request in requests]
    with database.session() as session:
        contacts = customer_contacts(
            session,
            experiment_key=key,
            customer_ids=customers,
            since=now - spec.state.lookback,
            levels_key=LEVELS_KEY if spec.state.centred else None,
        )
    return CustomerState(contact_features(spec, contacts, customers, now))
