"""Planning decisions in memory: validated contexts, contact rules, holdout groups and the
policies' choices, without the database.

The decision path plans first and stores after (:mod:`experiments.engine.decide`): everything
here takes what the store said beforehand (the loaded policy, recent contact counts) and returns
:class:`PlannedDecision` rows, so the store is touched once per request, to write them.

Single requests and batches differ only in how errors name the context (``context.<field>``
versus ``contexts[i].<field>``), hence two encoders, :func:`encode_single` and
:func:`encode_batch`, feeding one :func:`plan_decisions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from bandit import BanditValueError
from bandit.contact_state import level_marginals
from experiments.engine.holdout import assign_group
from experiments.engine.registry import invalid_input
from experiments.engine.reward import window_closes_at
from experiments.engine.snapshots import LoadedPolicy
from experiments.errors import InvalidInputError
from experiments.spec import ContactSpec, ExperimentSpec, SpecError
from experiments.spec.state import LEVELS_KEY
from experiments.store.models import new_decision_ids
from experiments.vocabulary import DecisionStatus, ExperimentStatus, Group

if TYPE_CHECKING:
    from experiments.engine.strategies import StrategyPlan


class SuppressionReason(StrEnum):
    """Why a contact rule kept a customer from being contacted (``suppressed_reason``)."""

    QUIET_HOURS = "quiet_hours"
    CONTACT_LIMIT = "contact_limit"
    #: Beyond the cadence of the customer's strategy (strategy experiments).
    STRATEGY_CADENCE = "strategy_cadence"
    #: The request excludes every action the customer's strategy allows.
    STRATEGY_EXCLUDES_ALL = "strategy_excludes_all"


@dataclass(frozen=True)
class DecisionRequest:
    """One request for a decision."""

    customer_id: str
    context: Mapping[str, Any]
    exclude: Sequence[Mapping[str, str]] = ()
    request_id: str | None = None
    defer: bool = False


class PlannedDecision(NamedTuple):
    """A decision row to store, one field per column of the decision table.

    A named tuple rather than an ORM object: building those costs more than the choice itself
    in bulk, and :meth:`as_row` is the plain mapping the store inserts.
    """

    id: str
    experiment_key: str
    customer_id: str
    request_id: str | None
    created_at: datetime
    context: dict[str, Any]
    eligible_count: int
    excluded: list[dict[str, str]]
    action_index: int | None
    action: dict[str, str] | None
    propensity: float | None
    group: Group
    policy_version: int
    deferred: bool
    activated_at: datetime | None
    window_closes_at: datetime | None
    status: DecisionStatus
    suppressed_reason: SuppressionReason | None
    strategy: str | None = None

    def as_row(self) -> dict[str, Any]:
        """The row as a column -> value mapping."""
        return self._asdict()


@dataclass(frozen=True)
class Encoded:
    """Validated requests: the context matrix ``(n, d)`` and the eligibility mask ``(n, A)``."""

    contexts: np.ndarray
    eligible: np.ndarray


def _eligibility(spec: ExperimentSpec, requests: Sequence[DecisionRequest]) -> np.ndarray:
    space = spec.decision_space()
    mask = np.empty((len(requests), space.n_actions), dtype=bool)
    plain = [not request.exclude for request in requests]
    if any(plain):  # one mask for every request without exclusions (most of a batch)
        mask[plain] = space.eligibility(1)[0]
    for row, request in enumerate(requests):
        if request.exclude:
            mask[row] = space.eligibility(1, request.exclude)[0]
    return mask


def encode_single(spec: ExperimentSpec, request: DecisionRequest) -> Encoded:
    """One request, validated; context errors name ``context.<field>``."""
    try:
        contexts = spec.encode_context(request.context)[None, :]
        return Encoded(contexts, _eligibility(spec, [request]))
    except (SpecError, BanditValueError) as error:
        raise invalid_input(error) from None


def encode_batch(spec: ExperimentSpec, requests: Sequence[DecisionRequest]) -> Encoded:
    """A batch of requests, validated; context errors name ``contexts[i].<field>``."""
    try:
        contexts = spec.encode_contexts([request.context for request in requests])
        return Encoded(contexts, _eligibility(spec, requests))
    except (SpecError, BanditValueError) as error:
        raise invalid_input(error) from None


def contact_suppressions(
    contact: ContactSpec, requests: Sequence[DecisionRequest], recent: Mapping[str, int]
) -> list[SuppressionReason | None]:
    """Per request, why the customer must not be contacted now, or None.

    Quiet hours come first (the context's local hour); then the contact limit, counting the
    customer's ``recent`` decisions within the contact window (loaded by the caller when
    ``contact.max_decisions`` is set) plus the earlier requests of this batch that are served.
    """
    reasons: list[SuppressionReason | None] = [None] * len(requests)
    if contact.local_hour_field is not None:
        for index, request in enumerate(requests):
            hour = request.context.get(contact.local_hour_field)
            if hour is not None and contact.is_quiet(float(hour)):
                reasons[index] = SuppressionReason.QUIET_HOURS
    if contact.max_decisions is not None:
        counts = dict(recent)
        for index, request in enumerate(requests):
            if reasons[index] is not None:
                continue
            seen = counts.get(request.customer_id, 0)
            if seen >= contact.max_decisions:
                reasons[index] = SuppressionReason.CONTACT_LIMIT
            else:
                counts[request.customer_id] = seen + 1
    return reasons


def _choose(
    loaded: LoadedPolicy,
    encoded: Encoded,
    groups: Sequence[Group],
    suppressed: Sequence[SuppressionReason | None],
    levels: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Actions ``(n,)`` (-1: none), their propensities ``(n,)`` (NaN: none) and, with
    ``levels``, each factor level's chance of being sent ``(n, L)`` (NaN: none;
    :func:`bandit.contact_state.level_marginals` of the law the action was drawn from).

    Treatment rows go to the treatment policy and holdout rows to the control policy; while
    the experiment is paused or in apprentice mode, every row goes to the control.
    """
    serve_all_control = loaded.status == ExperimentStatus.PAUSED or loaded.apprentice
    actions = np.full(len(groups), -1, dtype=np.int64)
    propensities = np.full(len(groups), np.nan)
    space = loaded.spec.decision_space()
    marginals = np.full((len(groups), sum(space.factor_sizes)), np.nan) if levels else None
    for policy, wanted in ((loaded.treatment, Group.TREATMENT), (loaded.control, Group.HOLDOUT)):
        rows = [
            index
            for index, group in enumerate(groups)
            if suppressed[index] is None
            and (group == wanted if not serve_all_control else wanted == Group.HOLDOUT)
        ]
        if not rows:
            continue
        with loaded.lock:
            chosen = policy.select(encoded.contexts[rows], encoded.eligible[rows])
        actions[rows] = chosen.actions
        propensities[rows] = chosen.propensities
        if marginals is not None and chosen.probabilities is not None:
            marginals[rows] = level_marginals(space, chosen.probabilities)
    return actions, propensities, marginals


