"""Strategy experiments through the engine, on SQLite and PostgreSQL, with a manual clock:
assignment stable within an epoch and logged with the strategy policy's own probabilities,
decisions restricted to the strategy, epoch KPIs by hand, learning, the report and export."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

import experiments.engine.strategies as strategies_module
from bandit.adjustment import stratified_difference
from experiments.analysis.export import export_experiment
from experiments.analysis.report import build_live_report
from experiments.analysis.strategies import strategy_report, strategy_table_markdown
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.engine.epochs import learning_rows
from experiments.engine.holdout import assign_group, in_panel, panel_strategy
from experiments.spec import parse_spec
from experiments.store import models
from experiments.store.database import Database
from experiments.store.retention import erase_customer
from experiments.store.snapshots import unpack_state
from experiments.store.strategies import latest_strategy_snapshot
from experiments.vocabulary import ExperimentStatus, Group

START = datetime(2026, 3, 2, tzinfo=UTC)
WEEK = timedelta(days=7)


def spec_dict(holdout: float = 0.25, **strategies: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "epoch": "7d",
        "kpi": {"kind": "sum", "event": "revenue", "baseline": ["spend"]},
        "options": [
            {"name": "all"},
            {"name": "calm", "allow": {"message": ["calm"]}},
            {"name": "calm-sms", "allow": {"message": ["calm"], "channel": ["sms"]}},
        ],
    }
    section.update(strategies)
    return {
        "key": "promo",
        "factors": {
            "offer": ["none", "bundle"],
            "message": ["calm", "loud"],
            "channel": ["sms", "push"],
        },
        "rules": [{"message": "loud", "channel": "push"}],
        "context": {
            "spend": {"type": "numeric", "min": 0},
            "local_hour": {"type": "numeric", "required": False, "default": 12},
        },
        "policy": {"name": "linear_ts"},
        "reward": {"kind": "sum", "event": "revenue", "window": "1d"},
        "holdout": {"share": holdout},
        "strategies": section,
    }


def make_core(
    engine: Engine, clock: ManualClock, seed: int = 3, holdout: float = 0.25, **strategies: Any
) -> DecisionEngine:
    core = DecisionEngine(Database(engine), clock=clock, seed=seed)
    core.create_experiment(spec_dict(holdout, **strategies))
    return core


def ask(core: DecisionEngine, customer: str, spend: float = 1.0, **extra: Any) -> Any:
    return core.decide("promo", DecisionRequest(customer, {"spend": spend}, **extra))


def assignments(engine: Engine) -> list[models.StrategyAssignment]:
    with Session(engine) as session:
        stmt = select(models.StrategyAssignment).order_by(
            col(models.StrategyAssignment.epoch), col(models.StrategyAssignment.customer_id)
        )
        return list(session.exec(stmt))


def test_assignment_is_stable_within_an_epoch_and_new_in_the_next(engine: Engine) -> None:
    clock = ManualClock(START)
    core = make_core(engine, clock)
    spec = parse_spec(spec_dict())
    strategies = spec.strategy_set()
    assert strategies is not None
    customers = [f"c{index}" for index in range(40)]
    first = {customer: ask(core, customer, spend=index) for index, customer in enumerate(customers)}
    for customer, result in first.items():
        held_out = assign_group("promo", customer, 0.25) == Group.HOLDOUT
        assert (result.group == Group.HOLDOUT) == held_out
        assert (result.strategy is None) == held_out
    assert {result.strategy for result in first.values()} >= {"all", "calm", "calm-sms", None}
    # Later in the epoch, one by one, in a batch, and from another process's engine.
    clock.advance(timedelta(days=3, hours=5))
    again = core.decide_many("promo", [DecisionRequest(c, {"spend": 2.0}) for c in customers])
    other = DecisionEngine(Database(engine), clock=clock, seed=99)
    clock.advance(timedelta(days=3, hours=18, minutes=59))  # the epoch's last minute
    third = [other.decide("promo", DecisionRequest(c, {"spend": 0.0})) for c in customers]
    for customer, second, last in zip(customers, again, third, strict=True):
        assert first[customer].strategy == second.strategy == last.strategy
    decisions = list(first.values()) + again + third
    space = spec.decision_space()
    for result in decisions:
        if result.strategy is not None and result.action_index is not None:
            assert strategies.masks[strategies.index_of(result.strategy)][result.action_index]
    # One row per customer for epoch 0, with the epoch's bounds and the first context.
    rows = assignments(engine)
    assert [row.customer_id for row in rows] == sorted(customers)
    by_customer = {row.customer_id: row for row in rows}
    assert by_customer["c7"].context == {"spend": 7}
    for row in rows:
        assert (row.epoch, row.epoch_start, row.epoch_end) == (0, START, START + WEEK)
        assert row.strategy == first[row.customer_id].strategy
        assert (row.group == Group.HOLDOUT) == (row.strategy is None)
        assert (row.propensity is None) == (row.strategy is None)
        assert row.kpi is None
        assert row.learned_version is None
    # The next epoch on the grid: every customer is assigned again.
    clock.set(START + WEEK)
    ask(core, "c1")
    ask(other, "c2")
    epochs = Counter((row.customer_id, row.epoch) for row in assignments(engine))
    assert epochs[("c1", 1)] == epochs[("c2", 1)] == 1
    assert len(epochs) == 42
    assert space.n_actions == 8


def test_a_process_that_loses_the_race_answers_with_the_stored_strategy(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process B has not seen A's row when it chooses; its insert finds the key taken, so it
    reads A's row back and answers with A's strategy, logging nothing of its own."""
    clock = ManualClock(START)
    a = make_core(engine, clock)
    treated = [f"c{i}" for i in range(30) if assign_group("promo", f"c{i}", 0.25) == "treatment"]
    stored = {customer: ask(a, customer).strategy for customer in treated}
    real = strategies_module.assignments_for
    calls = {"n": 0}

    def blind_first_read(session: Session, **kwargs: Any) -> dict:
        calls["n"] += 1
        return {} if calls["n"] == 1 else real(session, **kwargs)

    monkeypatch.setattr(strategies_module, "assignments_for", blind_first_read)
    b = DecisionEngine(Database(engine), clock=clock, seed=12345)
    answers = b.decide_many("promo", [DecisionRequest(c, {"spend": 1.0}) for c in treated])
    assert calls["n"] == 2
    assert [answer.strategy for answer in answers] == [stored[c] for c in treated]
    assert len(assignments(engine)) == len(treated)


