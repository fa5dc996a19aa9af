"""Customer state and sequential credit through the engine: the state each decision logs, the
transitions the learner builds from the log, and one learning step of ``fitted_q`` against a
fitted-Q step computed by hand (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from database_support import stored_decision
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.engine.customer_state import contact_features
from experiments.engine.learner import Learner
from experiments.engine.transitions import LinkKind, link
from experiments.spec import SpecError, parse_spec
from experiments.spec.state import STATE_KEY
from experiments.store import models
from experiments.store.database import Database
from experiments.store.rewards import LearningRow, reward_rows
from experiments.store.served import ContactRow, NextDecision
from experiments.store.snapshots import latest_snapshot, unpack_state

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def spec_dict(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "key": "seq",
        "factors": {"message": ["calm", "urgent"], "channel": ["sms", "email"]},
        "context": {"spend": {"type": "numeric", "min": 0}},
        "policy": {
            "name": "fitted_q",
            "params": {"gamma": 0.5, "n_iterations": 3, "ridge": 1.0, "noise_variance": 2.0},
        },
        "reward": {"kind": "sum", "event": "revenue", "window": "2d"},
        "holdout": {"share": 0.0},
        "state": {"contact_half_life": "7d", "lookback": "28d", "horizon": "5d"},
    }
    spec.update(overrides)
    return spec


# ----------------------------------------------------------------------------- the spec
def test_state_section_widens_what_policies_see() -> None:
    spec = parse_spec(spec_dict())
    assert spec.n_context == 1
    assert spec.state_feature_names == [
        "contacts[message=calm]",
        "contacts[message=urgent]",
        "contacts[channel=sms]",
        "contacts[channel=email]",
        "days_since_contact",
    ]
    assert spec.n_features == 6
    assert spec.build_policy().n_context == spec.build_holdout_policy().n_context == 6
    logged = {"spend": 2.0, STATE_KEY: [0.25, 0.5, 0.75, 0.0, 7.0]}
    assert spec.encode_logged([logged]).tolist() == [[2.0, 0.25, 0.5, 0.75, 0.0, 7.0]]
    with pytest.raises(SpecError, match=r"contexts\[0\]\.@state: required field is missing"):
        spec.encode_logged([{"spend": 2.0}])
    with pytest.raises(SpecError, match=r"contexts\[0\]\.@state: must be a list of 5 numbers"):
        spec.encode_logged([{"spend": 2.0, STATE_KEY: [1.0]}])


def test_state_round_trips_and_is_left_out_when_unused() -> None:
    spec = parse_spec(spec_dict())
    data = spec.to_json_dict()
    assert data["state"]["contact_half_life"] == 7 * 86_400
    assert parse_spec(data) == spec
    plain = {key: value for key, value in spec_dict().items() if key != "state"}
    plain["policy"] = {"name": "linear_ts", "params": {}}
    assert "state" not in parse_spec(plain).to_json_dict()
    assert "surrogate" not in parse_spec(plain).to_json_dict()["reward"]


def test_state_without_half_life_adds_nothing() -> None:
    spec = parse_spec(spec_dict(state={"horizon": "3d"}))
    assert spec.n_features == spec.n_context == 1
    assert spec.encode_logged([{"spend": 1.0}]).tolist() == [[1.0]]


def test_bad_state_sections_are_refused_by_name() -> None:
    with pytest.raises(
        SpecError, match=r"^state\.lookback: must be at least the longest contact_half_life"
    ):
        parse_spec(spec_dict(state={"contact_half_life": "14d", "lookback": "7d"}))
    with pytest.raises(
        SpecError, match=r"^state\.lookback: must be at least the longest contact_half_life"
    ):
        parse_spec(spec_dict(state={"contact_half_life": ["1d", "14d"], "lookback": "7d"}))
    with pytest.raises(SpecError, match=r"^state\.contact_half_life: must list distinct"):
        parse_spec(spec_dict(state={"contact_half_life": ["7d", "7d"]}))
    for count in (0, 5):
        with pytest.raises(SpecError, match=r"^state\.contact_half_life: must be a duration or"):
            parse_spec(spec_dict(state={"contact_half_life": ["1d"] * count}))
    with pytest.raises(SpecError, match=r"^state\.half_life: unknown field"):
        parse_spec(spec_dict(state={"half_life": "7d"}))


def test_two_half_lives_give_two_blocks_of_counts() -> None:
    spec = parse_spec(spec_dict(state={"contact_half_life": ["7d", "14d"], "lookback": "28d"}))
    assert spec.state_feature_names == [
        "7d:contacts[message=calm]",
        "7d:contacts[message=urgent]",
        "7d:contacts[channel=sms]",
        "7d:contacts[channel=email]",
        "14d:contacts[message=calm]",
        "14d:contacts[message=urgent]",
        "14d:contacts[channel=sms]",
        "14d:contacts[channel=email]",
        "days_since_contact",
    ]
    assert parse_spec(spec.to_json_dict()) == spec


def test_a_policy_that_reads_the_contact_state_needs_one() -> None:
    lookahead = {"name": "lookahead_ts", "params": {}}
    with pytest.raises(SpecError, match=r"^state\.contact_half_life: policy 'lookahead_ts'"):
        parse_spec(spec_dict(policy=lookahead, state=None))
    with pytest.raises(SpecError, match=r"^state\.contact_half_life: policy 'lookahead_ts'"):
        parse_spec(spec_dict(policy=lookahead, state={"horizon": "3d"}))
    spec = parse_spec(
        spec_dict(policy=lookahead, state={"contact_half_life": ["7d", "14d"], "lookback": "28d"})
    )
    policy = spec.build_policy()
    assert (policy.name, policy.contact_blocks, policy.n_context) == ("lookahead_ts", 2, 10)
    with pytest.raises(SpecError, match=r"^policy\.params\.contact_blocks: is not a hyper"):
        parse_spec(spec_dict(policy={"name": "lookahead_ts", "params": {"contact_blocks": 2}}))


# ----------------------------------------------------------------------------- customer state
def test_contact_features_by_hand() -> None:
    """Half-life 7 days. c1 got (calm, sms) 14 days ago and (urgent, sms) 7 days ago:
    calm 2^-2 = 1/4, urgent 2^-1 = 1/2, sms 1/4 + 1/2 = 3/4, email 0; last contact 7 days ago.
    c2 was never contacted: zeros, and the look-back (28 days) as days since contact."""
    spec = parse_spec(spec_dict())
    space = spec.decision_space()
    now = START
    calm_sms = space.index_of({"message": "calm", "channel": "sms"})
    urgent_sms = space.index_of({"message": "urgent", "channel": "sms"})
    contacts = [
        ContactRow("c1", now - 7 * DAY, urgent_sms),
        ContactRow("c1", now - 14 * DAY, calm_sms),
    ]
    features = contact_features(spec, contacts, ["c2", "c1", "c1"], now)
    np.testing.assert_allclose(
        features,
        np.array([[0, 0, 0, 0, 28], [0.25, 0.5, 0.75, 0, 7], [0.25, 0.5, 0.75, 0, 7]]),
        rtol=0,
        atol=1e-15,
    )


def test_contact_features_with_two_half_lives_by_hand() -> None:
    """As above, plus a 14-day block: calm 2^-1 = 1/2, urgent 2^-1/2, sms their sum."""
    spec = parse_spec(spec_dict(state={"contact_half_life": ["7d", "14d"], "lookback": "28d"}))
    space = spec.decision_space()
    contacts = [
        ContactRow("c1", START - 7 * DAY, space.index_of({"message": "urgent", "channel": "sms"})),
        ContactRow("c1", START - 14 * DAY, space.index_of({"message": "calm", "channel": "sms"})),
    ]
    half = 2**-0.5
    np.testing.assert_allclose(
        contact_features(spec, contacts, ["c1", "c2"], START),
        np.array(
            [
                [0.25, 0.5, 0.75, 0, 0.5, half, 0.5 + half, 0, 7],
                [0, 0, 0, 0, 0, 0, 0, 0, 28],
            ]
        ),
        rtol=0,
        atol=1e-15,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def core(engine: Engine, clock: ManualClock) -> DecisionEngine:
    decisions = DecisionEngine(Database(engine), clock=clock, seed=3)
    decisions.create_experiment(spec_dict())
    return decisions


def decide(core: DecisionEngine, *customers: str, spend: float = 1.0) -> list[Any]:
    return core.decide_many(
        "seq",
        [DecisionRequest(customer_id=c, context={"spend": spend}) for c in customers],
    )


def test_decisions_log_the_state_they_were_chosen_on(
    core: DecisionEngine, engine: Engine, clock: ManualClock
) -> None:
    """c1's first decision sees no contact (days since = look-back, 28); three days later its
    second sees its first action with weight 2^(-3/7) on that action's two levels."""
    (first,) = decide(core, "c1")
    assert stored_decision(engine, first.decision_id).context == {
        "spend": 1.0,
        STATE_KEY: [0.0, 0.0, 0.0, 0.0, 28.0],
    }
    clock.advance(3 * DAY)
    second, other = decide(core, "c1", "c2")
    expected = [0.0, 0.0, 0.0, 0.0, 3.0]
    message = ["calm", "urgent"].index(first.action["message"])
    channel = 2 + ["sms", "email"].index(first.action["channel"])
    expected[message] = expected[channel] = 2.0 ** (-3 / 7)
    state = stored_decision(engine, second.decision_id).context[STATE_KEY]
    np.testing.assert_allclose(state, expected, rtol=1e-15)
    assert stored_decision(engine, other.decision_id).context[STATE_KEY] == [0.0] * 4 + [28.0]


