"""The decision engine end to end in-process, on SQLite and PostgreSQL, with a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from experiments.analysis.report import build_live_report
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.engine.holdout import assign_group
from experiments.errors import ConflictError, InvalidInputError, NotFoundError
from experiments.store import models
from experiments.store.database import Database
from experiments.store.decisions import get_decision
from experiments.store.snapshots import latest_snapshot, unpack_state

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def spec_dict(**overrides: object) -> dict:
    spec = {
        "key": "promo",
        "factors": {"offer": ["none", "bundle", "discount"], "channel": ["sms", "push"]},
        "context": {
            "tenure": {"type": "numeric", "min": 0},
            "plan": {"type": "categorical", "levels": ["prepaid", "postpaid"]},
            "local_hour": {"type": "numeric", "required": False, "default": 12},
        },
        "policy": {"name": "linear_ts", "params": {}},
        "reward": {"kind": "sum", "event": "revenue", "window": "7d"},
        "holdout": {"share": 0.2},
        "learner": {"batch_size": 5, "interval_seconds": 1},
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def decisions(engine: Engine, clock: ManualClock) -> DecisionEngine:
    core = DecisionEngine(Database(engine), clock=clock, seed=7)
    core.create_experiment(spec_dict())
    return core


def ask(core: DecisionEngine, customer: str, **extra: object) -> object:
    return core.decide(
        "promo",
        DecisionRequest(customer_id=customer, context={"tenure": 3, "plan": "prepaid"}, **extra),
    )


def test_decide_logs_before_answering_with_stable_group(
    decisions: DecisionEngine, engine: Engine
) -> None:
    first = ask(decisions, "c1")
    second = ask(decisions, "c1")
    assert first.group == second.group == assign_group("promo", "c1", 0.2)
    assert set(first.action) == {"offer", "channel"}
    assert 0 < first.propensity <= 1
    with Session(engine) as session:
        stored = get_decision(session, decision_id=first.decision_id)
    assert stored is not None
    assert stored.action == first.action
    assert stored.propensity == pytest.approx(first.propensity)
    assert stored.context == {"tenure": 3, "plan": "prepaid"}


def test_request_id_retry_returns_the_same_decision(
    decisions: DecisionEngine, engine: Engine
) -> None:
    first = ask(decisions, "c1", request_id="r-1")
    again = ask(decisions, "c1", request_id="r-1")
    assert again.decision_id == first.decision_id
    assert again.action == first.action
    with Session(engine) as session:
        assert len(session.exec(select(models.Decision)).all()) == 1


def test_bad_context_names_the_field(decisions: DecisionEngine) -> None:
    with pytest.raises(InvalidInputError) as error:
        decisions.decide(
            "promo", DecisionRequest(customer_id="c", context={"tenure": -1, "plan": "prepaid"})
        )
    assert error.value.field == "context.tenure"
    with pytest.raises(InvalidInputError) as error:
        decisions.decide(
            "promo", DecisionRequest(customer_id="c", context={"tenure": 1, "plan": "x"})
        )
    assert error.value.field == "context.plan"
    with pytest.raises(NotFoundError):
        decisions.decide("nope", DecisionRequest(customer_id="c", context={}))


def test_exclusions_are_respected(decisions: DecisionEngine) -> None:
    for number in range(30):
        result = ask(decisions, f"c{number}", exclude=[{"offer": "none"}, {"channel": "sms"}])
        assert result.action["offer"] != "none"
        assert result.action["channel"] == "push"


def test_outcomes_are_idempotent_and_late_or_unknown_ones_are_kept(
    decisions: DecisionEngine, clock: ManualClock, engine: Engine
) -> None:
    made = ask(decisions, "c1")
    outcome = OutcomeInput(
        outcome_id="o-1",
        event="revenue",
        value=10.0,
        occurred_at=START + timedelta(days=1),
        decision_id=made.decision_id,
    )
    assert decisions.record([outcome, outcome]).accepted == 1
    assert decisions.record([outcome]).duplicates == 1
    late = OutcomeInput("o-2", "revenue", 5.0, START + timedelta(days=9), made.decision_id)
    unknown = OutcomeInput("o-3", "revenue", 5.0, START, decision_id="f" * 32)
    by_customer = OutcomeInput(
        "o-4", "revenue", 2.5, START + timedelta(hours=2), experiment="promo", customer_id="c1"
    )
    nobody = OutcomeInput("o-5", "revenue", 1.0, START, experiment="promo", customer_id="zz")
    assert decisions.record([late, unknown, by_customer, nobody]).accepted == 4
    with Session(engine) as session:
        attribution = {
            row.outcome_id: row.attribution for row in session.exec(select(models.Outcome))
        }
    assert attribution == {
        "o-1": "attributed",
        "o-2": "late",
        "o-3": "unknown_decision",
        "o-4": "attributed",
        "o-5": "unattributed",
    }
    clock.advance(timedelta(days=7))
    assert decisions.join_rewards("promo") == 1
    with Session(engine) as session:
        (reward,) = session.exec(select(models.Reward)).all()
    assert reward.value == pytest.approx(12.5)  # 10 + 2.5 within the window; the late 5 is not


def test_outcomes_before_their_decision_are_labelled_so_never_attributed(
    decisions: DecisionEngine, clock: ManualClock, engine: Engine
) -> None:
    """Issue 13, item 4: an outcome naming its decision but dated before the decision's
    window opened was labelled ``attributed`` (and counted so in the report) though the
    reward ignores it.

    Timeline (hours after START): c1 decided at 0; c2 deferred at 0 and activated at 2.
    Outcomes: o-a c1 at -1 (before), o-b c1 at +1 (in), o-c c2 at +1 before its activation
    (received at +1.5: before any activation), o-d c2 at +3 (in), o-e c2 at +1.5 received
    after activation at 2 (before). Rewards after the 7-day window: c1 = 4, c2 = 16.
    """
    now = ask(decisions, "c1")
    deferred = ask(decisions, "c2", defer=True)
    hours = [START + timedelta(hours=h) for h in (-1, 1, 1.5, 3)]
    decisions.record(
        [
            OutcomeInput("o-a", "revenue", 1.0, hours[0], now.decision_id),
            OutcomeInput("o-b", "revenue", 4.0, hours[1], now.decision_id),
        ]
    )
    clock.advance(timedelta(minutes=90))
    decisions.record([OutcomeInput("o-c", "revenue", 2.0, hours[1], deferred.decision_id)])
    clock.advance(timedelta(minutes=30))
    decisions.activate(deferred.decision_id)
    clock.advance(timedelta(hours=1))
    decisions.record(
        [
            OutcomeInput("o-d", "revenue", 16.0, hours[3], deferred.decision_id),
            OutcomeInput("o-e", "revenue", 8.0, hours[2], deferred.decision_id),
        ]
    )
    with Session(engine) as session:
        attribution = {
            row.outcome_id: row.attribution for row in session.exec(select(models.Outcome))
        }
    assert attribution == {
        "o-a": "before_decision",
        "o-b": "attributed",
        "o-c": "before_decision",
        "o-d": "attributed",
        "o-e": "before_decision",
    }
    counts = build_live_report(Database(engine), "promo").outcomes
    assert counts.total == 5
    assert counts.by_attribution["before_decision"] == 3
    assert counts.by_attribution["attributed"] == 2
    clock.advance(timedelta(days=7))
    assert decisions.join_rewards("promo") == 2
    with Session(engine) as session:
        rewards = {row.decision_id: row.value for row in session.exec(select(models.Reward))}
    # Every attributed outcome counts in its reward and no other does.
    assert rewards == {now.decision_id: 4.0, deferred.decision_id: 16.0}


def test_window_close_gives_default_and_learning_publishes_versions(
    decisions: DecisionEngine, clock: ManualClock, engine: Engine
) -> None:
    made = [ask(decisions, f"c{number}") for number in range(12)]
    decisions.record(
        [
            OutcomeInput(f"o{number}", "revenue", 3.0, START + timedelta(hours=1), item.decision_id)
            for number, item in enumerate(made[:4])
        ]
    )
    assert decisions.join_rewards("promo") == 0  # sums are only known when the window closes
    clock.advance(timedelta(days=7, seconds=1))
    assert decisions.join_rewards("promo") == 12
    assert decisions.learn("promo") == 1
    assert decisions.learn("promo") is None  # nothing new
    with Session(engine) as session:
        snapshot = latest_snapshot(session, experiment_key="promo")
        values = sorted(row.value for row in session.exec(select(models.Reward)))
    assert snapshot is not None
    assert snapshot.rows_learned == 12
    assert values == [0.0] * 8 + [3.0] * 4
    state = unpack_state(snapshot.state)
    assert np.isfinite(state["mean"]).all()
    decisions_after = DecisionEngine(Database(engine), clock=clock, seed=1)
    assert decisions_after.loaded_policy("promo").version == 1
    assert ask(decisions_after, "c99").policy_version == 1


def test_one_join_rewards_every_due_decision_in_pages_of_its_limit(
    decisions: DecisionEngine, clock: ManualClock, engine: Engine
) -> None:
    """Twelve windows close at the same instant (ties broken only by the random ids) and two
    deferred decisions expire: a join with pages of 5 settles all of them in one call, so
    what the learner folds next does not depend on which 5 a page took first."""
    made = [ask(decisions, f"c{number}") for number in range(12)]
    unused = [ask(decisions, f"d{number}", defer=True) for number in range(2)]
    clock.advance(timedelta(days=7, seconds=1))
    assert decisions.join_rewards("promo", limit=5) == 12
    assert decisions.join_rewards("promo", limit=5) == 0
    with Session(engine) as session:
        status = {row.id: row.status for row in session.exec(select(models.Decision))}
    assert {status[item.decision_id] for item in made} == {"rewarded"}
    assert {status[item.decision_id] for item in unused} == {"never_activated"}
    assert decisions.learn("promo") == 1


def test_one_join_rewards_every_fresh_outcome_in_pages_of_its_limit(
    engine: Engine, clock: ManualClock
) -> None:
    """An ``event`` reward is final at its event: seven clicked decisions, pages of 3, one
    join rewards all seven before their windows close, and leaves the unclicked one open."""
    core = DecisionEngine(Database(engine), clock=clock, seed=7)
    core.create_experiment(spec_dict(reward={"kind": "event", "event": "click", "window": "7d"}))
    made = [ask(core, f"c{number}") for number in range(8)]
    clock.advance(timedelta(hours=2))
    core.record(
        [
            OutcomeInput(f"o{number}", "click", 1.0, START + timedelta(hours=1), item.decision_id)
            for number, item in enumerate(made[:7])
        ]
    )
    assert core.join_rewards("promo", limit=3) == 7
    with Session(engine) as session:
        status = {row.id: row.status for row in session.exec(select(models.Decision))}
    assert [status[item.decision_id] for item in made] == ["rewarded"] * 7 + ["open"]


def test_deferred_decisions_activate_or_are_reported_unused(
    decisions: DecisionEngine, clock: ManualClock, engine: Engine
) -> None:
    used = ask(decisions, "c1", defer=True)
    unused = ask(decisions, "c2", defer=True)
    assert used.deferred
    clock.advance(timedelta(days=1))
    assert not decisions.activate(used.decision_id).deferred
    clock.advance(timedelta(days=7))
    decisions.join_rewards("promo")
    with Session(engine) as session:
        status = {row.id: row.status for row in session.exec(select(models.Decision))}
    assert status[used.decision_id] == "rewarded"
    assert status[unused.decision_id] == "never_activated"
    with pytest.raises(ConflictError):
        decisions.activate(unused.decision_id)


def test_pause_serves_control_and_stop_refuses(decisions: DecisionEngine) -> None:
    decisions.set_status("promo", "paused")
    result = ask(decisions, "c1")
    assert result.action is not None
    decisions.set_status("promo", "stopped")
    with pytest.raises(ConflictError):
        ask(decisions, "c1")
    with pytest.raises(ConflictError):
        decisions.set_status("promo", "running")


def test_contact_limit_and_quiet_hours_suppress(engine: Engine, clock: ManualClock) -> None:
    core = DecisionEngine(Database(engine), clock=clock, seed=0)
    core.create_experiment(
        spec_dict(
            contact={
                "max_decisions": 2,
                "window": "7d",
                "quiet_hours": [22, 8],
                "local_hour_field": "local_hour",
            }
        )
    )
    reasons = [ask(core, "c1").suppressed_reason for _ in range(3)]
    assert reasons == [None, None, "contact_limit"]
    quiet = core.decide(
        "promo",
        DecisionRequest(
            customer_id="c2", context={"tenure": 1, "plan": "prepaid", "local_hour": 23}
        ),
    )
    assert quiet.suppressed_reason == "quiet_hours"
    assert quiet.action is None


def test_duplicate_experiment_is_a_conflict(decisions: DecisionEngine) -> None:
    with pytest.raises(ConflictError):
        decisions.create_experiment(spec_dict())
    with pytest.raises(InvalidInputError) as error:
        decisions.create_experiment(spec_dict(key="Bad Key"))
    assert error.value.field == "key"


def test_decide_many_logs_every_row_and_applies_contact_limits_within_the_batch(
    engine: Engine, clock: ManualClock
) -> None:
    core = DecisionEngine(Database(engine), clock=clock, seed=3)
    core.create_experiment(spec_dict(contact={"max_decisions": 1, "window": "7d"}))
    requests = [
        DecisionRequest(customer_id=customer, context={"tenure": 2, "plan": "postpaid"})
        for customer in ("a", "b", "a", "c")
    ]
    results = core.decide_many("promo", requests)
    assert [result.suppressed_reason for result in results] == [None, None, "contact_limit", None]
    assert [result.group for result in results] == [
        assign_group("promo", customer, 0.2) for customer in ("a", "b", "a", "c")
    ]
    with Session(engine) as session:
        assert len(session.exec(select(models.Decision)).all()) == 4
    with pytest.raises(InvalidInputError) as error:
        core.decide_many(
            "promo", [DecisionRequest(customer_id="d", context={"tenure": "x", "plan": "prepaid"})]
        )
    assert error.value.field == "contexts[0].tenure"