def test_logged_propensities_are_the_strategy_policys_probabilities(engine: Engine) -> None:
    """epsilon-greedy's probabilities are exact: the logged propensity of every assignment is
    the strategy policy's probability of that strategy at the customer's context, at the
    snapshot version logged with it."""
    clock = ManualClock(START)
    core = make_core(engine, clock, policy={"name": "epsilon_greedy", "params": {"epsilon": 0.3}})
    customers = [f"c{index}" for index in range(60)]
    first = [ask(core, customer, spend=index % 7) for index, customer in enumerate(customers)]
    core.record(
        OutcomeInput(
            f"r{i}",
            "revenue",
            10.0 + (result.strategy == "calm") * 20.0,
            START,
            None,
            "promo",
            customers[i],
        )
        for i, result in enumerate(first)
    )
    clock.set(START + WEEK)
    assert core.measure_epochs("promo") == 60
    assert core.learn_strategies("promo") == 1
    clock.advance(timedelta(hours=1))
    later = [f"d{index}" for index in range(80)]
    fresh = DecisionEngine(Database(engine), clock=clock, seed=5)  # no cached snapshot
    for index, customer in enumerate(later):
        ask(fresh, customer, spend=index % 5)
    spec = parse_spec(spec_dict(policy={"name": "epsilon_greedy", "params": {"epsilon": 0.3}}))
    strategies = spec.strategy_set()
    assert strategies is not None
    policy = strategies.build_policy(seed=0)
    with Session(engine) as session:
        snapshot = latest_strategy_snapshot(session, experiment_key="promo")
    assert snapshot is not None
    assert snapshot.version == 1
    policy.set_state(unpack_state(snapshot.state))
    rows = [row for row in assignments(engine) if row.epoch == 1 and row.strategy is not None]
    assert len(rows) > 40
    X = strategies.encode([row.context for row in rows])
    expected = policy.action_probabilities(X)
    for row, probabilities in zip(rows, expected, strict=True):
        assert row.policy_version == 1
        assert row.strategy_index == strategies.index_of(str(row.strategy))
        assert row.propensity == pytest.approx(probabilities[row.strategy_index], abs=1e-12)
    # calm earned more: greedy on it, so 0.7 + 0.3 / 3 (floor 0.01 mixed in on top).
    floor = spec.exploration_floor
    top = (1 - floor) * (0.7 + 0.1) + floor / 3
    assert Counter(round(float(row.propensity), 9) for row in rows if row.strategy == "calm") == {
        round(top, 9): sum(row.strategy == "calm" for row in rows)
    }


