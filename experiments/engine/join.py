"""The reward join: decisions whose reward is now known get a reward row.

A decision's reward comes from its attributed outcomes by the experiment's definition
(:func:`~experiments.engine.reward.evaluate_reward`, pure). The join finds the candidates (open
decisions whose window closed, and open decisions with fresh outcomes when the reward can be
final early), locks them, computes what is known and marks them ``rewarded``. A surrogate
reward has a join of its own (:mod:`experiments.engine.surrogate`). Deferred decisions
never activated within one window are marked ``never_activated``: not learned from, and
reported as such.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from experiments.engine.clock import Clock
from experiments.engine.reward import JoinPage, OutcomeEvent, evaluate_reward
from experiments.engine.snapshots import PolicyCache
from experiments.engine.surrogate import SurrogateJoin
from experiments.spec import ExperimentSpec
from experiments.store.database import Database
from experiments.store.decisions import (
    expired_deferred_decisions,
    lock_decision_statuses,
    reward_candidates,
    set_decision_status,
)
from experiments.store.outcomes import decision_outcomes
from experiments.store.rewards import insert_rewards, reward_row
from experiments.vocabulary import Attribution, DecisionStatus

#: How far before the previous join a reward join looks again for fresh outcomes. A process
#: stamps an outcome's ``received_at`` before its transaction commits (after waiting for
#: locks, on SQLite for the write lock), so an outcome committed just after a join read it
#: can carry a time before that join; processes' clocks also differ a little. Without the
#: overlap such an outcome is never fresh again and its reward waits for the window to close.
FRESH_OUTCOMES_OVERLAP = timedelta(seconds=30)

#: Reward kinds that can be final before the window closes (an event fired, a churn).
_FINAL_EARLY = ("event", "retained", "funnel")


class RewardJoin:
    """Joins rewards in one database; remembers each experiment's last join in this process.

    Args:
        database: where decisions, outcomes and rewards are stored.
        clock: the source of "now" (which windows have closed).
        policies: the process's cache of loaded policies (for the experiments' specs).
    """

    def __init__(self, database: Database, clock: Clock, policies: PolicyCache) -> None:
        self._database = database
        self._clock = clock
        self._policies = policies
        self._last_join: dict[str, datetime] = {}
        self._surrogate = SurrogateJoin(database)

    def join(self, key: str, *, limit: int = 10_000) -> int:
        """Compute the rewards that are now known; returns how many were written.

        Candidates are open decisions whose window closed, plus open decisions with outcomes
        received since the last join, less :data:`FRESH_OUTCOMES_OVERLAP` (an ``event`` or
        ``retained`` reward can be final before its window closes).

        The join works in pages of at most ``limit`` candidates of each kind, one transaction
        a page, until a page comes back short or settles nothing: every decision due now is
        rewarded by this call, however many there are. With one page per call, a backlog of
        more than ``limit`` due decisions would grow without bound (a simulated day of 100,000
        customers closes about 11,000 windows), and which of them a page took would depend
        on how the random decision ids break ties of ``window_closes_at``: the learner would
        then fold a different subset in each run of the same seed.
        """
        spec = self._policies.get(key).spec
        now = self._clock.now()
        last_join = self._last_join.get(key)
        fresh_since: datetime | None = None
        if spec.reward.kind in _FINAL_EARLY:  # only these need decisions with fresh outcomes
            fresh_since = (
                datetime.min.replace(tzinfo=now.tzinfo)
                if last_join is None
                else last_join - FRESH_OUTCOMES_OVERLAP
            )
        written = 0
        while True:
            if spec.reward.kind == "surrogate":
                page = self._surrogate.join(key, spec, now=now, limit=limit)
            else:
                page = self._join_page(key, spec, now=now, fresh_since=fresh_since, limit=limit)
            written += page.written
            if not page.full or page.settled + page.written == 0:
                break
            if not page.fresh_full:  # every decision with fresh outcomes was read already
                fresh_since = None
        self._last_join[key] = now
        return written

    def _join_page(
        self,
        key: str,
        spec: ExperimentSpec,
        *,
        now: datetime,
        fresh_since: datetime | None,
        limit: int,
    ) -> JoinPage:
        """One page of :meth:`join` in one transaction."""
        with self._database.session() as session:
            expired = expired_deferred_decisions(
                session, experiment_key=key, created_before=now - spec.reward.window, limit=limit
            )
            set_decision_status(
                session,
                decision_ids=[row.id for row in expired],
                status=DecisionStatus.NEVER_ACTIVATED,
            )
            found = reward_candidates(
                session,
                experiment_key=key,
                now=now,
                fresh_since=fresh_since,
                with_context=spec.reward.baseline_field is not None,
                limit=limit,
            )
            due = sum(row.due for row in found)
            candidates = {row.id: row for row in found if row.activated_at is not None}
            # Lock before reading outcomes: an outcome insert racing this join waits, or is
            # seen; see experiments.engine.outcomes.relabel_raced for the other side.
            still_open = lock_decision_statuses(
                session, decision_ids=list(candidates), shared=False
            )
            candidates = {
                id_: row
                for id_, row in candidates.items()
                if still_open.get(id_) == DecisionStatus.OPEN
            }
            by_decision: dict[str, list[OutcomeEvent]] = {id_: [] for id_ in candidates}
            for outcome in decision_outcomes(
                session, decision_ids=list(candidates), attributions=[Attribution.ATTRIBUTED]
            ):
                by_decision[outcome.decision_id].append(
                    OutcomeEvent(outcome.event, outcome.value, outcome.occurred_at)
                )
            rewards, rewarded = [], []
            for decision in candidates.values():
                if decision.activated_at is None:  # never so: candidates are activated
                    continue
                baseline = None
                if spec.reward.baseline_field is not None and decision.context is not None:
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
                    reward_row(
                        decision_id=decision.id,
                        experiment_key=key,
                        value=result.value,
                        computed_at=now,
                    )
                )
                rewarded.append(decision.id)
            written = insert_rewards(session, rewards=rewards)
            set_decision_status(session, decision_ids=rewarded, status=DecisionStatus.REWARDED)
            session.commit()
        return JoinPage(
            written=written,
            settled=len(expired) + len(rewarded),
            full=limit in (len(expired), due, len(found) - due),
            fresh_full=len(found) - due == limit,
        )
