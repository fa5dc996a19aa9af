"""``[state] centred``: the level marginals each decision logs, the expected counts read back
from them, the column layout, and the spec's refusals (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from database_support import stored_decision
from sqlalchemy import Engine
from sqlmodel import Session

from bandit.policies.lookahead_ts import LookaheadTSPolicy
from experiments.engine import DecisionEngine, DecisionRequest
from experiments.engine.clock import ManualClock
from experiments.engine.customer_state import contact_features
from experiments.spec import SpecError, parse_spec
from experiments.spec.state import LEVELS_KEY, STATE_KEY
from experiments.store.database import Database
from experiments.store.served import ContactRow, customer_contacts

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def spec_dict(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "key": "centred",
        "factors": {"message": ["calm", "urgent"], "channel": ["sms", "email"]},
        "context": {"spend": {"type": "numeric", "min": 0}},
        "policy": {"name": "lookahead_ts", "params": {"ridge": 1.0, "state_effects": "pooled"}},
        "reward": {"kind": "event", "event": "click", "window": "1d"},
        "holdout": {"share": 0.0},
        "state": {"contact_half_life": "7d", "lookback": "28d", "centred": True},
    }
    spec.update(overrides)
    return spec


# ----------------------------------------------------------------------------- the spec
def test_centred_state_lays_out_counts_then_expected_counts_then_days() -> None:
    spec = parse_spec(spec_dict())
    assert spec.state_feature_names == [
        "contacts[message=calm]",
        "contacts[message=urgent]",
        "contacts[channel=sms]",
        "contacts[channel=email]",
        "expected[message=calm]",
        "expected[message=urgent]",
        "expected[channel=sms]",
        "expected[channel=email]",
        "days_since_contact",
    ]
    policy = spec.build_policy()
    assert (policy.n_context, policy.expected_counts) == (10, True)
    assert parse_spec(spec.to_json_dict()) == spec
    # The logged marginals are not a request field: learning reads the context without them.
    logged = {"spend": 2.0, STATE_KEY: [0.5, 0, 0.5, 0, 0.25, 0.25, 0.25, 0.25, 7.0]}
    logged[LEVELS_KEY] = [0.5, 0.5, 0.5, 0.5]
    assert spec.encode_logged([logged]).tolist() == [[2.0, *logged[STATE_KEY]]]


def test_two_half_lives_centred_name_every_block() -> None:
    state = {"contact_half_life": ["7d", "14d"], "lookback": "28d", "centred": True}
    names = parse_spec(spec_dict(state=state)).state_feature_names
    assert names[:4] == [
        f"7d:contacts[{n}]"
        for n in ("message=calm", "message=urgent", "channel=sms", "channel=email")
    ]
    assert names[8:12] == [
        f"7d:expected[{n}]"
        for n in ("message=calm", "message=urgent", "channel=sms", "channel=email")
    ]
    assert names[12:16] == [n.replace("7d", "14d") for n in names[8:12]]
    assert names[-1] == "days_since_contact"
    assert len(names) == 17
    assert parse_spec(spec_dict(state=state)).build_policy().n_context == 18


def test_bad_centred_sections_are_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SpecError, match=r"^state\.centred: centres the decayed contact counts"):
        parse_spec(spec_dict(policy={"name": "linear_ts", "params": {}}, state={"centred": True}))
    with pytest.raises(SpecError, match=r"^state\.centred: must be a valid boolean"):
        parse_spec(spec_dict(state={"contact_half_life": "7d", "centred": "yes"}))
    # A policy that reads the counts at the end of its context but not the expected counts
    # after them would misread the columns: refused.
    monkeypatch.setattr(LookaheadTSPolicy, "reads_expected_counts", False)
    with pytest.raises(SpecError, match=r"^state\.centred: policy 'lookahead_ts' reads the"):
        parse_spec(spec_dict())
    monkeypatch.undo()
    with pytest.raises(SpecError, match=r"^policy\.params\.expected_counts: is not a hyper"):
        parse_spec(spec_dict(policy={"name": "lookahead_ts", "params": {"expected_counts": True}}))
    # A policy that reads no contact state sees the columns as context, centred or not.
    plain = parse_spec(spec_dict(policy={"name": "linear_ts", "params": {}}))
    assert plain.build_policy().n_context == 10


# ----------------------------------------------------------------------------- by hand
def test_expected_counts_by_hand() -> None:
    """Half-life 7 days. c1 got (calm, sms) 14 days ago, drawn with marginals
    calm 0.2, urgent 0.8, sms 0.6, email 0.4, and (urgent, sms) 7 days ago with calm 0.5,
    urgent 0.5, sms 0.9, email 0.1:

        c = [1/4, 1/2, 1/4 + 1/2, 0] = [0.25, 0.5, 0.75, 0]
        E = 1/4 [0.2, 0.8, 0.6, 0.4] + 1/2 [0.5, 0.5, 0.9, 0.1]
          = [0.05 + 0.25, 0.2 + 0.25, 0.15 + 0.45, 0.1 + 0.05] = [0.3, 0.45, 0.6, 0.15]

    so R = c - E = [-0.05, 0.05, 0.15, -0.15]. c2's only contact, (urgent, email) 1 day ago,
    was logged without marginals: it counts as fully expected, E = c = 2^(-1/7) on urgent and
    email. c3 was never contacted."""
    spec = parse_spec(spec_dict())
    space = spec.decision_space()
    calm_sms = space.index_of({"message": "calm", "channel": "sms"})
    urgent_sms = space.index_of({"message": "urgent", "channel": "sms"})
    urgent_email = space.index_of({"message": "urgent", "channel": "email"})
    contacts = [
        ContactRow("c1", START - 7 * DAY, urgent_sms, [0.5, 0.5, 0.9, 0.1]),
        ContactRow("c1", START - 14 * DAY, calm_sms, [0.2, 0.8, 0.6, 0.4]),
        ContactRow("c2", START - DAY, urgent_email),
    ]
    w = 2 ** (-1 / 7)
    np.testing.assert_allclose(
        contact_features(spec, contacts, ["c1", "c2", "c3"], START),
        np.array(
            [
                [0.25, 0.5, 0.75, 0, 0.3, 0.45, 0.6, 0.15, 7],
                [0, w, 0, w, 0, w, 0, w, 1],
                [0, 0, 0, 0, 0, 0, 0, 0, 28],
            ]
        ),
        rtol=0,
        atol=1e-15,
    )


# ----------------------------------------------------------------------------- the engine
@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def core(engine: Engine, clock: ManualClock) -> DecisionEngine:
    decisions = DecisionEngine(Database(engine), clock=clock, seed=3)
    decisions.create_experiment(spec_dict(holdout={"share": 0.5}))
    return decisions


def test_decisions_log_their_level_marginals_and_read_them_back(
    core: DecisionEngine, engine: Engine, clock: ManualClock
) -> None:
    """Each decision logs the marginals of the law its action was drawn from: the holdout's
    uniform control gives every level 1/2; the treatment's Thompson sampler its own (Monte
    Carlo) law, a distribution per factor that gives the chosen levels a chance of at least
    the action's propensity. Three days later each customer's expected counts are
    2^(-3/7) x the logged marginals, and the counts 2^(-3/7) on the two levels sent."""
    customers = [f"c{i}" for i in range(8)]
    first = core.decide_many("centred", [DecisionRequest(c, {"spend": 1.0}) for c in customers])
    logged = {}
    groups = set()
    for decision in first:
        row = stored_decision(engine, decision.decision_id)
        groups.add(row.group)
        levels = np.array(row.context[LEVELS_KEY])
        logged[decision.decision_id] = levels
        np.testing.assert_allclose([levels[:2].sum(), levels[2:].sum()], [1.0, 1.0], rtol=1e-12)
        chosen = [
            ["calm", "urgent"].index(decision.action["message"]),
            2 + ["sms", "email"].index(decision.action["channel"]),
        ]
        assert (levels[chosen] >= row.propensity - 1e-12).all()
        if row.group == "holdout":
            np.testing.assert_allclose(levels, [0.5] * 4, rtol=1e-12)
    assert groups == {"treatment", "holdout"}
    with Session(engine) as session:
        read = customer_contacts(
            session,
            experiment_key="centred",
            customer_ids=customers,
            since=START - DAY,
            levels_key=LEVELS_KEY,
        )
        plain = customer_contacts(
            session, experiment_key="centred", customer_ids=customers, since=START - DAY
        )
    assert len(read) == len(plain) == 8
    assert all(row.levels is None for row in plain)
    assert sorted(tuple(row.levels) for row in read) == sorted(
        tuple(levels) for levels in logged.values()
    )
    clock.advance(3 * DAY)
    second = core.decide_many("centred", [DecisionRequest(c, {"spend": 1.0}) for c in customers])
    w = 2.0 ** (-3 / 7)
    for before, after in zip(first, second, strict=True):
        state = stored_decision(engine, after.decision_id).context[STATE_KEY]
        counts = np.zeros(4)
        counts[["calm", "urgent"].index(before.action["message"])] = w
        counts[2 + ["sms", "email"].index(before.action["channel"])] = w
        expected = w * logged[before.decision_id]
        np.testing.assert_allclose(state, [*counts, *expected, 3.0], rtol=1e-12)


def test_without_centred_nothing_more_is_logged(engine: Engine, clock: ManualClock) -> None:
    decisions = DecisionEngine(Database(engine), clock=clock, seed=3)
    state = {"contact_half_life": "7d", "lookback": "28d"}
    decisions.create_experiment(spec_dict(state=state))
    (decision,) = decisions.decide_many("centred", [DecisionRequest("c1", {"spend": 1.0})])
    assert set(stored_decision(engine, decision.decision_id).context) == {"spend", STATE_KEY}


def test_unreadable_marginals_count_as_fully_expected() -> None:
    """Marginals of the wrong width, out of [0, 1], or not numbers are not read: the
    contact adds its indicators to E as to c (R = 0), as a contact logged without them."""
    spec = parse_spec(spec_dict())
    action = spec.decision_space().index_of({"message": "urgent", "channel": "email"})
    for bad in ([0.5] * 3, [1.5, 0.0, 0.5, 0.5], ["a", "b", "c", "d"], [True] * 4, "0.5"):
        features = contact_features(spec, [ContactRow("c1", START, action, bad)], ["c1"], START)
        np.testing.assert_array_equal(features, [[0, 1, 0, 1, 0, 1, 0, 1, 0]])