def test_thompson_propensities_match_the_policy_within_monte_carlo_error(engine: Engine) -> None:
    clock = ManualClock(START)
    core = make_core(engine, clock, policy={"name": "linear_ts", "params": {"n_samples": 4000}})
    for index in range(40):
        ask(core, f"c{index}", spend=index % 4)
    loaded = core.loaded_strategies("promo")
    assert loaded is not None
    rows = [row for row in assignments(engine) if row.strategy is not None]
    X = loaded.strategies.encode([row.context for row in rows])
    probabilities = loaded.policy.action_probabilities(X)
    logged = np.array([row.propensity for row in rows])
    chosen = probabilities[np.arange(len(rows)), [row.strategy_index for row in rows]]
    assert np.abs(logged - chosen).max() < 0.05


def test_epoch_kpi_by_hand(engine: Engine) -> None:
    """c1 decides on day 2 of epoch 0 [START, START + 7d). Its revenue: 3 on day 1 (before any
    decision, reported by customer id: unattributed), 5 an hour after the decision (by its
    id), 7 on day 6 (by customer id, after the decision's 1-day window: late), 100 at exactly
    the epoch's end (the next epoch's), a click (not the KPI's event). KPI = 3 + 5 + 7 = 15.
    c2 has no revenue: KPI 0."""
    clock = ManualClock(START)
    core = make_core(engine, clock, holdout=0.0)
    clock.set(START + timedelta(days=2))
    decision = ask(core, "c1")
    ask(core, "c2")
    day = timedelta(days=1)

    def by_customer(name: str, value: float, at: datetime, event: str = "revenue") -> OutcomeInput:
        return OutcomeInput(name, event, value, at, experiment="promo", customer_id="c1")

    clock.set(START + WEEK + timedelta(hours=1))
    core.record(
        [
            by_customer("before", 3.0, START + day),
            OutcomeInput(
                "after", "revenue", 5.0, START + 2 * day + timedelta(hours=1), decision.decision_id
            ),
            by_customer("late", 7.0, START + 6 * day),
            by_customer("next", 100.0, START + WEEK),
            by_customer("click", 1.0, START + 3 * day, event="click"),
        ]
    )
    assert core.measure_epochs("promo") == 2
    assert core.measure_epochs("promo") == 0  # measured once
    kpis = {row.customer_id: row.kpi for row in assignments(engine)}
    assert kpis == {"c1": 15.0, "c2": 0.0}


def test_epochs_are_measured_only_once_closed_and_retention_by_hand(engine: Engine) -> None:
    """Retained: c1 churns on day 3 of the epoch (KPI 0), c2 does not (1)."""
    clock = ManualClock(START)
    core = make_core(
        engine,
        clock,
        kpi={"kind": "retained", "event": "churn", "baseline": ["spend"]},
        holdout=0.0,
    )
    ask(core, "c1")
    ask(core, "c2")
    core.record([OutcomeInput("x", "churn", 1.0, START + timedelta(days=3), None, "promo", "c1")])
    clock.set(START + WEEK - timedelta(seconds=1))
    assert core.measure_epochs("promo") == 0
    clock.set(START + WEEK)
    assert core.measure_epochs("promo") == 2
    assert {row.customer_id: row.kpi for row in assignments(engine)} == {"c1": 0.0, "c2": 1.0}


