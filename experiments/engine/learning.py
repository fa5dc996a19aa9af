"""Learning: fold the rewards not yet learned into the treatment policy and publish the next
snapshot version.

One call reads the newest snapshot, updates the policy with a batch of ``(context, action,
reward, propensity)`` and writes snapshot ``version + 1`` with the rewards marked learned, in
one transaction. A value-function policy (``fitted_q``) learns transitions instead, each
reward with its customer's next state (:mod:`experiments.engine.transitions`); rewards whose
next state is not known yet wait, unmarked, for a later step. A ``lookahead_ts`` policy with a
churn charge also learns the churn labels that matured since the previous snapshot
(:mod:`experiments.engine.churn_labels`), and, with a ``[reward.short_term]``, the short-term
rewards joined since (:meth:`~bandit.policies.LookaheadTSPolicy.update_short_term`): a step
runs when either kind waits. Several processes may call it;
only one at a time should (the background learner, :mod:`experiments.engine.learner`, holds
the learner lock around it).

Under safe promotion (the spec's ``[promotion] enabled``, :mod:`experiments.engine.promotion`)
the step first judges the pending candidate on the rewards it is about to learn (fresh to the
candidate and to the serving version), waiting while fewer than ``min_rows`` are there, and
publishes the new snapshot as the next pending candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
from sqlmodel import Session

from bandit import FittedQPolicy
from bandit.policies import LookaheadTSPolicy
from experiments.engine import promotion
from experiments.engine.churn_labels import matured_churn_labels
from experiments.engine.clock import Clock
from experiments.engine.encoding import encode_usable
from experiments.engine.registry import find_experiment
from experiments.engine.snapshots import PolicyFactory, restore
from experiments.engine.transitions import build_transitions
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store import models
from experiments.store.database import Database
from experiments.store.models import ShortTermReward
from experiments.store.rewards import LearningRow, mark_rewards_learned, unlearned_rewards
from experiments.store.snapshots import insert_snapshot, latest_snapshot, pack_state


def _arrays(rows: Sequence[LearningRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Actions ``(n,)``, rewards ``(n,)`` and propensities ``(n,)`` of learning rows."""
    return (
        np.array([row.action_index for row in rows], dtype=np.int64),
        np.array([row.value for row in rows], dtype=np.float64),
        np.array([row.propensity for row in rows], dtype=np.float64),
    )


class SnapshotPublisher:
    """Learns and publishes snapshots in one database.

    Args:
        database: where rewards and snapshots are stored.
        clock: the source of the snapshots' ``created_at``.
        factory: builds the policy the newest snapshot is loaded into.
    """

    def __init__(self, database: Database, clock: Clock, factory: PolicyFactory) -> None:
        self._database = database
        self._clock = clock
        self._factory = factory

    def learn(self, key: str, *, limit: int = 100_000) -> int | None:
        """Fold up to ``limit`` unlearned rewards into the policy and publish the next version.

        Returns the new version, or None when there was nothing to learn.
        """
        with self._database.session() as session:
            experiment = find_experiment(session, key)
            spec = parse_spec(experiment.spec)
            rows = unlearned_rewards(session, experiment_key=key, limit=limit)
            short_rows = []
            if spec.reward.short_term is not None:
                short_rows = unlearned_rewards(
                    session, experiment_key=key, limit=limit, table=ShortTermReward
                )
            gated = spec.promotion.enabled
            # Under promotion a step is judged on its rewards: short-term ones wait for some.
            if not rows and (gated or not short_rows):
                return None
            X, usable = encode_usable(spec, rows)
            if gated:
                verdict = promotion.judge_pending(
                    session,
                    key=key,
                    spec=spec,
                    floor=experiment.exploration_floor,
                    factory=self._factory,
                    rows=usable,
                    X=X,
                    now=self._clock.now(),
                )
                if verdict == promotion.WAIT:
                    return None
            treatment, _ = self._factory.build(spec, experiment.exploration_floor)
            latest = latest_snapshot(session, experiment_key=key)
            version = restore(treatment, latest)
            learned = 0 if latest is None else latest.rows_learned
            if isinstance(treatment, FittedQPolicy):
                ready = build_transitions(session, key, spec, usable, X, now=self._clock.now())
                waiting = {row.decision_id for row in ready.waiting}
                rows = [row for row in rows if row.decision_id not in waiting]
                if not rows:
                    return None
                usable = ready.rows
                treatment.update_transitions(
                    ready.X, *_arrays(usable), ready.X_next, ready.done, ready.next_mask
                )
            else:
                actions, rewards, propensities = _arrays(usable)
                treatment.update(X, actions, rewards, propensities)
                if isinstance(treatment, LookaheadTSPolicy) and treatment.churn_value > 0:
                    self._learn_churn(session, experiment, spec, treatment, latest)
            if short_rows and isinstance(treatment, LookaheadTSPolicy):
                X_short, usable_short = encode_usable(spec, short_rows)
                short_actions, short_rewards, _ = _arrays(usable_short)
                treatment.update_short_term(X_short, short_actions, short_rewards)
            new_version = version + 1
            if gated:  # before the snapshot: the serving version it records excludes it
                promotion.propose(session, key=key, version=new_version, now=self._clock.now())
            insert_snapshot(
                session,
                snapshot=models.PolicySnapshot(
                    experiment_key=key,
                    version=new_version,
                    state=pack_state(treatment.get_state()),
                    rows_learned=learned + len(usable),
                    created_at=self._clock.now(),
                ),
            )
            mark_rewards_learned(
                session, decision_ids=[row.decision_id for row in rows], version=new_version
            )
            mark_rewards_learned(
                session,
                decision_ids=[row.decision_id for row in short_rows],
                version=new_version,
                table=ShortTermReward,
            )
            session.commit()
        return new_version

    def _learn_churn(
        self,
        session: Session,
        experiment: models.Experiment,
        spec: ExperimentSpec,
        treatment: LookaheadTSPolicy,
        latest: models.PolicySnapshot | None,
    ) -> None:
        """Fold the churn labels that matured since the previous snapshot into
        ``treatment``'s churn model (:mod:`experiments.engine.churn_labels`), for decisions
        made since the experiment was created: an imported history's decisions
        (:meth:`~experiments.engine.decide.Decider.log_history`) predate it, and nothing says
        its churns were collected."""
        event = spec.state.churn_event if spec.state is not None else None
        if event is None:
            return
        found = matured_churn_labels(
            session,
            key=experiment.key,
            since=experiment.created_at,
            spec=spec,
            event=event,
            previous=None if latest is None else latest.created_at,
            now=self._clock.now(),
            window=timedelta(days=treatment.churn_window),
        )
        treatment.update_churn(found.X, found.actions, found.labels)
