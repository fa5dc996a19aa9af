"""A business-as-usual log as an experiment's history: decisions logged with the law they were
drawn from (SQLite and PostgreSQL), the burn-in's log the world keeps, and ``engage run``
replaying it into every arm before day 0 (``[simulation] learn_from_burn_in``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from database_support import stored_decision
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.engine.holdout import assign_group
from experiments.errors import InvalidInputError
from experiments.runs.report import render_markdown, result_json
from experiments.runs.simulation import START as RUN_START
from experiments.runs.simulation import RunOptions, run_simulation
from experiments.simulate import ContactRules, CustomerWorld, WorldConfig
from experiments.simulate.fields import HISTORY_DAYS
from experiments.spec import load_spec, parse_spec
from experiments.spec.state import LEVELS_KEY, STATE_KEY
from experiments.store import models
from experiments.store.database import Database, open_database
from experiments.store.snapshots import latest_snapshot

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: A law over the four actions (calm, sms), (calm, email), (urgent, sms), (urgent, email).
LAW = np.array([0.1, 0.2, 0.3, 0.4])


def spec_dict(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "key": "history",
        "factors": {"message": ["calm", "urgent"], "channel": ["sms", "email"]},
        "context": {"spend": {"type": "numeric", "min": 0}},
        "policy": {"name": "lookahead_ts", "params": {"ridge": 1.0}},
        "reward": {"kind": "event", "event": "click", "window": "1d"},
        "holdout": {"share": 0.5},
        "state": {"contact_half_life": "7d", "lookback": "28d", "centred": True},
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def core(engine: Engine, clock: ManualClock) -> DecisionEngine:
    decisions = DecisionEngine(Database(engine), clock=clock, seed=5)
    decisions.create_experiment(spec_dict())
    return decisions


def requests(*customers: str) -> list[DecisionRequest]:
    return [DecisionRequest(customer, {"spend": 1.0}) for customer in customers]


def test_a_logged_history_keeps_its_actions_and_their_chances(
    core: DecisionEngine, engine: Engine, clock: ManualClock
) -> None:
    """Each row stores the action it was given with its law's chance of it as propensity,
    the law's level marginals (by hand: calm 0.1 + 0.2, urgent 0.3 + 0.4, sms 0.1 + 0.3,
    email 0.2 + 0.4) and the holdout group of its customer; a later decision's contact state
    counts the history as any contact."""
    clock.set(START - 3 * DAY)
    customers = ["c1", "c2", "c3", "c4"]
    logged = core.log_history(
        "history", requests(*customers), np.array([3, 0, 2, 1]), np.tile(LAW, (4, 1))
    )
    assert [row.propensity for row in logged] == [0.4, 0.1, 0.3, 0.2]
    assert logged[0].action == {"message": "urgent", "channel": "email"}
    for customer, row in zip(customers, logged, strict=True):
        kept = stored_decision(engine, row.decision_id)
        assert kept.status == "open"
        assert kept.created_at == START - 3 * DAY
        assert kept.window_closes_at == START - 2 * DAY
        assert kept.group == assign_group("history", customer, 0.5)
        np.testing.assert_allclose(kept.context[LEVELS_KEY], [0.3, 0.7, 0.4, 0.6], rtol=1e-12)
        assert kept.context[STATE_KEY][-1] == 28.0  # no contact in the 28-day lookback
    clock.set(START)
    later = core.decide_many("history", requests("c1"))[0]
    state = stored_decision(engine, later.decision_id).context[STATE_KEY]
    w = 2.0 ** (-3 / 7)  # three days after (urgent, email), half-life 7 days
    np.testing.assert_allclose(
        state, [0, w, 0, w, 0.3 * w, 0.7 * w, 0.4 * w, 0.6 * w, 3.0], rtol=1e-12
    )


def test_the_history_is_joined_and_learned_like_any_decision(
    core: DecisionEngine, engine: Engine, clock: ManualClock
) -> None:
    clock.set(START - 3 * DAY)
    logged = core.log_history("history", requests("a", "b"), np.array([0, 3]), np.tile(LAW, (2, 1)))
    core.record(
        [
            OutcomeInput(
                outcome_id="o1",
                event="click",
                value=1.0,
                occurred_at=START - 3 * DAY + timedelta(hours=2),
                decision_id=logged[1].decision_id,
            )
        ]
    )
    clock.set(START - DAY)
    assert core.join_rewards("history") == 2
    assert core.learn("history") == 1
    with Session(engine) as session:
        snapshot = latest_snapshot(session, experiment_key="history")
        rewards = session.exec(select(models.Reward).order_by(col(models.Reward.value))).all()
    assert snapshot is not None
    assert snapshot.rows_learned == 2
    assert [(reward.decision_id, reward.value) for reward in rewards] == [
        (logged[0].decision_id, 0.0),
        (logged[1].decision_id, 1.0),
    ]
    assert all(reward.learned_version == 1 for reward in rewards)


@pytest.mark.parametrize(
    ("actions", "law", "expected"),
    [
        (np.array([4]), LAW[None, :], "action indices in [0, 4)"),
        (np.array([-1]), LAW[None, :], "action indices in [0, 4)"),
        (np.array([0]), np.array([[0.0, 0.5, 0.5, 0.0]]), "positive chance"),
        (np.array([0, 1]), LAW[None, :], "one action and one law"),
        (np.array([0]), LAW[None, :3], "one action and one law"),
    ],
)
def test_a_history_that_cannot_be_true_is_refused_by_name(
    core: DecisionEngine, engine: Engine, actions: np.ndarray, law: np.ndarray, expected: str
) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(expected)) as caught:
        core.log_history("history", requests("c1"), actions, law)
    assert caught.value.field == "actions"
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(models.Decision)).one() == 0


# ----------------------------------------------------------------------------- the world
MECHANISM = load_spec(EXAMPLES / "mechanism.toml")
RULES = ContactRules(max_decisions=3, per_days=7, quiet_hours=(22, 8))


def lived(log: bool) -> CustomerWorld:
    config = WorldConfig(n_customers=1_500, burn_in_days=14, burn_in_rules=RULES)
    return CustomerWorld(config, MECHANISM.decision_space(), MECHANISM.context, log_burn_in=log)


def test_keeping_the_burn_in_log_changes_nothing_in_the_world() -> None:
    plain, logging = lived(False), lived(True)
    assert plain.burn_in_log == []
    np.testing.assert_array_equal(plain.customers.fatigue, logging.customers.fatigue)
    np.testing.assert_array_equal(plain.customers.nurture, logging.customers.nurture)
    for _ in range(3):
        first, second = plain.end_day(), logging.end_day()
        np.testing.assert_array_equal(first.customer, second.customer)
        np.testing.assert_array_equal(first.value, second.value)


def test_the_burn_in_log_is_what_the_burn_in_did() -> None:
    """One entry per burn-in day; its contacts are the world's own contact history of that
    day, its law uniform over the allowed actions, its contexts the spec's fields."""
    world = lived(True)
    log = world.burn_in_log
    assert [day.day for day in log] == list(range(-14, 0))
    allowed = MECHANISM.decision_space().allowed
    for day in log:
        np.testing.assert_allclose(day.law, allowed / allowed.sum())
        contacted = world.customers.contact_history[day.day % HISTORY_DAYS]
        np.testing.assert_array_equal(np.flatnonzero(contacted), day.customers)
        assert allowed[day.actions].all()
        assert len(day.contexts) == day.customers.size
        assert all(set(row) == set(MECHANISM.context) for row in day.contexts)
        assert ((day.hours >= 0) & (day.hours < 24)).all()
    clicks = sum(int((day.events.event == "click").sum()) for day in log)
    assert clicks > 0