def test_the_strategy_policy_learns_measured_treatment_epochs_once(engine: Engine) -> None:
    clock = ManualClock(START)
    core = make_core(engine, clock)
    customers = [f"c{index}" for index in range(40)]
    for index, customer in enumerate(customers):
        ask(core, customer, spend=index % 5)
    assert core.learn_strategies("promo") is None  # nothing measured yet
    treated = [row for row in assignments(engine) if row.strategy is not None]
    erase_customer(engine, customer_id=treated[0].customer_id)
    clock.set(START + WEEK)
    core.measure_epochs("promo")
    assert core.learn_strategies("promo") == 1
    assert core.learn_strategies("promo") is None
    rows = assignments(engine)
    for row in rows:
        assert row.kpi == 0.0
        assert row.learned_version == (1 if row.group == Group.TREATMENT else None)
    with Session(engine) as session:
        snapshot = latest_strategy_snapshot(session, experiment_key="promo")
    assert snapshot is not None
    assert snapshot.rows_learned == len(treated) - 1  # the erased context is not learned
    assert int(unpack_state(snapshot.state)["n_updates"]) == len(treated) - 1


def test_decisions_are_restricted_by_the_strategy_cadence_and_exclusions(engine: Engine) -> None:
    clock = ManualClock(START)
    core = make_core(
        engine,
        clock,
        holdout=0.0,
        options=[
            {"name": "weekly-calm", "allow": {"message": ["calm"]}, "max_decisions": 1},
            {
                "name": "twice-calm-sms",
                "allow": {"message": ["calm"], "channel": ["sms"]},
                "max_decisions": 2,
                "window": "2d",
            },
        ],
    )
    made = ask(core, "c1")
    assert made.action["message"] == "calm"
    assert made.suppressed_reason is None
    excluded = ask(core, "c2", exclude=[{"message": "calm"}])
    assert excluded.suppressed_reason == "strategy_excludes_all"
    assert excluded.action is None
    assert excluded.strategy is not None
    second = ask(core, "c1")
    if made.strategy == "weekly-calm":
        assert second.suppressed_reason == "strategy_cadence"
        clock.set(START + WEEK)  # a new epoch, a new allowance
        assert ask(core, "c1").suppressed_reason is None
    else:
        assert second.suppressed_reason is None
        assert ask(core, "c1").suppressed_reason == "strategy_cadence"
        clock.advance(timedelta(days=2))  # the rolling window moved on
        assert ask(core, "c1").suppressed_reason is None


def test_no_strategy_while_paused(engine: Engine) -> None:
    clock = ManualClock(START)
    core = make_core(engine, clock, holdout=0.0)
    core.set_status("promo", ExperimentStatus.PAUSED)
    assert ask(core, "c1").strategy is None
    assert assignments(engine) == []
    core.set_status("promo", ExperimentStatus.RUNNING)
    assert ask(core, "c1").strategy is not None


def test_replayed_requests_answer_with_their_strategy(engine: Engine) -> None:
    clock = ManualClock(START)
    core = make_core(engine, clock, holdout=0.0)
    first = ask(core, "c1", request_id="r1")
    again = ask(core, "c1", request_id="r1")
    assert again.replayed
    assert again.strategy == first.strategy is not None