def plan_decisions(
    key: str,
    loaded: LoadedPolicy,
    requests: Sequence[DecisionRequest],
    encoded: Encoded,
    *,
    now: datetime,
    recent: Mapping[str, int],
    strategies: StrategyPlan | None = None,
) -> list[PlannedDecision]:
    """Apply contact rules, assign holdout groups and choose: the decision rows to store.

    Args:
        key: the experiment.
        loaded: its policy at the newest snapshot, with the experiment's status.
        requests: the requests, in order; ``encoded`` is their validated form.
        now: the decision time (``created_at``, start of the reward window).
        recent: decisions per customer within the contact window (see
            :func:`contact_suppressions`).
        strategies: the customers' strategies for the epoch, when the experiment has them
            (:meth:`experiments.engine.strategies.StrategyPlan.apply`).
    """
    spec = loaded.spec
    groups = _groups(spec, requests)
    suppressed = contact_suppressions(spec.contact, requests, recent)
    if strategies is not None:
        eligible, suppressed = strategies.apply(
            encoded.eligible, [request.customer_id for request in requests], suppressed
        )
        encoded = Encoded(encoded.contexts, eligible)
    actions, propensities, marginals = _choose(loaded, encoded, groups, suppressed, _centred(spec))
    choice = _Choice(groups, suppressed, actions, propensities, marginals)
    return _rows(key, loaded, requests, encoded, now, choice, strategies)


