"""Strategies on the decision path: a customer's strategy for the epoch, assigned once and held.

An experiment with a ``[strategies]`` section (:mod:`experiments.spec.strategies`) assigns each
customer a strategy at their first decision of every epoch. Epochs lie on a fixed grid from
the experiment's creation, so every process agrees on them. The assignment is stored before
the decision is answered, once per (experiment, customer, epoch): the table's unique key makes
it insert-or-return, so concurrent first decisions in several processes all get the strategy
the first of them stored. Assignments never change, so each process keeps the ones it has seen
for the current epoch and asks the store only about customers it has not.

- Treated customers get a strategy chosen by the strategy policy (a bandit over the strategy
  names, on the customer's context at assignment), logged with its propensity and the strategy
  snapshot version; customers of the spec's persistent panel (``strategies.panel``) keep the
  strategy they were enrolled with, drawn uniformly by a stable hash, logged with that
  uniform propensity; holdout customers get a row with no strategy (their epoch KPI is measured
  for comparison) and their decisions are not restricted.
- While the experiment is paused or in apprentice mode the control serves everyone, so no
  strategy is assigned or applied.

:meth:`StrategyAssigner.plan` returns a :class:`StrategyPlan`, which planning
(:func:`experiments.engine.planning.plan_decisions`) applies: the strategy's actions intersect
the request's eligibility, its cadence suppresses decisions beyond its limit, and the decision
records the strategy. Measuring epochs and learning from them live in
:mod:`experiments.engine.epochs`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlmodel import Session

from bandit import Policy
from experiments.engine.holdout import assign_group, in_panel, panel_strategy
from experiments.engine.planning import SuppressionReason
from experiments.engine.registry import find_experiment
from experiments.engine.snapshots import SNAPSHOT_CHECK_SECONDS, LoadedPolicy, install_newest
from experiments.spec import SpecError, parse_spec
from experiments.spec.strategies import StrategySet
from experiments.store.database import Database
from experiments.store.decisions import count_recent_decisions_by_customer
from experiments.store.snapshots import unpack_state
from experiments.store.strategies import (
    assignments_for,
    first_assignments,
    insert_assignments,
    latest_strategy_snapshot,
)
from experiments.vocabulary import ExperimentStatus, Group

__all__ = [
    "LoadedStrategies",
    "StrategyAssigner",
    "StrategyPlan",
    "StrategyPolicies",
]

#: Assignments a process remembers per experiment before it starts again from the store.
MAX_REMEMBERED = 200_000


@dataclass
class LoadedStrategies:
    """An experiment's strategy policy at one snapshot version, and the epoch grid's origin.

    ``lock`` serialises the policy's draws (its random generator is not thread-safe).
    """

    strategies: StrategySet
    origin: datetime
    policy: Policy
    version: int
    checked_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class StrategyPolicies:
    """Each experiment's :class:`LoadedStrategies`, reloaded when a newer strategy snapshot
    exists (checked at most every :data:`SNAPSHOT_CHECK_SECONDS`).

    Args:
        database: where experiments and strategy snapshots are stored.
        seed: seed of the strategy policies' random generators (None: fresh entropy); a
            sequence of its own, apart from the per-contact policies'.
    """

    def __init__(self, database: Database, seed: int | None) -> None:
        self._database = database
        self._seeds = np.random.SeedSequence(None if seed is None else [seed, 0x57A7])
        self._loaded: dict[str, LoadedStrategies] = {}
        self._lock = threading.Lock()

    def build(self, strategies: StrategySet) -> Policy:
        """A fresh strategy policy with its own child of the seed sequence."""
        with self._lock:
            (child,) = self._seeds.spawn(1)
        return strategies.build_policy(seed=np.random.default_rng(child))

    def get(self, key: str) -> LoadedStrategies | None:
        """The experiment's strategy policy at its newest snapshot; None without strategies."""
        with self._lock:
            loaded = self._loaded.get(key)
        monotonic = time.monotonic()
        if loaded is not None and monotonic - loaded.checked_at < SNAPSHOT_CHECK_SECONDS:
            return loaded
        with self._database.session() as session:
            latest = latest_strategy_snapshot(session, experiment_key=key)
            version = 0 if latest is None else latest.version
            if loaded is not None and version == loaded.version:
                loaded.checked_at = monotonic
                return loaded
            experiment = find_experiment(session, key)
            strategies = parse_spec(experiment.spec).strategy_set()
            if strategies is None:
                return None
            policy = self.build(strategies)
            if latest is not None:
                policy.set_state(unpack_state(latest.state))
            fresh = LoadedStrategies(
                strategies=strategies,
                origin=experiment.created_at,
                policy=policy,
                version=version,
                checked_at=monotonic,
            )
        return install_newest(self._loaded, key, fresh, self._lock)

    def forget(self, key: str) -> None:
        """Drop experiment ``key``'s entry: the next :meth:`get` reads the newest snapshot
        (after this process published one, it need not wait for the periodic check)."""
        with self._lock:
            self._loaded.pop(key, None)


