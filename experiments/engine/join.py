"""The reward join: decisions whose reward is now known get a reward row.

A decision's reward comes from its attributed outcomes by the experiment's definition
(:func:`~experiments.engine.reward.evaluate_reward`, pure). The join finds the candidates (open
decisions whose window closed, and open decisions with fresh outcomes when the reward can be
final early), locks them, computes what is known and marks them ``rewarded``. A surrogate
reward has a join of its own (:mod:`experiments.engine.surrogate`). Deferred decisions
never activated within one window are marked ``never_activated``: not learned from, and
reported as such.

A spec's ``[reward.short_term]`` (the reward a gated policy's short-term learner learns) is
joined in the same call, apart from the reward: a decision gets its short-term reward once that
is known, whatever its reward's state, in the ``short_term_reward`` table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from experiments.engine.clock import Clock
from experiments.engine.reward import JoinPage, OutcomeEvent, evaluate_reward
from experiments.engine.snapshots import PolicyCache
from experiments.engine.surrogate import SurrogateJoin
from experiments.spec import ExperimentSpec, RewardSpec
from experiments.store.database import Database
from experiments.store.decisions import (
    RewardCandidate,
    expired_deferred_decisions,
    lock_decision_statuses,
    reward_candidates,
    set_decision_status,
    short_term_candidates,
)
from experiments.store.models import ShortTermReward
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
        self._last_short_term_join: dict[str, datetime] = {}
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
        fresh_since = _fresh_since(spec.reward, self._last_join.get(key), now)
        if spec.reward.kind == "surrogate":
            written = _pages(lambda _: self._surrogate.join(key, spec, now=now, limit=limit), None)
        else:
            written = _pages(
                lambda fresh: self._join_page(key, spec, now=now, fresh_since=fresh, limit=limit),
                fresh_since,
            )
        self._last_join[key] = now
        if spec.reward.short_term is not None:
            self._join_short_term(key, spec.reward.short_term, now=now, limit=limit)
        return written

    def _join_short_term(
        self, key: str, short_term: RewardSpec, *, now: datetime, limit: int
    ) -> int:
        """Write the short-term rewards now known (:func:`short_term_candidates`); returns
        how many. After this process's first pass only decisions whose short window closed
        since the last pass (less :data:`FRESH_OUTCOMES_OVERLAP`) are read for being due."""
        last_join = self._last_short_term_join.get(key)
        activated_since = (
            None if last_join is None else last_join - short_term.window - FRESH_OUTCOMES_OVERLAP
        )
        written = _pages(
            lambda fresh: self._short_term_page(
                key,
                short_term,
                now=now,
                activated_since=activated_since,
                fresh_since=fresh,
                limit=limit,
            ),
            _fresh_since(short_term, last_join, now),
        )
        self._last_short_term_join[key] = now
        return written

    def _short_term_page(
        self,
        key: str,
        short_term: RewardSpec,
        *,
        now: datetime,
        activated_since: datetime | None,
        fresh_since: datetime | None,
        limit: int,
    ) -> JoinPage:
        """One page of :meth:`_join_short_term` in one transaction."""
        with self._database.session() as session:
            found = short_term_candidates(
                session,
                experiment_key=key,
                closed_before=now - short_term.window,
                activated_since=activated_since,
                fresh_since=fresh_since,
                with_context=short_term.baseline_field is not None,
                limit=limit,
            )
            due = sum(row.due for row in found)
            candidates = {row.id: row for row in found}
            # As in the reward's join: an outcome insert racing this page waits, or is seen.
            lock_decision_statuses(session, decision_ids=list(candidates), shared=False)
            rewards = self._evaluate(session, key, short_term, candidates, now=now)
            written = insert_rewards(session, rewards=rewards, table=ShortTermReward)
            session.commit()
        return JoinPage(
            written=written,
            settled=written,
            full=limit in (due, len(found) - due),
            fresh_full=len(found) - due == limit,
        )

    @staticmethod
    def _evaluate(
        session: Session,
        key: str,
        reward: RewardSpec,
        candidates: Mapping[str, RewardCandidate],
        *,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """The reward rows of the ``candidates`` (activated decisions, locked) whose
        ``reward`` is known at ``now``, from their attributed outcomes."""
        by_decision: dict[str, list[OutcomeEvent]] = {id_: [] for id_ in candidates}
        for outcome in decision_outcomes(
            session, decision_ids=list(candidates), attributions=[Attribution.ATTRIBUTED]
        ):
            by_decision[outcome.decision_id].append(
                OutcomeEvent(outcome.event, outcome.value, outcome.occurred_at)
            )
        rows = []
        for decision in candidates.values():
            if decision.activated_at is None:  # never so: candidates are activated
                continue
            baseline = None
            if reward.baseline_field is not None and decision.context is not None:
                baseline = decision.context.get(reward.baseline_field)
            result = evaluate_reward(
                reward,
                decided_at=decision.activated_at,
                now=now,
                outcomes=by_decision[decision.id],
                baseline=baseline,
            )
            if result is not None:
                rows.append(
                    reward_row(
                        decision_id=decision.id,
                        experiment_key=key,
                        value=result.value,
                        computed_at=now,
                    )
                )
        return rows

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
            rewards = self._evaluate(session, key, spec.reward, candidates, now=now)
            rewarded = [row["decision_id"] for row in rewards]
            written = insert_rewards(session, rewards=rewards)
            set_decision_status(session, decision_ids=rewarded, status=DecisionStatus.REWARDED)
            session.commit()
        return JoinPage(
            written=written,
            settled=len(expired) + len(rewarded),
            full=limit in (len(expired), due, len(found) - due),
            fresh_full=len(found) - due == limit,
        )


def _fresh_since(reward: RewardSpec, last_join: datetime | None, now: datetime) -> datetime | None:
    """Since when a join reads decisions with fresh outcomes: only a reward that can be final
    early needs them; the first pass of a process reads every outcome, a later one those
    received since the last pass, less :data:`FRESH_OUTCOMES_OVERLAP`."""
    if reward.kind not in _FINAL_EARLY:
        return None
    if last_join is None:
        return datetime.min.replace(tzinfo=now.tzinfo)
    return last_join - FRESH_OUTCOMES_OVERLAP


def _pages(page: Callable[[datetime | None], JoinPage], fresh_since: datetime | None) -> int:
    """Run ``page`` (given since when to read fresh outcomes) until a page comes back short or
    settles nothing; returns the rewards written. Once a page's fresh read was not full, the
    later pages skip it: every decision with fresh outcomes was read already."""
    written = 0
    while True:
        result = page(fresh_since)
        written += result.written
        if not result.full or result.settled + result.written == 0:
            return written
        if not result.fresh_full:
            fresh_since = None