def plan_history(
    key: str,
    loaded: LoadedPolicy,
    requests: Sequence[DecisionRequest],
    encoded: Encoded,
    *,
    now: datetime,
    actions: np.ndarray,
    probabilities: np.ndarray,
) -> list[PlannedDecision]:
    """Rows for decisions another system made: ``actions`` ``(n,)`` drawn from the laws
    ``probabilities`` ``(n, A)`` (a business-as-usual log), stored as this experiment's own so
    its learners start from them. Each row's propensity is its law's chance of the logged
    action, exact as the learners' off-policy corrections need; no contact rule applies (the
    contacts happened), and groups follow the holdout hash as for any decision.

    Raises :class:`~experiments.errors.InvalidInputError` (field ``actions``) when an action is
    outside the space or had no chance under its law.
    """
    spec = loaded.spec
    law = np.asarray(probabilities, dtype=np.float64)
    chosen = np.asarray(actions, dtype=np.int64)
    space = spec.decision_space()
    if law.shape != (len(requests), space.n_actions) or chosen.shape != (len(requests),):
        raise InvalidInputError(
            f"expected one action and one law over the {space.n_actions} actions per request",
            field="actions",
        )
    if chosen.size and (chosen.min() < 0 or chosen.max() >= space.n_actions):
        raise InvalidInputError(
            f"expected action indices in [0, {space.n_actions})", field="actions"
        )
    propensities = law[np.arange(chosen.size), chosen]
    if chosen.size and not (propensities > 0).all():
        raise InvalidInputError(
            "expected actions with a positive chance under their law", field="actions"
        )
    marginals = level_marginals(space, law) if _centred(spec) else None
    unsuppressed: list[SuppressionReason | None] = [None] * len(requests)
    choice = _Choice(_groups(spec, requests), unsuppressed, chosen, propensities, marginals)
    return _rows(key, loaded, requests, encoded, now, choice, None)


class _Choice(NamedTuple):
    """What was chosen for a batch, per request: the holdout group, why the customer was not
    contacted (None: contacted), the action (-1: none), its propensity (NaN: none) and, for
    ``[state] centred``, each level's chance of being sent (None: not logged)."""

    groups: Sequence[Group]
    suppressed: Sequence[SuppressionReason | None]
    actions: np.ndarray
    propensities: np.ndarray
    marginals: np.ndarray | None


def _groups(spec: ExperimentSpec, requests: Sequence[DecisionRequest]) -> list[Group]:
    """Each request's holdout group, by the experiment's hash."""
    salt, share = spec.holdout_salt, spec.holdout.share
    return [assign_group(salt, request.customer_id, share) for request in requests]


def _centred(spec: ExperimentSpec) -> bool:
    """Whether decisions log their level marginals (``[state] centred``)."""
    return spec.state is not None and spec.state.centred


def _rows(
    key: str,
    loaded: LoadedPolicy,
    requests: Sequence[DecisionRequest],
    encoded: Encoded,
    now: datetime,
    choice: _Choice,
    strategies: StrategyPlan | None,
) -> list[PlannedDecision]:
    """The decision rows of a batch's ``choice``, in request order."""
    spec = loaded.spec
    groups, suppressed, actions, propensities, marginals = choice
    space = spec.decision_space()
    closes = window_closes_at(spec.reward, now)
    # Plain Python values, converted once per batch rather than element by element.
    chosen = actions.tolist()
    chances = propensities.tolist()
    eligible_counts = encoded.eligible.sum(axis=1).tolist()
    ids = new_decision_ids(len(requests))
    planned = []
    for index, request in enumerate(requests):
        status = DecisionStatus.OPEN
        if suppressed[index] is not None:
            status = DecisionStatus.SUPPRESSED
        elif loaded.status == ExperimentStatus.PAUSED:
            status = DecisionStatus.PAUSED
        action_index = chosen[index] if chosen[index] >= 0 else None
        context = dict(request.context)
        if (
            marginals is not None
            and action_index is not None
            and np.isfinite(marginals[index]).all()
        ):
            context[LEVELS_KEY] = marginals[index].tolist()
        planned.append(
            PlannedDecision(
                id=ids[index],
                experiment_key=key,
                customer_id=request.customer_id,
                request_id=request.request_id,
                created_at=now,
                context=context,
                eligible_count=eligible_counts[index],
                excluded=[dict(rule) for rule in request.exclude],
                action_index=action_index,
                action=None if action_index is None else space.levels_of(action_index),
                propensity=None if action_index is None else chances[index],
                group=groups[index],
                policy_version=loaded.version,
                deferred=request.defer,
                activated_at=None if request.defer else now,
                # A deferred decision not activated within one window is reported unused.
                window_closes_at=closes if status == DecisionStatus.OPEN else None,
                status=status,
                suppressed_reason=suppressed[index],
                strategy=None if strategies is None else strategies.names[index],
            )
        )
    return planned