@dataclass(frozen=True)
class StrategyPlan:
    """What the strategies of a batch of requests ask of planning, one entry per request.

    ``names``: the request's strategy (None: holdout, or no strategy applies); ``masks``:
    ``(n, n_actions)`` the actions it allows; ``limits``: the most decisions the customer may
    still get under its cadence (None: no cadence).
    """

    names: tuple[str | None, ...]
    masks: np.ndarray
    limits: tuple[int | None, ...]

    def apply(
        self,
        eligible: np.ndarray,
        customers: Sequence[str],
        suppressed: Sequence[SuppressionReason | None],
    ) -> tuple[np.ndarray, list[SuppressionReason | None]]:
        """The eligibility after the strategies, and the suppressions after their cadences.

        A request already suppressed (contact rules) stays so and does not count; a request
        beyond its cadence, or whose exclusions leave none of its strategy's actions, is
        suppressed (``strategy_cadence``, ``strategy_excludes_all``). Earlier requests of
        the batch count against later ones of the same customer.
        """
        restricted = eligible & self.masks
        reasons = list(suppressed)
        served: dict[str, int] = {}
        for index, customer in enumerate(customers):
            if reasons[index] is not None:
                continue
            limit = self.limits[index]
            if limit is not None and served.get(customer, 0) >= limit:
                reasons[index] = SuppressionReason.STRATEGY_CADENCE
            elif not restricted[index].any():
                reasons[index] = SuppressionReason.STRATEGY_EXCLUDES_ALL
            else:
                served[customer] = served.get(customer, 0) + 1
        # Suppressed rows choose nothing; keep their masks valid for the policies' checks.
        for index, reason in enumerate(reasons):
            if reason is not None and not restricted[index].any():
                restricted[index] = eligible[index]
        return restricted, reasons


