"""The decision engine: decide, record outcomes, join rewards, learn, publish snapshots.

The same engine serves the HTTP API and in-process simulations. Every method opens its own
short database session, so one engine is safe to share across threads and several engines
(in several processes) can share one database.

The loop::

    decide(context) --> decision row (written before answering)
    record(outcomes) --> outcome rows (idempotent by outcome_id), attributed to decisions
    join_rewards()   --> reward rows when a decision's window closes (or at once when final)
    learn()          --> fold unlearned rewards into the policy, publish snapshot version+1
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session

from bandit import BanditValueError, Policy, make_policy
from experiments.engine.clock import Clock, SystemClock
from experiments.engine.holdout import assign_group
from experiments.engine.reward import OutcomeEvent, evaluate_reward, window_closes_at
from experiments.engine.snapshots import pack_state, unpack_state
from experiments.errors import ConflictError, InvalidInputError, NotFoundError
from experiments.spec import ExperimentSpec, SpecError, parse_spec
from experiments.store import models, queries
from experiments.vocabulary import ExperimentStatus, Group

#: How long a cached policy is trusted before the newest snapshot version is checked again.
SNAPSHOT_CHECK_SECONDS = 1.0
#: How far before the previous join a reward join looks again for fresh outcomes. A process
#: stamps an outcome's ``received_at`` before its transaction commits (after waiting for
#: locks, on SQLite for the write lock), so an outcome committed just after a join read it
#: can carry a time before that join; processes' clocks also differ a little. Without the
#: overlap such an outcome is never fresh again and its reward waits for the window to close.
FRESH_OUTCOMES_OVERLAP = timedelta(seconds=30)


@dataclass(frozen=True)
class DecisionRequest:
    """One request for a decision."""

    customer_id: str
    context: Mapping[str, Any]
    exclude: Sequence[Mapping[str, str]] = ()
    request_id: str | None = None
    defer: bool = False


@dataclass(frozen=True)
class DecisionResult:
    """What the engine decided, as logged."""

    decision_id: str
    action: dict[str, str] | None
    action_index: int | None
    propensity: float | None
    group: str
    policy_version: int
    deferred: bool = False
    suppressed_reason: str | None = None
    replayed: bool = False


@dataclass(frozen=True)
class OutcomeInput:
    """An outcome event as a client reports it."""

    outcome_id: str
    event: str
    value: float
    occurred_at: datetime
    decision_id: str | None = None
    experiment: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True)
class RecordResult:
    accepted: int
    duplicates: int


@dataclass
class _LoadedPolicy:
    """A policy at one snapshot version, shared by the requests of one process."""

    spec: ExperimentSpec
    status: str
    exploration_floor: float
    apprentice: bool
    treatment: Policy
    control: Policy
    version: int
    checked_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)


def _learnable(
    spec: ExperimentSpec, rows: Sequence[queries.LearningRow]
) -> tuple[np.ndarray, list[queries.LearningRow]]:
    """Encoded contexts of the rows that can be learned, and those rows.

    A row whose context was erased (right to erasure: stored as ``{}``) and no longer
    encodes is not learned from; it is still marked learned with the batch, and still counts
    in reports. Any other bad context is an error.
    """
    encoded, usable = [], []
    for row in rows:
        try:
            encoded.append(spec.encode_context(row.context))
        except SpecError:
            if row.context:
                raise
            continue
        usable.append(row)
    X = np.array(encoded) if encoded else np.zeros((0, spec.n_context))
    return X, usable


def _spec_error(error: SpecError | BanditValueError) -> InvalidInputError:
    return InvalidInputError(str(error), field=getattr(error, "field", ""))


class DecisionEngine:
    """Decide / record / join / learn over one database.

    Args:
        engine: a SQLAlchemy engine from :func:`experiments.store.make_engine`.
        clock: the source of "now" for decisions and reward windows.
        seed: seed of the policies' random generators (None: fresh entropy).
    """

    def __init__(
        self, engine: Engine, *, clock: Clock | None = None, seed: int | None = None
    ) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self._seed_sequence = np.random.SeedSequence(seed)
        self._policies: dict[str, _LoadedPolicy] = {}
        self._last_join: dict[str, datetime] = {}
        self._policies_lock = threading.Lock()

    def _session(self) -> Session:
        """A short session whose rows stay readable after commit (results are built from them)."""
        return Session(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------------ experiments
    def create_experiment(
        self, spec: ExperimentSpec | Mapping[str, Any], *, status: str = ExperimentStatus.RUNNING
    ):
        """Store a new experiment; ``ConflictError`` if the key exists."""
        if not isinstance(spec, ExperimentSpec):
            try:
                spec = parse_spec(spec)
            except SpecError as error:
                raise _spec_error(error) from None
        now = self.clock.now()
        row = models.Experiment(
            key=spec.key,
            description=spec.description,
            spec=spec.to_json_dict(),
            status=status,
            exploration_floor=spec.exploration_floor,
            apprentice=False,
            created_at=now,
            updated_at=now,
        )
        with self._session() as session:
            try:
                queries.create_experiment(session, experiment=row)
            except queries.DuplicateError:
                raise ConflictError(
                    f"experiment '{spec.key}' already exists", field="key"
                ) from None
            session.commit()
            session.refresh(row)
            session.expunge(row)
        return row

    def get_experiment(self, key: str) -> models.Experiment:
        with self._session() as session:
            row = queries.get_experiment(session, key=key)
            if row is None:
                raise NotFoundError(f"unknown experiment '{key}'", field="experiment")
            session.expunge(row)
            return row

    def list_experiments(self) -> list[models.Experiment]:
        with self._session() as session:
            rows = queries.list_experiments(session)
            for row in rows:
                session.expunge(row)
            return rows

    def set_status(self, key: str, status: str) -> models.Experiment:
        """Pause, resume or stop; a stopped experiment stays stopped."""
        current = self.get_experiment(key)
        if current.status == ExperimentStatus.STOPPED and status != ExperimentStatus.STOPPED:
            raise ConflictError(f"experiment '{key}' is stopped", field="status")
        return self._change(key, status=status)

    def set_exploration_floor(self, key: str, floor: float) -> models.Experiment:
        if not 0.0 <= floor <= 1.0:
            raise InvalidInputError(
                f"exploration_floor must be in [0, 1]; got {floor}", field="exploration_floor"
            )
        return self._change(key, exploration_floor=float(floor))

    def set_apprentice(self, key: str, apprentice: bool) -> models.Experiment:
        """Apprentice mode: serve business as usual while learning from it."""
        return self._change(key, apprentice=bool(apprentice))

    def _change(self, key: str, **values: Any) -> models.Experiment:
        with self._session() as session:
            row = queries.get_experiment(session, key=key)
            if row is None:
                raise NotFoundError(f"unknown experiment '{key}'", field="experiment")
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = self.clock.now()
            session.add(row)
            session.commit()
            session.refresh(row)
            session.expunge(row)
        with self._policies_lock:
            self._policies.pop(key, None)
        return row

    # ------------------------------------------------------------------ policies
    def _new_rng(self) -> np.random.Generator:
        with self._policies_lock:
            (child,) = self._seed_sequence.spawn(1)
        return np.random.default_rng(child)

    def _build_policies(self, spec: ExperimentSpec, floor: float) -> tuple[Policy, Policy]:
        """Treatment policy (with the experiment's current floor) and the control policy."""
        treatment = make_policy(
            spec.policy.name,
            space=spec.decision_space(),
            n_context=spec.n_context,
            seed=self._new_rng(),
            exploration_floor=floor,
            **spec.policy.params,
        )
        return treatment, spec.build_holdout_policy(seed=self._new_rng())

    def loaded_policy(self, key: str) -> _LoadedPolicy:
        """The cached policy of an experiment, reloaded when a newer snapshot exists."""
        with self._policies_lock:
            loaded = self._policies.get(key)
        monotonic = time.monotonic()
        if loaded is not None and monotonic - loaded.checked_at < SNAPSHOT_CHECK_SECONDS:
            return loaded
        with self._session() as session:
            experiment = queries.get_experiment(session, key=key)
            if experiment is None:
                raise NotFoundError(f"unknown experiment '{key}'", field="experiment")
            latest = queries.latest_snapshot(session, experiment_key=key)
            if loaded is not None and latest is not None and latest.version == loaded.version:
                loaded.checked_at = monotonic
                loaded.status = experiment.status
                return loaded
            spec = parse_spec(experiment.spec)
            treatment, control = self._build_policies(spec, experiment.exploration_floor)
            version = 0
            if latest is not None:
                treatment.set_state(unpack_state(latest.state))
                version = latest.version
            fresh = _LoadedPolicy(
                spec=spec,
                status=experiment.status,
                exploration_floor=experiment.exploration_floor,
                apprentice=experiment.apprentice,
                treatment=treatment,
                control=control,
                version=version,
                checked_at=monotonic,
            )
        with self._policies_lock:
            self._policies[key] = fresh
        return fresh

    # ------------------------------------------------------------------ decide
    def decide(self, key: str, request: DecisionRequest) -> DecisionResult:
        """Choose an action for one customer and log it before answering.

        A request whose ``request_id`` was seen before gets the first answer again.
        """
        loaded = self._running_policy(key)
        if request.request_id is not None:
            replay = self._replay(key, request.request_id)
            if replay is not None:
                return replay
        (values,) = self._choose(key, loaded, [request], field_prefix="context")
        row = models.Decision(**values)
        with self._session() as session:
            try:
                queries.insert_decision(session, decision=row)
            except queries.DuplicateRequestError as duplicate:
                # A concurrent retry with the same request id won the race: answer as it did.
                return self._result(duplicate.existing, replayed=True)
            session.commit()
        return self._result(row)

    def decide_many(self, key: str, requests: Sequence[DecisionRequest]) -> list[DecisionResult]:
        """Decide for a batch of customers in one transaction (simulations, bulk scoring).

        Same rules as :meth:`decide`; requests must not carry request ids (bulk calls are not
        retried one by one). Context errors name ``contexts[i].<field>``.
        """
        if any(request.request_id is not None for request in requests):
            raise InvalidInputError(
                "decide_many takes no request ids; use decide for retried requests",
                field="request_id",
            )
        if not requests:
            return []
        loaded = self._running_policy(key)
        rows = self._choose(key, loaded, requests, field_prefix="contexts")
        with self._session() as session:
            queries.insert_decisions(session, decisions=rows)
            session.commit()
        return [self._result_of(row) for row in rows]

    def _running_policy(self, key: str) -> _LoadedPolicy:
        loaded = self.loaded_policy(key)
        if loaded.status not in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED):
            raise ConflictError(
                f"experiment '{key}' is {loaded.status}, not running", field="experiment"
            )
        return loaded

    def _encode(
        self, spec: ExperimentSpec, requests: Sequence[DecisionRequest], field_prefix: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validated context matrix ``(n, d)`` and eligibility mask ``(n, A)``."""
        space = spec.decision_space()
        try:
            if field_prefix == "context":
                X = spec.encode_context(requests[0].context)[None, :]
            else:
                X = spec.encode_contexts([request.context for request in requests])
            mask = np.empty((len(requests), space.n_actions), dtype=bool)
            for row, request in enumerate(requests):
                mask[row] = space.eligibility(1, request.exclude or None)[0]
        except (SpecError, BanditValueError) as error:
            raise _spec_error(error) from None
        return X, mask

    def _choose(
        self,
        key: str,
        loaded: _LoadedPolicy,
        requests: Sequence[DecisionRequest],
        *,
        field_prefix: str,
    ) -> list[dict[str, Any]]:
        """Validate, apply contact rules, assign groups and choose: the decision rows to log.

        Rows are plain dicts (building ORM objects costs more than the choice itself in bulk).
        """
        spec = loaded.spec
        X, mask = self._encode(spec, requests, field_prefix)
        now = self.clock.now()
        groups = [assign_group(key, r.customer_id, spec.holdout.share) for r in requests]
        suppressed = self._suppressions(spec, key, requests, now)
        serve_all_control = loaded.status == ExperimentStatus.PAUSED or loaded.apprentice
        actions = np.full(len(requests), -1, dtype=np.int64)
        propensities = np.full(len(requests), np.nan)
        for policy, wanted in (
            (loaded.treatment, Group.TREATMENT),
            (loaded.control, Group.HOLDOUT),
        ):
            rows = [
                index
                for index, group in enumerate(groups)
                if suppressed[index] is None
                and (group == wanted if not serve_all_control else wanted == Group.HOLDOUT)
            ]
            if not rows:
                continue
            with loaded.lock:
                chosen = policy.select(X[rows], mask[rows])
            actions[rows] = chosen.actions
            propensities[rows] = chosen.propensities
        space = spec.decision_space()
        closes = window_closes_at(spec.reward, now)
        decisions = []
        for index, request in enumerate(requests):
            status = "open"
            if suppressed[index] is not None:
                status = "suppressed"
            elif loaded.status == ExperimentStatus.PAUSED:
                status = "paused"
            action_index = int(actions[index]) if actions[index] >= 0 else None
            decisions.append(
                {
                    "id": uuid.uuid4().hex,
                    "experiment_key": key,
                    "customer_id": request.customer_id,
                    "request_id": request.request_id,
                    "created_at": now,
                    "context": dict(request.context),
                    "eligible_count": int(mask[index].sum()),
                    "excluded": [dict(rule) for rule in request.exclude],
                    "action_index": action_index,
                    "action": None if action_index is None else space.levels_of(action_index),
                    "propensity": None if action_index is None else float(propensities[index]),
                    "group": groups[index],
                    "policy_version": loaded.version,
                    "deferred": request.defer,
                    "activated_at": None if request.defer else now,
                    # A deferred decision not activated within one window is reported unused.
                    "window_closes_at": closes if status == "open" else None,
                    "status": status,
                    "suppressed_reason": suppressed[index],
                }
            )
        return decisions

    def _replay(self, key: str, request_id: str) -> DecisionResult | None:
        with self._session() as session:
            row = queries.find_decision_by_request(
                session, experiment_key=key, request_id=request_id
            )
            if row is None:
                return None
            return self._result(row, replayed=True)

    @staticmethod
    def _result_of(row: Mapping[str, Any]) -> DecisionResult:
        """The result of a freshly chosen decision row (a dict)."""
        return DecisionResult(
            decision_id=row["id"],
            action=row["action"],
            action_index=row["action_index"],
            propensity=row["propensity"],
            group=row["group"],
            policy_version=row["policy_version"],
            deferred=row["deferred"],
            suppressed_reason=row["suppressed_reason"],
        )

    @staticmethod
    def _result(row: models.Decision, *, replayed: bool = False) -> DecisionResult:
        return DecisionResult(
            decision_id=row.id,
            action=row.action,
            action_index=row.action_index,
            propensity=row.propensity,
            group=row.group,
            policy_version=row.policy_version,
            deferred=row.deferred and row.activated_at is None,
            suppressed_reason=row.suppressed_reason,
            replayed=replayed,
        )

    def _suppressions(
        self,
        spec: ExperimentSpec,
        key: str,
        requests: Sequence[DecisionRequest],
        now: datetime,
    ) -> list[str | None]:
        """Per request, why the customer must not be contacted now (contact rules), or None."""
        contact = spec.contact
        reasons: list[str | None] = [None] * len(requests)
        if contact.local_hour_field is not None:
            for index, request in enumerate(requests):
                hour = request.context.get(contact.local_hour_field)
                if hour is not None and contact.is_quiet(float(hour)):
                    reasons[index] = "quiet_hours"
        if contact.max_decisions is not None:
            with self._session() as session:
                counts = queries.count_recent_decisions_by_customer(
                    session,
                    experiment_key=key,
                    customer_ids=[request.customer_id for request in requests],
                    since=now - contact.window,
                )
            for index, request in enumerate(requests):
                if reasons[index] is not None:
                    continue
                seen = counts.get(request.customer_id, 0)
                if seen >= contact.max_decisions:
                    reasons[index] = "contact_limit"
                else:
                    counts[request.customer_id] = seen + 1  # later rows of the same batch
        return reasons

    def activate(self, decision_id: str) -> DecisionResult:
        """Activate a deferred decision: its reward window starts now (idempotent)."""
        now = self.clock.now()
        with self._session() as session:
            row = queries.get_decision(session, decision_id=decision_id)
            if row is None:
                raise NotFoundError(f"unknown decision '{decision_id}'", field="decision_id")
            if not row.deferred:
                raise ConflictError(
                    f"decision '{decision_id}' was not deferred", field="decision_id"
                )
            if row.activated_at is None:
                if row.status != "open":
                    raise ConflictError(
                        f"decision '{decision_id}' is {row.status}", field="decision_id"
                    )
                spec = self.loaded_policy(row.experiment_key).spec
                queries.activate_decision(
                    session,
                    decision_id=decision_id,
                    activated_at=now,
                    window_closes_at=window_closes_at(spec.reward, now),
                )
                session.commit()
                session.refresh(row)
            return self._result(row)

    # ------------------------------------------------------------------ outcomes
    def record(self, outcomes: Iterable[OutcomeInput]) -> RecordResult:
        """Store outcome events, idempotent by ``outcome_id``; nothing is dropped.

        Each outcome is attributed to the decision it names, or to the customer's latest
        decision in the experiment made before the event. Outcomes naming an unknown
        decision, arriving after the decision's window, or matching no decision are kept and
        labelled (``unknown_decision``, ``late``, ``unattributed``) for the report.
        """
        received = self.clock.now()
        items = list(outcomes)
        with self._session() as session:
            named = queries.decision_heads(
                session,
                decision_ids=[item.decision_id for item in items if item.decision_id is not None],
            )
            rows = [self._attribute(session, item, received, named) for item in items]
            result = queries.insert_outcomes(session, outcomes=rows)
            # Only the rows written here: a duplicate's stored row was labelled (and maybe
            # counted in a reward) by the request that stored it, and a retry changes nothing.
            first: dict[str, dict[str, Any]] = {}
            for row in rows:
                first.setdefault(row["outcome_id"], row)
            self._relabel_raced(session, [first[outcome] for outcome in result.inserted])
            session.commit()
        return RecordResult(accepted=result.accepted, duplicates=result.duplicates)

    @staticmethod
    def _relabel_raced(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Outcomes attributed to a decision whose reward was joined meanwhile become late.

        The decision rows are share-locked first, so a concurrent reward join either finished
        before (then its status shows here) or starts after this commit (then it sees them).
        """
        attributed = {
            row["outcome_id"]: row["decision_id"]
            for row in rows
            if row["attribution"] == "attributed"
        }
        if not attributed:
            return
        statuses = queries.lock_decision_statuses(
            session, decision_ids=list(set(attributed.values())), shared=True
        )
        raced = [
            outcome for outcome, decision in attributed.items() if statuses.get(decision) != "open"
        ]
        queries.mark_outcomes_late(session, outcome_ids=raced)

    def _attribute(
        self,
        session: Session,
        outcome: OutcomeInput,
        received: datetime,
        named: Mapping[str, queries.DecisionHead],
    ) -> dict[str, Any]:
        decision: models.Decision | queries.DecisionHead | None = None
        attribution = "attributed"
        if outcome.decision_id is not None:
            decision = named.get(outcome.decision_id)
            if decision is None:
                attribution = "unknown_decision"
        elif outcome.experiment is not None and outcome.customer_id is not None:
            decision = queries.latest_open_decision(
                session,
                experiment_key=outcome.experiment,
                customer_id=outcome.customer_id,
                before=outcome.occurred_at,
            )
            if decision is None:
                attribution = "unattributed"
        else:
            raise InvalidInputError(
                "an outcome needs 'decision_id' or both 'experiment' and 'customer_id'",
                field="decision_id",
            )
        if decision is not None:
            closes = decision.window_closes_at
            if decision.status not in ("open",) or (
                closes is not None and outcome.occurred_at >= closes
            ):
                attribution = "late"
        return {
            "outcome_id": outcome.outcome_id,
            "decision_id": decision.id if decision is not None else outcome.decision_id,
            "experiment_key": (
                decision.experiment_key if decision is not None else outcome.experiment
            ),
            "customer_id": decision.customer_id if decision is not None else outcome.customer_id,
            "event": outcome.event,
            "value": float(outcome.value),
            "occurred_at": outcome.occurred_at,
            "received_at": received,
            "attribution": attribution,
        }

    # ------------------------------------------------------------------ rewards
    def join_rewards(self, key: str, *, limit: int = 10_000) -> int:
        """Compute the rewards that are now known; returns how many were written.

        Candidates are open decisions whose window closed, plus open decisions with outcomes
        received since the last join, less :data:`FRESH_OUTCOMES_OVERLAP` (an ``event`` or
        ``retained`` reward can be final before its window closes). Deferred decisions never
        activated within one window are marked ``never_activated``: not learned from, and
        reported as such.
        """
        spec = self.loaded_policy(key).spec
        now = self.clock.now()
        last_join = self._last_join.get(key)
        since = (
            datetime.min.replace(tzinfo=now.tzinfo)
            if last_join is None
            else last_join - FRESH_OUTCOMES_OVERLAP
        )
        with self._session() as session:
            expired = queries.expired_deferred_decisions(
                session, experiment_key=key, created_before=now - spec.reward.window, limit=limit
            )
            queries.set_decision_status(
                session, decision_ids=[row.id for row in expired], status="never_activated"
            )
            due = queries.decisions_due_for_reward(
                session, experiment_key=key, now=now, limit=limit
            )
            # Only rewards that can become final early (an event fired, a churn) need the
            # decisions with fresh outcomes; sums and changes wait for the window to close.
            fresh = (
                queries.decisions_with_outcomes_since(
                    session, experiment_key=key, since=since, limit=limit
                )
                if spec.reward.kind in ("event", "retained")
                else []
            )
            candidates = {row.id: row for row in (*due, *fresh) if row.activated_at is not None}
            # Lock before reading outcomes: an outcome insert racing this join waits, or is
            # seen; see DecisionEngine._relabel_raced for the other side.
            still_open = queries.lock_decision_statuses(
                session, decision_ids=list(candidates), shared=False
            )
            candidates = {
                key_: row for key_, row in candidates.items() if still_open.get(key_) == "open"
            }
            by_decision: dict[str, list[OutcomeEvent]] = {key_: [] for key_ in candidates}
            for outcome in queries.outcomes_for_decisions(
                session, decision_ids=list(candidates), attributions=["attributed"]
            ):
                by_decision[outcome.decision_id].append(
                    OutcomeEvent(outcome.event, outcome.value, outcome.occurred_at)
                )
            rewards, rewarded = [], []
            for decision in candidates.values():
                baseline = None
                if spec.reward.baseline_field is not None:
                    baseline = decision.context.get(spec.reward.baseline_field)
                result = evaluate_reward(
                    spec.reward,
                    decided_at=decision.activated_at,
                    now=now,
                    outcomes=by_decision[decision.id],
                    baseline=baseline,
                )
                if result is None:
                    continue
                rewards.append(
                    models.Reward(
                        decision_id=decision.id,
                        experiment_key=key,
                        value=result.value,
                        computed_at=now,
                        learned_version=None,
                    )
                )
                rewarded.append(decision.id)
            written = queries.insert_rewards(session, rewards=rewards)
            queries.set_decision_status(session, decision_ids=rewarded, status="rewarded")
            session.commit()
        self._last_join[key] = now
        return written

    # ------------------------------------------------------------------ learning
    def learn(self, key: str, *, limit: int = 100_000) -> int | None:
        """Fold unlearned rewards into the policy and publish the next snapshot version.

        Returns the new version, or None when there was nothing to learn. Callers that may
        run in several processes go through :class:`experiments.learner.Learner`, which holds
        the learner lock around this call.
        """
        with self._session() as session:
            experiment = queries.get_experiment(session, key=key)
            if experiment is None:
                raise NotFoundError(f"unknown experiment '{key}'", field="experiment")
            spec = parse_spec(experiment.spec)
            rows = queries.unlearned_rewards(session, experiment_key=key, limit=limit)
            if not rows:
                return None
            treatment, _ = self._build_policies(spec, experiment.exploration_floor)
            latest = queries.latest_snapshot(session, experiment_key=key)
            version, learned = 0, 0
            if latest is not None:
                treatment.set_state(unpack_state(latest.state))
                version, learned = latest.version, latest.rows_learned
            X, usable = _learnable(spec, rows)
            actions = np.array([row.action_index for row in usable], dtype=np.int64)
            rewards = np.array([row.value for row in usable], dtype=np.float64)
            propensities = np.array([row.propensity for row in usable], dtype=np.float64)
            treatment.update(X, actions, rewards, propensities)
            new_version = version + 1
            queries.insert_snapshot(
                session,
                snapshot=models.PolicySnapshot(
                    experiment_key=key,
                    version=new_version,
                    state=pack_state(treatment.get_state()),
                    rows_learned=learned + len(usable),
                    created_at=self.clock.now(),
                ),
            )
            queries.mark_rewards_learned(
                session, decision_ids=[row.decision_id for row in rows], version=new_version
            )
            session.commit()
        return new_version

    def step(self, key: str) -> int | None:
        """Join due rewards, then learn from them: one turn of the loop."""
        self.join_rewards(key)
        return self.learn(key)