def test_state_costs_one_query_per_batch(core: DecisionEngine, engine: Engine) -> None:
    """The decision table is read as often for 40 customers as for 4."""
    decide(core, *[f"warm{i}" for i in range(40)])

    def reads(customers: list[str]) -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            statement = str(args[2])
            if statement.lstrip().upper().startswith("SELECT") and "FROM decision" in statement:
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            decide(core, *customers)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    assert reads([f"warm{i}" for i in range(4)]) == reads([f"warm{i}" for i in range(40)])


# ----------------------------------------------------------------------------- transitions
def row(decision_id: str, customer: str, day: float) -> LearningRow:
    return LearningRow(
        decision_id=decision_id,
        value=1.0,
        computed_at=START + day * DAY,
        context={},
        action_index=0,
        propensity=0.25,
        group="treatment",
        policy_version=0,
        customer_id=customer,
        created_at=START + day * DAY,
    )


def later(decision_id: str, customer: str, day: float) -> NextDecision:
    return NextDecision(decision_id, customer, START + day * DAY, {}, [])


def test_link_by_hand() -> None:
    """Horizon 28 days, now = day 45.

    ====  ========  ===  ==========================================================
    row   customer  day  successor
    ====  ========  ===  ==========================================================
    d1    A         0    d2 (day 3): the next decision of A, within 28 days
    d2    A         3    done: A's next decision (d3, day 40) is 37 days later
    d3    A         40   wait: no next decision yet, horizon open until day 68
    d4    B         1    done: B churned (even though B decided again on day 2)
    d5    C         20   wait: nothing yet, horizon open until day 48
    d6    D         10   done: nothing by day 38, the horizon has passed
    ====  ========  ===  ==========================================================
    """
    rows = [
        row("d1", "A", 0),
        row("d2", "A", 3),
        row("d3", "A", 40),
        row("d4", "B", 1),
        row("d5", "C", 20),
        row("d6", "D", 10),
    ]
    following = [
        later("d3", "A", 40),
        later("d2", "A", 3),
        later("d7", "B", 2),
        later("d1", "A", 0),
    ]
    links = link(rows, following, {"d4"}, now=START + 45 * DAY, horizon=timedelta(days=28))
    assert [(item.kind, item.next.id if item.next else None) for item in links] == [
        (LinkKind.NEXT, "d2"),
        (LinkKind.DONE, None),
        (LinkKind.WAIT, None),
        (LinkKind.DONE, None),
        (LinkKind.WAIT, None),
        (LinkKind.DONE, None),
    ]