class StrategyAssigner:
    """Assigns strategies on the decision path (see the module docstring).

    Args:
        database: where assignments and decisions are stored.
        policies: the process's strategy policies.
    """

    def __init__(self, database: Database, policies: StrategyPolicies) -> None:
        self._database = database
        self._policies = policies
        # (experiment, epoch) -> customer -> strategy (None: holdout); one epoch per key.
        self._seen: dict[str, tuple[int, dict[str, str | None]]] = {}
        self._lock = threading.Lock()

    def plan(
        self,
        key: str,
        loaded: LoadedPolicy,
        contexts: Sequence[Mapping[str, object]],
        customers: Sequence[str],
        *,
        now: datetime,
    ) -> StrategyPlan | None:
        """The strategies of a batch's customers, assigning (and storing) those missing.

        None when the experiment has no strategies, or the control serves everyone.
        """
        if loaded.spec.strategy_set() is None:
            return None
        if loaded.status == ExperimentStatus.PAUSED or loaded.apprentice:
            return None
        current = self._policies.get(key)
        if current is None:
            return None
        strategies = current.strategies
        epoch, start, end = strategies.epoch_at(current.origin, now)
        known = self._remembered(key, epoch, customers)
        missing = [customer for customer in dict.fromkeys(customers) if customer not in known]
        if missing:
            first = {customer: index for index, customer in reversed(list(enumerate(customers)))}
            known.update(
                self._assign(
                    key,
                    loaded,
                    current,
                    [(customer, contexts[first[customer]]) for customer in missing],
                    epoch=epoch,
                    start=start,
                    end=end,
                    now=now,
                )
            )
        names = tuple(known[customer] for customer in customers)
        space_actions = loaded.spec.decision_space().n_actions
        masks = np.ones((len(customers), space_actions), dtype=bool)
        for row, name in enumerate(names):
            if name is not None:
                masks[row] = strategies.masks[strategies.index_of(name)]
        limits = self._cadence_limits(key, strategies, customers, names, now=now, start=start)
        return StrategyPlan(names=names, masks=masks, limits=limits)

    def _remembered(self, key: str, epoch: int, customers: Sequence[str]) -> dict[str, str | None]:
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or entry[0] != epoch:
                return {}
            seen = entry[1]
            return {customer: seen[customer] for customer in customers if customer in seen}

    def _remember(self, key: str, epoch: int, assigned: Mapping[str, str | None]) -> None:
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or entry[0] != epoch or len(entry[1]) > MAX_REMEMBERED:
                entry = (epoch, {})
                self._seen[key] = entry
            entry[1].update(assigned)

    def _assign(
        self,
        key: str,
        loaded: LoadedPolicy,
        current: LoadedStrategies,
        wanted: Sequence[tuple[str, Mapping[str, object]]],
        *,
        epoch: int,
        start: datetime,
        end: datetime,
        now: datetime,
    ) -> dict[str, str | None]:
        """Read the stored assignments of ``wanted`` customers; choose, store and return the
        rest (a row another process stored meanwhile wins and is read back)."""
        strategies = current.strategies
        customers = [customer for customer, _ in wanted]
        salt = loaded.spec.holdout_salt  # the holdout planning assigns, exactly
        with self._database.session() as session:
            stored = assignments_for(
                session, experiment_key=key, epoch=epoch, customer_ids=customers
            )
            new = [(customer, context) for customer, context in wanted if customer not in stored]
            treated = [
                (customer, context)
                for customer, context in new
                if assign_group(salt, customer, loaded.spec.holdout.share) == Group.TREATMENT
            ]
            choices = self._panel_choices(
                session, key, strategies, salt, [customer for customer, _ in treated], epoch
            )
            treated = [
                (customer, context) for customer, context in treated if customer not in choices
            ]
            if treated:
                X = self._encode(strategies, [context for _, context in treated])
                with current.lock:
                    chosen = current.policy.select(X)
                for (customer, _), action, propensity in zip(
                    treated, chosen.actions, chosen.propensities, strict=True
                ):
                    choices[customer] = (int(action), float(propensity))
            rows: list[dict[str, object]] = []
            for customer, context in new:
                action, propensity = choices.get(customer, (None, None))
                rows.append(
                    {
                        "experiment_key": key,
                        "customer_id": customer,
                        "epoch": epoch,
                        "epoch_start": start,
                        "epoch_end": end,
                        "group": Group.TREATMENT if action is not None else Group.HOLDOUT,
                        "strategy": None if action is None else strategies.names[action],
                        "strategy_index": action,
                        "propensity": propensity,
                        "policy_version": current.version,
                        "context": dict(context),
                        "assigned_at": now,
                        "kpi": None,
                        "measured_at": None,
                        "learned_version": None,
                    }
                )
            written = insert_assignments(session, assignments=rows) if rows else set()
            raced = [customer for customer, _ in new if customer not in written]
            if raced:
                stored.update(
                    assignments_for(session, experiment_key=key, epoch=epoch, customer_ids=raced)
                )
            session.commit()
        assigned: dict[str, str | None] = {
            customer: row.strategy for customer, row in stored.items()
        }
        for customer, _ in new:
            if customer in written:
                action = choices.get(customer, (None, None))[0]
                assigned[customer] = None if action is None else strategies.names[action]
        self._remember(key, epoch, assigned)
        return assigned

    @staticmethod
    def _panel_choices(
        session: Session,
        key: str,
        strategies: StrategySet,
        salt: str,
        customers: Sequence[str],
        epoch: int,
    ) -> dict[str, tuple[int, float]]:
        """The strategies of ``epoch``'s panel customers among ``customers``: the one they
        were enrolled with, else one drawn uniformly over the strategy space's allowed
        strategies by a stable hash; the propensity is the uniform draw's (``1 / allowed``)."""
        share = strategies.section.panel_share(epoch)
        members = [customer for customer in customers if share and in_panel(salt, customer, share)]
        if not members:
            return {}
        allowed = np.flatnonzero(strategies.space.allowed)
        propensity = 1.0 / allowed.size
        # Nobody was enrolled before the first epoch: no query on its (busiest) decisions.
        enrolled = (
            first_assignments(session, experiment_key=key, customer_ids=members) if epoch else {}
        )
        choices: dict[str, tuple[int, float]] = {}
        for customer in members:
            row = enrolled.get(customer)
            if row is not None and row.strategy_index is not None:
                choices[customer] = (row.strategy_index, propensity)
            else:
                index = int(allowed[panel_strategy(salt, customer, allowed.size)])
                choices[customer] = (index, propensity)
        return choices

    @staticmethod
    def _encode(strategies: StrategySet, contexts: Sequence[Mapping[str, object]]) -> np.ndarray:
        try:
            return strategies.encode(contexts)
        except SpecError as error:  # contexts were validated; only a schema change gets here
            raise ValueError(f"strategy context: {error}") from None

    def _cadence_limits(
        self,
        key: str,
        strategies: StrategySet,
        customers: Sequence[str],
        names: Sequence[str | None],
        *,
        now: datetime,
        start: datetime,
    ) -> tuple[int | None, ...]:
        """Per request, how many more decisions its strategy's cadence allows (None: any)."""
        cadences = [
            None if name is None else strategies.cadences[strategies.index_of(name)]
            for name in names
        ]
        by_since: dict[datetime, list[str]] = {}
        for customer, cadence in zip(customers, cadences, strict=True):
            if cadence is not None:
                by_since.setdefault(cadence.since(now, start), []).append(customer)
        counts: dict[datetime, dict[str, int]] = {}
        if by_since:
            with self._database.session() as session:
                for since, who in by_since.items():
                    counts[since] = count_recent_decisions_by_customer(
                        session, experiment_key=key, customer_ids=who, since=since
                    )
        limits: list[int | None] = []
        for customer, cadence in zip(customers, cadences, strict=True):
            if cadence is None:
                limits.append(None)
                continue
            used = counts[cadence.since(now, start)].get(customer, 0)
            limits.append(max(0, cadence.max_decisions - used))
        return tuple(limits)