# ----------------------------------------------------------------------------- engage run
def test_every_arm_starts_from_the_burn_in_log(tmp_path: Path) -> None:
    """With ``learn_from_burn_in`` each arm's store holds the burn-in's contacts, dated before
    day 0, and its policy has learned from them by day 0; the world, and so the oracles and
    KPIs of an arm that ignores its store (the uniform holdout's), are unchanged."""
    data = MECHANISM.to_json_dict()
    data["simulation"] = {"burn_in_days": 7, "learn_from_burn_in": True}
    spec = parse_spec(data)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    options = RunOptions(customers=400, days=3, seed=2, arms=("interaction",), database_url=url)
    result = run_simulation(spec, options)
    arm = result.arms[0]
    database = open_database(url)
    with database.session() as session:
        before = session.exec(
            select(func.count())
            .select_from(models.Decision)
            .where(col(models.Decision.created_at) < RUN_START)
        ).one()
        snapshot = latest_snapshot(session, experiment_key=arm.key)
    database.dispose()
    assert arm.history_decisions == before > 100
    assert snapshot is not None
    assert snapshot.version >= 7 + 1
    report = result_json(result)
    assert report["learn_from_burn_in"] is True
    assert report["arms"][0]["history_decisions"] == before
    assert f"every arm first learned from its log ({before:,} decisions)" in render_markdown(result)
    data["simulation"] = {"burn_in_days": 7}
    plain = run_simulation(
        parse_spec(data), RunOptions(customers=400, days=3, seed=2, arms=("interaction",))
    )
    assert plain.arms[0].history_decisions == 0
    assert plain.oracles is not None
    assert result.oracles is not None
    assert plain.oracles.revenue == result.oracles.revenue
    assert plain.oracles.click == result.oracles.click