def design(spec: Any, x: np.ndarray, action: int) -> np.ndarray:
    """phi(x, a): z = [1, x] in the slot of each of the action's levels (message, channel)."""
    space = spec.decision_space()
    levels = space.levels_of(action)
    slots = [
        ["calm", "urgent"].index(levels["message"]),
        2 + ["sms", "email"].index(levels["channel"]),
    ]
    z = np.concatenate([[1.0], x])
    phi = np.zeros((4, z.size))
    for slot in slots:
        phi[slot] = z
    return phi.ravel()


def test_engine_learning_step_equals_a_fitted_q_step_by_hand(
    core: DecisionEngine, engine: Engine, clock: ManualClock
) -> None:
    """Day 0: c1, c2, c3 decide. c1 buys for 5 on day 1; c2 churns on day 1.5. Day 3: c1
    decides again; the 2-day windows of day 0 have closed.

    Learning on day 3 (horizon 5 days): c1's first decision leads to its second (s' is that
    decision's logged context); c2's is terminal (churned); c3's waits (no next decision,
    horizon open until day 5) and stays unlearned. With gamma 0.5, ridge 1, noise 2 and
    3 iterations from w_0 = 0:

        y_i     = r_i + gamma (1 - done_i) max_a' phi(s'_i, a') . w_k
        w_{k+1} = (Phi^T Phi + ridge noise I)^-1 Phi^T y

    On day 6 c3's horizon has passed: it is learned as terminal; c1's second decision waits.
    """
    day0 = decide(core, "c1", "c2", "c3", spend=2.0)
    ids = {result.decision_id: customer for result, customer in zip(day0, "123", strict=True)}
    core.record(
        [
            OutcomeInput("o1", "revenue", 5.0, START + DAY, decision_id=day0[0].decision_id),
            OutcomeInput("o2", "churn", 1.0, START + 1.5 * DAY, decision_id=day0[1].decision_id),
        ]
    )
    clock.set(START + 3 * DAY)
    (again,) = decide(core, "c1", spend=4.0)
    assert core.join_rewards("seq") == 3
    assert core.learn("seq") == 1

    spec = parse_spec(spec_dict())
    with Session(engine) as session:
        rows = reward_rows(session, experiment_key="seq")
        snapshot = latest_snapshot(session, experiment_key="seq")
        marks = dict(
            session.exec(select(models.Reward.decision_id, models.Reward.learned_version)).all()
        )
    assert {r.decision_id for r in rows} == set(ids)
    assert marks == {day0[0].decision_id: 1, day0[1].decision_id: 1, day0[2].decision_id: None}
    by_id = {r.decision_id: r for r in rows}
    first, churned = by_id[day0[0].decision_id], by_id[day0[1].decision_id]
    assert (first.value, churned.value) == (5.0, 0.0)
    assert first.propensity is not None
    assert churned.propensity is not None

    X = spec.encode_logged([first.context, churned.context])
    X_next = spec.encode_logged([stored_decision(engine, again.decision_id).context])[0]
    Phi = np.array(
        [design(spec, X[0], first.action_index), design(spec, X[1], churned.action_index)]
    )
    rewards = np.array([5.0, 0.0])
    next_rows = np.array([design(spec, X_next, action) for action in range(4)])
    system = Phi.T @ Phi + 1.0 * 2.0 * np.eye(Phi.shape[1])
    w = np.zeros(Phi.shape[1])
    for _ in range(3):
        targets = rewards + np.array([0.5 * (next_rows @ w).max(), 0.0])
        w = np.linalg.solve(system, Phi.T @ targets)
    assert np.abs(w).max() > 0.01  # far from zero: the comparison below is not vacuous
    assert snapshot is not None
    state = unpack_state(snapshot.state)
    np.testing.assert_allclose(state["mean"], w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state["cov"], 2.0 * np.linalg.inv(system), rtol=1e-10)

    clock.set(START + 6 * DAY)
    core.join_rewards("seq")
    assert core.learn("seq") == 2
    with Session(engine) as session:
        marks = dict(
            session.exec(select(models.Reward.decision_id, models.Reward.learned_version)).all()
        )
    assert marks[day0[2].decision_id] == 2
    assert marks[again.decision_id] is None


def test_learner_counts_waiting_rewards_once(engine: Engine, clock: ManualClock) -> None:
    """Batch size 2. Four rewards wait for their customers' next decisions: the learner tries
    once, then waits for 2 new rewards (or its interval) before trying again."""
    core = DecisionEngine(Database(engine), clock=clock, seed=3)
    core.create_experiment(spec_dict(learner={"batch_size": 2, "interval_seconds": 3600}))
    calls: list[int | None] = []
    learn = core.learn

    def counted(key: str, *, limit: int = 100_000) -> int | None:
        calls.append(learn(key, limit=limit))
        return calls[-1]

    core.learn = counted  # type: ignore[method-assign]
    learner = Learner(core)
    decide(core, "c1", "c2", "c3", "c4")
    clock.advance(2 * DAY + timedelta(hours=1))
    assert learner.run_once() == []
    assert learner.run_once() == []
    assert calls == [None]
    decide(core, "c5", "c6")
    clock.advance(2 * DAY + timedelta(hours=1))
    assert learner.run_once() == []
    assert calls == [None, None]
    learner.stop()
