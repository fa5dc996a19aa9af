"""``engage run``: an experiment spec against the customer simulator, policies side by side.

Every arm of the comparison is a real engage experiment in a database (temporary unless
named), driven through the same :class:`~experiments.engine.DecisionEngine` that serves HTTP:
decisions are logged with propensities, the simulator's events come back through
:meth:`~experiments.engine.DecisionEngine.record` with their own timestamps, each to the
decision it belongs to (:mod:`experiments.runs.routing`), rewards are joined when windows
close, and the policy learns from snapshots.

Arms are comparable customer by customer: each lives in its own copy of one seeded world
(:func:`~experiments.runs.world.world_config`), whose random numbers are drawn for the whole
population every day whoever is contacted, and every arm holds out the same customers (the
arm specs hash the holdout on the base spec's key, ``holdout.salt``). Two arms that send the
same actions therefore see the same outcomes, and arm differences are measured on the same
treated customers (:mod:`experiments.runs.comparison`). With ``RunOptions.oracles`` the click
and revenue oracles run in the same world (:mod:`experiments.runs.oracles`).

The arms and what each one runs are defined in :mod:`experiments.runs.arms`.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bandit.lift import welch_lift
from bandit.policies.lookahead_ts import LookaheadTSPolicy
from experiments._blas import single_blas_thread
from experiments.analysis.lift import LiftRow, kpi_lift_rows
from experiments.analysis.report import (
    OffPolicySummary,
    off_policy_sample,
    off_policy_summary,
)
from experiments.analysis.strategies import StrategyReport
from experiments.engine import DecisionEngine, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.runs.arm_day import close_day, decide_in_blocks, note_contacts
from experiments.runs.arms import (
    ARMS,
    allocation_factor,
    arm_spec,
    churn_label_event,
    regret_kind,
)
from experiments.runs.comparison import ArmComparison, compare_arms
from experiments.runs.history import replay_burn_in
from experiments.runs.oracles import OracleResult, run_oracles
from experiments.runs.preflight import check_keys_free
from experiments.runs.routing import OutcomeRouter
from experiments.runs.scratch import arm_database, arm_urls
from experiments.runs.strategies import StrategyDays
from experiments.runs.workers import heaviest_first, run_in_workers
from experiments.runs.world import holdout_mask, pre_period, world_config
from experiments.simulate import CustomerWorld
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store.rewards import reward_decision_ids, reward_rows_of
from experiments.store.schema import upgrade
from experiments.store.snapshots import latest_snapshot, unpack_state

__all__ = ["ArmResult", "RunOptions", "RunResult", "holdout_mask", "run_simulation"]

START = datetime(2026, 1, 5, tzinfo=UTC)
RECORD_CHUNK = 5_000
#: Contacts per day on which the simulator's expected rewards are evaluated for regret.
REGRET_SAMPLE = 64


@dataclass(frozen=True)
class RunOptions:
    """What to simulate and where to log it; ``oracles`` runs the click and revenue oracles
    (a few seconds; see :mod:`experiments.runs.oracles`).

    ``seed`` seeds the world (population, responses, holdout draws); ``policy_seed`` seeds the
    learners' own randomness (Thompson draws, exploration) and defaults to ``seed``. Varying
    ``policy_seed`` with ``seed`` fixed shows how much a result owes to one learning path in
    one world, which the paired intervals of a single run cannot show (they hold the paths
    fixed).
    """

    customers: int = 20_000
    days: int = 60
    seed: int = 0
    policy_seed: int | None = None
    arms: tuple[str, ...] = ARMS
    database_url: str | None = None
    fatigue: bool = True
    nurturing: bool = True
    drift: bool = True
    oracles: bool = True

    @property
    def learner_seed(self) -> int:
        """The seed of the learners' randomness: ``policy_seed``, else the world's ``seed``."""
        return self.seed if self.policy_seed is None else self.policy_seed


@dataclass
class ArmResult:
    """Everything measured for one arm; ``per_customer`` holds the final revenue and
    retention of every customer ``(n,)``, for comparisons customer by customer."""

    arm: str
    key: str
    policy: str
    reward: str
    daily: dict[str, list[float]] = field(default_factory=dict)
    allocation: np.ndarray | None = None
    allocation_labels: tuple[str, ...] = ()
    allocation_factor: str = ""
    lifts: list[LiftRow] = field(default_factory=list)
    kpis: dict[str, dict[str, float]] = field(default_factory=dict)
    off_policy: OffPolicySummary | None = None
    policy_version: int = 0
    decisions: int = 0
    #: Decisions replayed from the burn-in's log before day 0 (``learn_from_burn_in``).
    history_decisions: int = 0
    #: Whether the arm's policy is gated (``lookahead_ts`` with ``gate_level``), and the
    #: first day its lifetime value chose (None: the short-term learner chose throughout).
    gated: bool = False
    gate_opened_day: int | None = None
    per_customer: dict[str, np.ndarray] = field(default_factory=dict)
    #: The strategy arm's strategy report, allocation by day and strategy names.
    strategies: StrategyReport | None = None
    strategy_allocation: np.ndarray | None = None
    strategy_labels: tuple[str, ...] = ()


@dataclass
class RunResult:
    """The arms of a run, the shared holdout, the oracles and the arms' comparisons.

    ``treated`` ``(n,)`` marks the customers outside the shared holdout; ``oracles`` is None
    when they were not run; ``comparisons`` compare every arm with the interaction arm
    (empty without it). ``database_url`` is ``options.database_url``, or without one the
    ``file:`` URI of the scratch directory that held one SQLite file per arm (removed when
    the run ends).
    """

    spec: ExperimentSpec
    options: RunOptions
    arms: list[ArmResult]
    database_url: str
    treated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    oracles: OracleResult | None = None
    comparisons: list[ArmComparison] = field(default_factory=list)


def _mean(values: np.ndarray) -> float:
    """The mean, NaN for no values (without numpy's empty-slice warning)."""
    return float(values.mean()) if values.size else math.nan


class _ArmRunner:
    """One arm over all simulated days."""

    def __init__(
        self,
        spec: ExperimentSpec,
        arm: str,
        options: RunOptions,
        database_url: str,
        on_day: Callable[[str, int], None] | None,
    ) -> None:
        self.spec = arm_spec(spec, arm)
        self.arm = arm
        self.options = options
        self.clock = ManualClock(START)
        self.engine = DecisionEngine(
            arm_database(database_url, scratch=options.database_url is None),
            clock=self.clock,
            seed=options.learner_seed,
        )
        self.engine.create_experiment(self.spec)
        self.world = CustomerWorld(
            world_config(self.spec, options),
            self.spec.decision_space(),
            self.spec.context,
            log_burn_in=self.spec.simulation.learn_from_burn_in,
        )
        self.on_day = on_day
        self.customer_ids = np.array([f"c{index}" for index in range(options.customers)])
        self.holdout = holdout_mask(self.spec, options.customers)
        self.covariates = pre_period(self.world, self.spec)
        self.router = OutcomeRouter()
        #: Customers who have had a decision (an arm with strategies reports all their events).
        self.decided: set[int] = set()
        self.regret_kind = regret_kind(self.spec)
        #: The experiment's own reward (the base spec's), so every arm's regret can be drawn
        #: in one unit beside the others'.
        self.kpi_kind = regret_kind(spec)
        self.reported_events = {*self.spec.reward.named_events, "click", "accept", "churn"}
        #: The event reported by customer whenever it happens: a churn model's labels span
        #: weeks after a contact (:mod:`experiments.engine.churn_labels`). None: none.
        self.by_customer_event = churn_label_event(self.spec)
        self.strategy_days = None
        if self.spec.strategies is not None:
            self.strategy_days = StrategyDays(self.engine, self.spec)
            self.reported_events.add(self.spec.strategies.kpi.event)
        self.sampler = np.random.default_rng(options.seed + 1)
        self.result = ArmResult(
            arm=arm,
            key=self.spec.key,
            policy=self.spec.policy.name,
            reward=self.spec.reward.label,
        )
        factor = allocation_factor(self.spec.decision_space())
        self.result.allocation_factor = factor
        self.result.allocation_labels = tuple(self.spec.decision_space().factors[factor])
        if self.world.burn_in_log:
            self.result.history_decisions = replay_burn_in(self, self.world.burn_in_log, START)
            self.world.burn_in_log.clear()

    def run(self) -> ArmResult:
        allocation = []
        for day in range(self.options.days):
            allocation.append(self._day(day))
            if self.on_day is not None:
                self.on_day(self.arm, day)
        self.result.allocation = np.array(allocation)
        self._finish()
        self.engine.database.dispose()
        return self.result

    def _log(self, name: str, value: float) -> None:
        self.result.daily.setdefault(name, []).append(float(value))

    def _day(self, day: int) -> np.ndarray:
        day_start = START + timedelta(days=day)
        visitors = self.world.visitors()
        contexts = self.world.contexts(visitors)
        visit = self.world.visit_hours(visitors)
        results = decide_in_blocks(
            self,
            day_start,
            visitors,
            visit,
            contexts,
            lambda requests, _rows: self.engine.decide_many(self.spec.key, requests),
        )
        actions = np.array(
            [-1 if result.action_index is None else result.action_index for result in results],
            dtype=np.int64,
        )
        self._note_gate(day)
        contacted = actions >= 0
        note_contacts(
            self,
            day_start,
            visitors[contacted],
            visit[contacted],
            [results[row].decision_id for row in np.flatnonzero(contacted)],
        )
        regret = self._regret(visitors[contacted], actions[contacted])
        self.world.act(visitors, actions)
        events = self.world.end_day()
        self.record(events, day, day_start)
        rewards, version = close_day(self, day_start)
        if version is not None:
            self.result.policy_version = version
        if self.strategy_days is not None:
            for name, value in {
                **self.strategy_days.day(results),
                **self.strategy_days.learn(),
            }.items():
                self._log(name, value)
        kpis = self.world.kpis()
        clicks = float((events.event == "click").sum())
        revenue = float(events.value[events.event == "revenue"].sum())
        self.result.decisions += int(contacted.sum())
        self._log("contacts", contacted.sum())
        self._log("suppressed", (~contacted).sum())
        self._log("clicks", clicks)
        self._log("click_through", clicks / max(1, contacted.sum()))
        self._log("revenue", revenue)
        for name, value in regret.items():
            self._log(name, value)
        self._log("rewards_joined", rewards)
        self._log("retention", float(kpis["retained"].mean()))
        self._log("policy_version", self.result.policy_version)
        treatment_revenue = kpis["revenue"][~self.holdout]
        holdout_revenue = kpis["revenue"][self.holdout]
        if treatment_revenue.size > 1 and holdout_revenue.size > 1:
            lift = welch_lift(treatment_revenue, holdout_revenue)
            self._log("revenue_lift", lift.difference)
            self._log("revenue_lift_low", lift.diff_ci[0])
            self._log("revenue_lift_high", lift.diff_ci[1])
        shares = np.zeros(len(self.result.allocation_labels))
        if contacted.any():
            space = self.spec.decision_space()
            position = space.factor_names.index(self.result.allocation_factor)
            codes = space.level_index[actions[contacted], position]
            shares = np.bincount(codes, minlength=shares.size) / contacted.sum()
        return shares

    def _note_gate(self, day: int) -> None:
        """For a gated policy, whether its lifetime value chose today (daily metric
        ``lifetime_value_chooses``) and the first day it did."""
        policy = self.engine.loaded_policy(self.spec.key).treatment
        if not isinstance(policy, LookaheadTSPolicy) or not policy.gated:
            return
        self.result.gated = True
        self._log("lifetime_value_chooses", float(policy.gate_open_))
        if policy.gate_open_ and self.result.gate_opened_day is None:
            self.result.gate_opened_day = day

    def _regret(self, customers: np.ndarray, actions: np.ndarray) -> dict[str, float]:
        """Today's regret and expected reward summed over contacts, in the arm's own reward
        (``regret``, ``expected_reward``) and in the experiment's (``kpi_regret``, ...).

        The simulator's truth is costly for 800 actions, so it is evaluated on a seeded random
        sample of at most ``REGRET_SAMPLE`` contacts and scaled up: an unbiased estimate.
        """
        scale = 1.0
        if customers.size > REGRET_SAMPLE:
            picked = self.sampler.choice(customers.size, REGRET_SAMPLE, replace=False)
            scale = customers.size / REGRET_SAMPLE
            customers, actions = customers[picked], actions[picked]
        allowed = self.spec.decision_space().allowed
        measured: dict[str, float] = {}
        for prefix, kind in (("", self.regret_kind), ("kpi_", self.kpi_kind)):
            values = self.world.expected_reward(customers, kind)  # (0, n_actions) without any
            best = np.where(allowed[None, :], values, -np.inf).max(axis=1, initial=-np.inf)
            chosen = values[np.arange(customers.size), actions]
            measured[f"{prefix}regret"] = float((best - chosen).sum() * scale)
            measured[f"{prefix}expected_reward"] = float(chosen.sum() * scale)
        return measured

    def record(self, events: Any, day: int, day_start: datetime) -> None:
        """Send the day's events for customers with a decision through the outcome path, each
        naming the decision it belongs to (:class:`~experiments.runs.routing.OutcomeRouter`).

        Like a real client, the runner reports the events the experiment measures: its reward
        event, responses (click, accept) and churn; daily usage only when it is the reward.
        An event inside the window of the decision it belongs to names that decision. In an
        arm with strategies, any other event of a customer who has had a decision names the
        customer (the engine labels it late or unattributed), so a strategy epoch's KPI sees
        all of it; so does a churn in an arm whose policy learns churn over the weeks after a
        contact; other arms report only what their rewards can use.
        """
        wanted = np.isin(events.event, list(self.reported_events))
        outcomes = []
        for index in np.flatnonzero(wanted):
            customer = int(events.customer[index])
            occurred = day_start + timedelta(hours=float(events.hour[index]))
            decision_id = self.router.route(customer, occurred)
            by_customer = decision_id is None
            if by_customer and not self._reported_by_customer(customer, events.event[index]):
                continue
            outcomes.append(
                OutcomeInput(
                    outcome_id=f"{self.spec.key}-{day}-{index}",
                    event=str(events.event[index]),
                    value=float(events.value[index]),
                    occurred_at=occurred,
                    decision_id=None if by_customer else decision_id,
                    experiment=self.spec.key if by_customer else None,
                    customer_id=str(self.customer_ids[customer]) if by_customer else None,
                )
            )
        for start in range(0, len(outcomes), RECORD_CHUNK):
            self.engine.record(outcomes[start : start + RECORD_CHUNK])

    def _reported_by_customer(self, customer: int, event: object) -> bool:
        """Whether an event no decision's window holds is reported, naming the customer: for
        a customer who has had a decision, in an arm with strategies, or when it is the churn
        event the arm's policy learns from (:meth:`record`)."""
        if customer not in self.decided:
            return False
        return self.strategy_days is not None or str(event) == self.by_customer_event

    def _finish(self) -> None:
        kpis = self.world.kpis()
        measures = {
            "revenue": kpis["revenue"],
            "retention": kpis["retained"].astype(np.float64),
            "contacts": kpis["contacts"].astype(np.float64),
            "accepts": kpis["accepts"].astype(np.float64),
        }
        for name, values in measures.items():
            self.result.kpis[name] = {
                "treatment": _mean(values[~self.holdout]),
                "holdout": _mean(values[self.holdout]),
            }
        self.result.lifts = kpi_lift_rows(
            self.arm, measures, self.holdout, covariates=self.covariates
        )
        self.result.per_customer = {
            "revenue": measures["revenue"],
            "retention": measures["retention"],
        }
        self.result.off_policy = self._off_policy()
        if self.strategy_days is not None:
            self.result.strategies = self.strategy_days.report()
            self.result.strategy_allocation = self.strategy_days.allocation
            self.result.strategy_labels = self.strategy_days.strategies.names

    def _off_policy(self) -> OffPolicySummary | None:
        """OPE of the final policy on this arm's logged, rewarded decisions.

        Only the rows the estimators sample are read (:func:`off_policy_sample` on the ids):
        a long run's full log, contexts included, would not fit in memory.
        """
        key, seed = self.spec.key, self.options.seed
        with self.engine.database.session() as session:
            ids = reward_decision_ids(session, experiment_key=key)
            keep = off_policy_sample(len(ids), seed=seed)
            wanted = ids if keep is None else [ids[index] for index in keep]
            rows = reward_rows_of(session, experiment_key=key, decision_ids=wanted)
            snapshot = latest_snapshot(session, experiment_key=key)
        state = unpack_state(snapshot.state) if snapshot is not None else None
        return off_policy_summary(self.spec, rows, state, seed=seed, sampled=keep is not None)


def _run_arm(
    spec_data: dict[str, Any],
    arm: str,
    options: RunOptions,
    url: str,
    days_done: Any | None,
) -> ArmResult:
    """One arm in a worker process; reports finished days on the shared queue."""
    spec = parse_spec(spec_data)

    def on_day(name: str, day: int) -> None:
        if days_done is not None:
            days_done.put((name, day))

    return _ArmRunner(spec, arm, options, url, on_day).run()


def _oracles(spec_data: dict[str, Any], options: RunOptions) -> OracleResult:
    """Both oracles (in a worker process or not) over the run's treated customers."""
    spec = parse_spec(spec_data)
    return run_oracles(spec, options, ~holdout_mask(spec, options.customers))


def run_simulation(
    spec: ExperimentSpec,
    options: RunOptions,
    *,
    on_day: Callable[[str, int], None] | None = None,
    jobs: int = 1,
) -> RunResult:
    """Run every arm (and the oracles) on the same seeded population; return what each
    measured and every arm's comparison with the interaction arm.

    With ``jobs > 1`` the arms and the oracles run in that many worker processes at once
    (they are independent: each has its own world copy, experiment key and, unless
    ``options.database_url`` names one database for all, its own scratch database). Results
    do not depend on ``jobs``.
    """
    spec_data = spec.to_json_dict()
    with tempfile.TemporaryDirectory(prefix="engage-run-") as scratch:
        urls = arm_urls(options, Path(scratch))
        url = options.database_url or Path(scratch).as_uri()
        for arm_url in dict.fromkeys(urls.values()):
            upgrade(arm_url)
        if options.database_url is not None:
            check_keys_free(spec, options.arms, options.database_url)
        tasks = len(options.arms) + int(options.oracles)
        if jobs <= 1 or tasks == 1:
            with single_blas_thread():
                arms = [
                    _ArmRunner(spec, arm, options, urls[arm], on_day).run() for arm in options.arms
                ]
                oracles = _oracles(spec_data, options) if options.oracles else None
        else:
            arms, oracles = run_in_workers(
                [(_run_arm, (spec_data, arm, options, urls[arm])) for arm in options.arms],
                (_oracles, (spec_data, options)) if options.oracles else None,
                jobs=jobs,
                on_day=on_day,
                order=heaviest_first(options.arms),
            )
    treated = ~holdout_mask(spec, options.customers)
    comparisons = compare_arms(
        {arm.arm: arm.per_customer for arm in arms},
        treated,
        oracles,
        decisions={arm.arm: arm.decisions for arm in arms},
    )
    return RunResult(
        spec=spec,
        options=options,
        arms=arms,
        database_url=url,
        treated=treated,
        oracles=oracles,
        comparisons=comparisons,
    )