def test_the_report_compares_each_strategy_with_the_holdout_by_epoch(
    engine: Engine, tmp_path: Path
) -> None:
    clock = ManualClock(START)
    core = make_core(engine, clock)
    customers = [f"c{index}" for index in range(80)]
    results = {c: ask(core, c, spend=index % 6) for index, c in enumerate(customers)}
    core.record(
        OutcomeInput(
            f"o{index}",
            "revenue",
            float(index % 6) * 2 + (r.strategy == "calm") * 3,
            START + timedelta(hours=3),
            r.decision_id,
        )
        for index, (c, r) in enumerate(results.items())
    )
    clock.set(START + WEEK)
    core.measure_epochs("promo")
    core.learn_strategies("promo")
    report = build_live_report(core.database, "promo")
    assert report.strategies is not None
    assert report.strategies.measured == 80
    rows = assignments(engine)
    kpi = np.array([row.kpi for row in rows])
    holdout = np.array([row.strategy is None for row in rows])
    for lift in report.strategies.lifts:
        ours = np.array([row.strategy == lift.strategy for row in rows])
        weights = np.array([1 / row.propensity for row in rows if row.strategy == lift.strategy])
        expected = stratified_difference(
            kpi[ours],
            np.zeros(ours.sum()),
            kpi[holdout],
            np.zeros(holdout.sum()),
            treatment_weights=weights,
        )
        assert expected is not None
        assert lift.difference == pytest.approx(expected.difference, abs=1e-12)
        assert lift.diff_low == pytest.approx(expected.ci_low, abs=1e-12)
        assert lift.measured == ours.sum()
        assert lift.served_kpi == pytest.approx(kpi[ours].mean(), abs=1e-12)
        # KPI = 2 spend (+ 3 for calm): the adjusted difference takes the spend out exactly.
        assert lift.adjusted_difference == pytest.approx(
            3.0 if lift.strategy == "calm" else 0.0, abs=1e-9
        )
    assert report.strategies.policy_version == 1
    assert (
        sum(epoch.customers[report.strategies.holdout] for epoch in report.strategies.epochs)
        == holdout.sum()
    )
    # engage export writes the assignments, and the decisions name their strategy.
    exported = export_experiment(engine, "promo", tmp_path)
    assert exported.rows["strategies"] == 80
    with exported.files["strategies"].open() as handle:
        table = list(csv.DictReader(handle))
    assert {row["customer_id"] for row in table} == set(customers)
    assert {row["strategy"] for row in table} == {"all", "calm", "calm-sms", ""}
    with exported.files["decisions"].open() as handle:
        decided = {row["customer_id"]: row["strategy"] for row in csv.DictReader(handle)}
    assert decided == {c: r.strategy or "" for c, r in results.items()}


def test_panel_customers_keep_their_enrolment_strategy_and_alone_teach_the_policy(
    engine: Engine,
) -> None:
    """``panel = 0.5``: a stable half of the treated customers (by hash) keep the strategy a
    second hash drew uniformly at enrolment, epoch after epoch, logged with propensity 1/3;
    the others are assigned by the policy; only the panel's measured epochs are learned."""
    clock = ManualClock(START)
    core = make_core(engine, clock, panel=0.5)
    names = ("all", "calm", "calm-sms")
    customers = [f"c{index}" for index in range(60)]
    treated = [c for c in customers if assign_group("promo", c, 0.25) == Group.TREATMENT]
    panel = [c for c in treated if in_panel("promo", c, 0.5)]
    assert 10 <= len(panel) <= len(treated) - 10
    for epoch in range(3):
        clock.set(START + epoch * WEEK)
        results = {c: ask(core, c, spend=float(index)) for index, c in enumerate(customers)}
        for customer in panel:
            assert results[customer].strategy == names[panel_strategy("promo", customer, 3)]
    rows = [row for row in assignments(engine) if row.customer_id in panel]
    assert len(rows) == 3 * len(panel)
    for row in rows:
        assert row.strategy == names[panel_strategy("promo", row.customer_id, 3)]
        assert row.propensity == pytest.approx(1 / 3)
    others = [row for row in assignments(engine) if row.customer_id in set(treated) - set(panel)]
    assert all(row.strategy_index is not None for row in others)
    core.measure_epochs("promo")  # epochs 0 and 1 are closed; epoch 2 is open
    assert core.learn_strategies("promo") == 1
    with Session(engine) as session:
        snapshot = latest_strategy_snapshot(session, experiment_key="promo")
    assert snapshot is not None
    assert int(unpack_state(snapshot.state)["n_updates"]) == 2 * len(panel)
    learned = [row for row in assignments(engine) if row.learned_version == 1]
    assert len(learned) == 2 * len(treated)  # the others are marked, not learned from


