"""The decision engine: decide, record outcomes, join rewards, learn, publish snapshots.

The same engine serves the HTTP API and in-process simulations. Every method opens its own
short database session, so one engine is safe to share across threads and several engines
(in several processes) can share one database.

The loop::

    decide(context) --> decision row (written before answering)
    record(outcomes) --> outcome rows (idempotent by outcome_id), attributed to decisions
    join_rewards()   --> reward rows when a decision's window closes (or at once when final)
    learn()          --> fold unlearned rewards into the policy, publish snapshot version+1

and, for experiments with strategies, the long clock::

    decide(context)    --> the customer's strategy for the epoch (assigned once, stored)
    measure_epochs()   --> each closed epoch's KPI per customer
    learn_strategies() --> fold measured epochs into the strategy policy, publish its snapshot

:class:`DecisionEngine` only wires the rooms that do the work and keeps their shared state
(the policy cache) consistent: experiments (:mod:`~experiments.engine.registry`), policies and
snapshots (:mod:`~experiments.engine.snapshots`), deciding (:mod:`~experiments.engine.decide`
over :mod:`~experiments.engine.planning`), outcomes (:mod:`~experiments.engine.outcomes`), the
reward join (:mod:`~experiments.engine.join`) and learning (:mod:`~experiments.engine.learning`,
gated by :mod:`~experiments.engine.promotion` under ``[promotion] enabled``), the automatic stop
(:mod:`~experiments.engine.guardrails`), and strategies (:mod:`~experiments.engine.strategies`,
:mod:`~experiments.engine.epochs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from experiments.analysis.guardrails import GuardrailChecks
from experiments.engine.clock import Clock, SystemClock
from experiments.engine.decide import Decider, DecisionResult
from experiments.engine.epochs import EpochJoin, StrategyLearner
from experiments.engine.guardrails import GuardrailWatch
from experiments.engine.join import RewardJoin
from experiments.engine.learning import SnapshotPublisher
from experiments.engine.outcomes import OutcomeInput, OutcomeRecorder, RecordResult
from experiments.engine.planning import DecisionRequest
from experiments.engine.registry import ExperimentRegistry
from experiments.engine.snapshots import LoadedPolicy, PolicyCache, PolicyFactory
from experiments.engine.strategies import LoadedStrategies, StrategyAssigner, StrategyPolicies
from experiments.spec import ExperimentSpec
from experiments.store import models
from experiments.store.database import Database
from experiments.vocabulary import ExperimentStatus


class DecisionEngine:
    """Decide / record / join / learn over one database.

    Args:
        database: the database (:func:`experiments.store.database.open_database`).
        clock: the source of "now" for decisions and reward windows.
        seed: seed of the policies' random generators (None: fresh entropy).
    """

    def __init__(
        self, database: Database, *, clock: Clock | None = None, seed: int | None = None
    ) -> None:
        self.database = database
        self.clock = clock or SystemClock()
        factory = PolicyFactory(seed)
        self._policies = PolicyCache(database, factory)
        self._experiments = ExperimentRegistry(database, self.clock)
        self._strategies = StrategyPolicies(database, seed)
        self._decider = Decider(
            database, self.clock, self._policies, StrategyAssigner(database, self._strategies)
        )
        self._outcomes = OutcomeRecorder(database, self.clock)
        self._rewards = RewardJoin(database, self.clock, self._policies)
        self._publisher = SnapshotPublisher(database, self.clock, factory)
        self._epochs = EpochJoin(database, self.clock, self._strategies)
        self._strategy_learner = StrategyLearner(database, self.clock, self._strategies)
        self._guardrails = GuardrailWatch(database, self.clock)

    # ------------------------------------------------------------------ experiments
    def create_experiment(
        self, spec: ExperimentSpec | Mapping[str, Any], *, status: str = ExperimentStatus.RUNNING
    ) -> models.Experiment:
        """Store a new experiment; ``ConflictError`` if the key exists."""
        return self._experiments.create(spec, status=status)

    def get_experiment(self, key: str) -> models.Experiment:
        """The experiment ``key``; ``NotFoundError`` if there is none."""
        return self._experiments.get(key)

    def list_experiments(self) -> list[models.Experiment]:
        """Every experiment, by key."""
        return self._experiments.list()

    def set_status(self, key: str, status: str) -> models.Experiment:
        """Pause, resume or stop; a stopped experiment stays stopped. Resuming one that
        stopped itself clears its stop reason (:meth:`check_guardrails`)."""
        row = self._experiments.set_status(key, status)
        self._policies.forget(key)
        return row

    def set_exploration_floor(self, key: str, floor: float) -> models.Experiment:
        """Set the treatment policy's exploration floor, in [0, 1]."""
        row = self._experiments.set_exploration_floor(key, floor)
        self._policies.forget(key)
        return row

    def set_apprentice(self, key: str, apprentice: bool) -> models.Experiment:
        """Apprentice mode: serve business as usual while learning from it."""
        row = self._experiments.set_apprentice(key, apprentice)
        self._policies.forget(key)
        return row

    def update_settings(
        self,
        key: str,
        *,
        exploration_floor: float | None = None,
        apprentice: bool | None = None,
        guardrail_actions: Mapping[str, str] | None = None,
        sample_ratio_action: str | None = None,
    ) -> models.Experiment:
        """Change what ``PATCH /v1/experiments/{key}`` and ``engage experiments set`` change;
        a value left None stays as it is. Returns the experiment as stored afterwards.

        ``guardrail_actions`` maps guardrail labels (``retention:churn``, as reports name them)
        to ``"stop"`` or ``"alert"``, and ``sample_ratio_action`` sets the split's; both are
        written into the stored spec and act from the next check (:meth:`check_guardrails`).
        Every value is validated before anything is written, so a bad one changes nothing.
        """
        row = self.get_experiment(key)
        if exploration_floor is not None:
            self._experiments.check_exploration_floor(exploration_floor)
        if guardrail_actions or sample_ratio_action is not None:
            row = self._experiments.set_guardrail_actions(
                key, guardrail_actions or {}, sample_ratio=sample_ratio_action
            )
        if exploration_floor is not None:
            row = self.set_exploration_floor(key, exploration_floor)
        if apprentice is not None:
            row = self.set_apprentice(key, apprentice)
        return row

    # ------------------------------------------------------------------ policies
    def loaded_policy(self, key: str) -> LoadedPolicy:
        """The cached policy of an experiment, reloaded when a newer snapshot exists."""
        return self._policies.get(key)

    # ------------------------------------------------------------------ decide
    def decide(self, key: str, request: DecisionRequest) -> DecisionResult:
        """Choose an action for one customer and log it before answering.

        A request whose ``request_id`` was seen before gets the first answer again.
        """
        return self._decider.decide(key, request)

    def decide_many(self, key: str, requests: Sequence[DecisionRequest]) -> list[DecisionResult]:
        """Decide for a batch of customers in one transaction (simulations, bulk scoring);
        requests carry no request ids, and context errors name ``contexts[i].<field>``."""
        return self._decider.decide_many(key, requests)

    def log_history(
        self,
        key: str,
        requests: Sequence[DecisionRequest],
        actions: np.ndarray,
        probabilities: np.ndarray,
    ) -> list[DecisionResult]:
        """Store decisions another system made (a business-as-usual log: ``actions`` drawn
        from the laws ``probabilities`` over the actions) at the clock's time, so learners and
        contact state start from them; no contact rule applies."""
        return self._decider.log_history(key, requests, actions, probabilities)

    def activate(self, decision_id: str) -> DecisionResult:
        """Activate a deferred decision: its reward window starts now (idempotent)."""
        return self._decider.activate(decision_id)

    # ------------------------------------------------------------------ outcomes
    def record(self, outcomes: Iterable[OutcomeInput]) -> RecordResult:
        """Store outcome events, idempotent by ``outcome_id``; nothing is dropped.

        Each outcome is attributed to the decision it names, or to the customer's latest
        decision in the experiment made before the event. Outcomes naming an unknown
        decision, occurring before or after the decision's window, or matching no decision
        are kept and labelled (``unknown_decision``, ``before_decision``, ``late``,
        ``unattributed``) for the report.
        """
        return self._outcomes.record(outcomes)

    # ------------------------------------------------------------------ rewards
    def join_rewards(self, key: str, *, limit: int = 10_000) -> int:
        """Compute the rewards that are now known; returns how many were written.

        Deferred decisions never activated within one window are marked ``never_activated``.
        """
        return self._rewards.join(key, limit=limit)

    # ------------------------------------------------------------------ learning
    def learn(self, key: str, *, limit: int = 100_000) -> int | None:
        """Fold unlearned rewards into the policy and publish the next snapshot version.

        Returns the new version, or None when there was nothing to learn. Callers that may
        run in several processes go through :class:`experiments.engine.learner.Learner`, which
        holds the learner lock around this call. The process that publishes a version
        serves it from its next decision (other processes within ``SNAPSHOT_CHECK_SECONDS``),
        so what a seeded, simulated run serves does not depend on how fast it runs. Under
        safe promotion the new version is a pending candidate instead, judged (promoted or
        rejected) at the next call; that call returns None, learning nothing, while fewer than
        ``promotion.min_rows`` fresh rewards are there to judge it on.
        """
        version = self._publisher.learn(key, limit=limit)
        if version is not None:
            self._policies.forget(key)
        return version

    # ------------------------------------------------------------------ strategies
    def loaded_strategies(self, key: str) -> LoadedStrategies | None:
        """The experiment's strategy policy at its newest snapshot (None without strategies)."""
        return self._strategies.get(key)

    def measure_epochs(self, key: str, *, limit: int = 100_000) -> int:
        """Measure the KPI of every strategy assignment whose epoch has closed; returns how
        many (0 for an experiment without strategies)."""
        return self._epochs.measure(key, limit=limit)

    def learn_strategies(self, key: str, *, limit: int = 100_000) -> int | None:
        """Fold measured epochs into the strategy policy and publish its next snapshot
        version; None when there was nothing to learn (or no strategies). Like :meth:`learn`,
        one process at a time (the background learner holds its lock)."""
        version = self._strategy_learner.learn(key, limit=limit)
        if version is not None:
            self._strategies.forget(key)  # this process serves its new snapshot at once
        return version

    # ------------------------------------------------------------------ guardrails
    def check_guardrails(self, key: str) -> GuardrailChecks | None:
        """Check a running experiment's split and guardrails, and fall back to its control
        policy (pause, with the reason and time stored) when one whose action is ``stop``
        fails; None when the experiment is not running (:mod:`experiments.engine.guardrails`)."""
        checks = self._guardrails.check(key)
        if checks is not None and checks.stop_reasons():
            self._policies.forget(key)  # this process serves control from its next decision
        return checks

    def step(self, key: str) -> int | None:
        """Join due rewards, then learn from them, then check the guardrails: one turn of the
        loop (with strategies, the closed epochs are measured and learned from too)."""
        self.join_rewards(key)
        self.measure_epochs(key)
        self.learn_strategies(key)
        version = self.learn(key)
        self.check_guardrails(key)
        return version