def test_a_panel_learns_on_the_context_at_enrolment() -> None:
    """Rows of later epochs are encoded and adjusted with the enrolment context, and rows of
    customers outside the panel are not learned."""
    strategies = parse_spec(spec_dict(panel=0.5, context=["spend"])).strategy_set()
    assert strategies is not None
    rows = [
        models.StrategyAssignment(
            id=index,
            experiment_key="promo",
            customer_id=customer,
            epoch=1,
            epoch_start=START + WEEK,
            epoch_end=START + 2 * WEEK,
            group="treatment",
            strategy="calm",
            strategy_index=1,
            propensity=1 / 3,
            context={"spend": 9.0},
            kpi=4.0,
        )
        for index, customer in enumerate(("c1", "c2"))
    ]
    X, actions, kpis, propensities = learning_rows(strategies, rows, {"c1": {"spend": 2.0}})
    np.testing.assert_array_equal(X, [[2.0]])
    assert actions.tolist() == [1]
    assert kpis.tolist() == [4.0]
    assert propensities.tolist() == pytest.approx([1 / 3])


def test_a_settled_panel_teaches_only_epochs_after_the_first_under_a_strategy(
    engine: Engine,
) -> None:
    """``panel_warmup = 1, panel = 0.5, panel_settle = 1``: epoch 0 is every treated
    customer's first under their strategy, so nothing of it is learned; epoch 1 is learned for
    the panel (its second epoch under the strategy). Every row is marked as seen."""
    clock = ManualClock(START)
    core = make_core(engine, clock, panel=0.5, panel_warmup=1, panel_settle=1)
    customers = [f"c{index}" for index in range(60)]
    treated = [c for c in customers if assign_group("promo", c, 0.25) == Group.TREATMENT]
    panel = {c for c in treated if in_panel("promo", c, 0.5)}
    for epoch in range(3):
        clock.set(START + epoch * WEEK)
        for index, customer in enumerate(customers):
            ask(core, customer, spend=float(index))
    core.measure_epochs("promo")
    assert core.learn_strategies("promo") == 1
    with Session(engine) as session:
        snapshot = latest_strategy_snapshot(session, experiment_key="promo")
    assert snapshot is not None
    assert int(unpack_state(snapshot.state)["n_updates"]) == len(panel)
    learned = [row for row in assignments(engine) if row.learned_version == 1]
    assert len(learned) == 2 * len(treated)


def test_a_panel_warmup_holds_every_treated_customer_in_the_panel_at_first(
    engine: Engine,
) -> None:
    """``panel_warmup = 1, panel = 0.5``: in epoch 0 every treated customer gets their hashed
    uniform strategy; from epoch 1 only the panel keeps it. The learner folds in epoch 0 for
    everyone treated and epoch 1 for the panel only."""
    clock = ManualClock(START)
    core = make_core(engine, clock, panel=0.5, panel_warmup=1)
    names = ("all", "calm", "calm-sms")
    customers = [f"c{index}" for index in range(60)]
    treated = [c for c in customers if assign_group("promo", c, 0.25) == Group.TREATMENT]
    panel = {c for c in treated if in_panel("promo", c, 0.5)}
    for epoch in range(3):
        clock.set(START + epoch * WEEK)
        for index, customer in enumerate(customers):
            ask(core, customer, spend=float(index))
    by_epoch = {(row.customer_id, row.epoch): row for row in assignments(engine) if row.strategy}
    for customer in treated:
        hashed = names[panel_strategy("promo", customer, 3)]
        assert by_epoch[(customer, 0)].strategy == hashed
        assert by_epoch[(customer, 0)].propensity == pytest.approx(1 / 3)
        if customer in panel:
            assert by_epoch[(customer, 1)].strategy == by_epoch[(customer, 2)].strategy == hashed
    core.measure_epochs("promo")
    assert core.learn_strategies("promo") == 1
    with Session(engine) as session:
        snapshot = latest_strategy_snapshot(session, experiment_key="promo")
    assert snapshot is not None
    assert int(unpack_state(snapshot.state)["n_updates"]) == len(treated) + len(panel)
    spec = parse_spec(spec_dict(panel=0.5, panel_warmup=1))
    with Session(engine) as session:
        report = strategy_report(session, experiment_key="promo", strategies=spec.strategy_set())
    assert (report.panel, report.panel_warmup) == (0.5, 1)
    assert "every treated customer for the first 1 epochs, then 50%" in strategy_table_markdown(
        report
    )
