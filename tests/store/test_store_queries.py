"""Queries on SQLite and PostgreSQL: idempotent inserts, hand-made decision timelines, rewards,
snapshots, leases and API keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, func, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

from experiments.store.api_keys import (
    create_api_key,
    list_api_keys,
    normalize_scopes,
    revoke_api_key,
    verify_api_key,
)
from experiments.store.attribution import (
    decision_heads,
    latest_open_decision,
    latest_open_decisions,
    locks_rows,
)
from experiments.store.decisions import (
    activate_decision,
    count_recent_decisions_by_customer,
    decisions_due_for_reward,
    decisions_with_outcomes_since,
    expired_deferred_decisions,
    find_decision_by_request,
    get_decision,
    insert_decision,
    reward_candidates,
    set_decision_status,
)
from experiments.store.errors import (
    DuplicateError,
    DuplicateRequestError,
    NotFoundError,
    SnapshotVersionError,
)
from experiments.store.experiments import (
    create_experiment,
    get_experiment,
    list_experiments,
    require_experiment,
    update_experiment,
)
from experiments.store.key_hashing import API_KEY_PREFIX
from experiments.store.leases import acquire_lease, release_lease
from experiments.store.models import (
    ApiKey,
    Decision,
    Experiment,
    LearnerLease,
    Outcome,
    PolicySnapshot,
    Reward,
)
from experiments.store.outcomes import (
    customer_event_times,
    decision_outcomes,
    insert_outcomes,
    outcomes_for_decisions,
)
from experiments.store.rewards import (
    count_rewards,
    count_unlearned_rewards,
    insert_rewards,
    mark_rewards_learned,
    reward_decision_ids,
    reward_rows_of,
    unlearned_rewards,
)
from experiments.store.served import served_decisions_between
from experiments.store.snapshots import insert_snapshot, latest_snapshot, latest_snapshot_version

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def add_experiment(session: Session, key: str = "exp") -> Experiment:
    experiment = create_experiment(
        session,
        experiment=Experiment(
            key=key, spec={"key": key}, status="running", created_at=T0, updated_at=T0
        ),
    )
    session.commit()
    return experiment


def make_decision(
    customer: str = "c1", at: datetime = T0, experiment: str = "exp", **fields: Any
) -> Decision:
    values: dict[str, Any] = {
        "experiment_key": experiment,
        "customer_id": customer,
        "created_at": at,
        "context": {"age": 30},
        "eligible_count": 4,
        "action_index": 1,
        "action": {"offer": "bundle", "channel": "sms"},
        "propensity": 0.25,
        "window_closes_at": at + 14 * DAY,
    }
    values.update(fields)
    return Decision(**values)


def add_decisions(session: Session, *decisions: Decision) -> list[Decision]:
    stored = [insert_decision(session, decision=d) for d in decisions]
    session.commit()
    return stored


def outcome(outcome_id: str, decision_id: str | None = None, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "outcome_id": outcome_id,
        "decision_id": decision_id,
        "experiment_key": "exp",
        "event": "purchase",
        "value": 1.0,
        "occurred_at": T0 + DAY,
        "received_at": T0 + DAY,
    }
    values.update(fields)
    return values


# ------------------------------------------------------------------------------------ experiments


def test_experiment_create_get_list_and_duplicate(session: Session) -> None:
    add_experiment(session, "b")
    add_experiment(session, "a")
    with pytest.raises(DuplicateError, match="'a' already exists"):
        create_experiment(session, experiment=Experiment(key="a"))
    # The duplicate did not poison the transaction.
    assert [e.key for e in list_experiments(session)] == ["a", "b"]
    assert get_experiment(session, key="a") is not None
    assert get_experiment(session, key="zz") is None
    with pytest.raises(NotFoundError):
        require_experiment(session, key="zz")


def test_experiment_status_and_updates(session: Session) -> None:
    add_experiment(session)
    later = T0 + DAY
    require_experiment(session, key="exp").status = "paused"
    update_experiment(session, key="exp", exploration_floor=0.05, apprentice=True, now=later)
    session.commit()
    session.expire_all()
    stored = require_experiment(session, key="exp")
    assert (stored.status, stored.exploration_floor, stored.apprentice) == ("paused", 0.05, True)
    assert stored.updated_at == later
    assert stored.created_at == T0
    assert [e.key for e in list_experiments(session, status="paused")] == ["exp"]
    assert list_experiments(session, status="running") == []
    with pytest.raises(
        ValueError, match=re.escape("one of draft|running|paused|stopped. Got 'finished'")
    ):
        list_experiments(session, status="finished")
    with pytest.raises(NotFoundError):
        update_experiment(session, key="nope", apprentice=True)


# ------------------------------------------------------------------------------------ decisions


def test_decision_round_trip(session: Session) -> None:
    add_experiment(session)
    decision = make_decision(excluded=[{"offer": "x"}], request_id="r1")
    (stored,) = add_decisions(session, decision)
    assert stored is decision
    assert len(decision.id) == 32
    int(decision.id, 16)
    session.expire_all()
    loaded = get_decision(session, decision_id=decision.id)
    assert loaded is not None
    assert loaded.context == {"age": 30}
    assert loaded.action == {"offer": "bundle", "channel": "sms"}
    assert loaded.excluded == [{"offer": "x"}]
    assert (loaded.group, loaded.status, loaded.deferred) == ("treatment", "open", False)
    assert loaded.created_at == T0
    # The stored instance is persistent: an attribute change is flushed.
    loaded.status = "rewarded"
    session.commit()
    session.expire_all()
    assert get_decision(session, decision_id=decision.id).status == "rewarded"  # type: ignore[union-attr]
    assert decision_heads(session, decision_ids=[decision.id, "missing", decision.id]) == {
        decision.id: (
            decision.id,
            "exp",
            "c1",
            "rewarded",
            loaded.window_closes_at,
            loaded.activated_at,
        )
    }


def test_share_locked_heads_hold_their_rows_until_the_transaction_ends(
    session: Session, engine: Engine
) -> None:
    """PostgreSQL: a reward join's ``FOR UPDATE`` cannot take the rows while the outcome's
    transaction holds them (another share lock can); SQLite has no row locks and reads alike."""
    add_experiment(session)
    first, second = add_decisions(session, make_decision("c1"), make_decision("c2"))
    heads = decision_heads(session, decision_ids=[second.id, first.id, "missing"], share_lock=True)
    assert {id_: head.status for id_, head in heads.items()} == {
        first.id: "open",
        second.id: "open",
    }
    assert locks_rows(session) == (engine.dialect.name == "postgresql")
    if locks_rows(session):
        lock = "SELECT id FROM decision WHERE id = :id FOR {} NOWAIT"
        with engine.connect() as other:
            other.execute(text(lock.format("SHARE")), {"id": first.id})
            with pytest.raises(OperationalError, match="could not obtain lock"):
                other.execute(text(lock.format("UPDATE")), {"id": first.id})
            other.rollback()
            session.commit()
            other.execute(text(lock.format("UPDATE")), {"id": first.id})
            other.rollback()
    session.commit()


def test_suppressed_decision_stores_null_action(session: Session) -> None:
    add_experiment(session)
    decision = make_decision(
        action_index=None,
        action=None,
        propensity=None,
        status="suppressed",
        suppressed_reason="contact_limit",
    )
    add_decisions(session, decision)
    raw = session.exec(  # type: ignore[call-overload]
        text("SELECT action IS NULL, propensity IS NULL FROM decision")
    ).one()
    assert tuple(bool(v) for v in raw) == (True, True)


def test_request_id_is_unique_per_experiment(session: Session) -> None:
    add_experiment(session, "exp")
    add_experiment(session, "other")
    first = add_decisions(session, make_decision(request_id="req-1"))[0]
    retry = make_decision(request_id="req-1", action_index=3)
    with pytest.raises(DuplicateRequestError, match="'req-1'") as info:
        insert_decision(session, decision=retry)
    assert info.value.existing.id == first.id != retry.id
    assert info.value.existing.action_index == 1
    assert isinstance(info.value, DuplicateError)
    session.commit()  # the transaction survived the conflict
    assert find_decision_by_request(session, experiment_key="exp", request_id="req-1") == first
    assert find_decision_by_request(session, experiment_key="exp", request_id="nope") is None
    # Same request id in another experiment, and several decisions without one: all stored.
    add_decisions(
        session,
        make_decision(request_id="req-1", experiment="other"),
        make_decision(),
        make_decision(),
    )
    assert session.exec(select(func.count()).select_from(Decision)).one() == 4
    # The database itself enforces it, not only the query.
    session.add(make_decision(request_id="req-1"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_decision_needs_an_existing_experiment(session: Session) -> None:
    with pytest.raises(IntegrityError):
        insert_decision(session, decision=make_decision(experiment="ghost"))
    session.rollback()


def test_contact_count_on_a_timeline(session: Session) -> None:
    """c1 gets decisions at T0, T0+1d, T0+2d (suppressed), T0+5d; c2 one at T0+1d; c1 one in
    another experiment at T0+1d. Counts are inclusive of ``since`` and skip suppressed ones."""
    add_experiment(session, "exp")
    add_experiment(session, "other")
    add_decisions(
        session,
        make_decision("c1", T0),
        make_decision("c1", T0 + DAY),
        make_decision("c1", T0 + 2 * DAY, status="suppressed", action_index=None, action=None),
        make_decision("c1", T0 + 5 * DAY),
        make_decision("c2", T0 + DAY),
        make_decision("c1", T0 + DAY, experiment="other"),
    )

    def count(customer: str, since: datetime, experiment: str = "exp") -> int:
        counts = count_recent_decisions_by_customer(
            session, experiment_key=experiment, customer_ids=[customer], since=since
        )
        return counts.get(customer, 0)

    assert count("c1", T0 - DAY) == 3
    assert count("c1", T0) == 3
    assert count("c1", T0 + timedelta(seconds=1)) == 2
    assert count("c1", T0 + DAY) == 2
    assert count("c1", T0 + 2 * DAY) == 1
    assert count("c1", T0 + 6 * DAY) == 0
    assert count("c2", T0) == 1
    assert count("c1", T0, "other") == 1
    assert count("nobody", T0) == 0
    # An aware datetime in another zone is the same instant.
    plus_nine = T0.astimezone(timezone(timedelta(hours=9)))
    assert count("c1", plus_nine + timedelta(seconds=1)) == 2


def test_latest_open_decision_on_a_timeline(session: Session) -> None:
    """c1: T0 rewarded, T0+1d open, T0+2d deferred (not yet activated), T0+3d open; c2: T0+2d."""
    add_experiment(session)
    rewarded, day1, deferred, day3, _ = add_decisions(
        session,
        make_decision("c1", T0, status="rewarded"),
        make_decision("c1", T0 + DAY),
        make_decision("c1", T0 + 2 * DAY, deferred=True, window_closes_at=None),
        make_decision("c1", T0 + 3 * DAY),
        make_decision("c2", T0 + 2 * DAY),
    )

    def latest(before: datetime, **kw: Any) -> str | None:
        found = latest_open_decision(
            session, experiment_key="exp", customer_id="c1", before=before, **kw
        )
        return None if found is None else found.id

    assert latest(T0 - timedelta(seconds=1)) is None
    assert latest(T0 + timedelta(hours=12)) is None  # only the rewarded one exists then
    assert latest(T0 + DAY) == day1.id  # inclusive
    assert latest(T0 + 2.5 * DAY) == day1.id  # the deferred one was never shown
    assert latest(T0 + 2.5 * DAY, include_unactivated=True) == deferred.id
    assert latest(T0 + 4 * DAY) == day3.id
    assert rewarded.id not in {latest(T0 + k * DAY) for k in range(6)}

    assert activate_decision(
        session,
        decision_id=deferred.id,
        activated_at=T0 + 2 * DAY + timedelta(hours=1),
        window_closes_at=T0 + 16 * DAY,
    )
    session.commit()
    assert latest(T0 + 2 * DAY + timedelta(minutes=30)) == day1.id  # not shown yet then
    assert latest(T0 + 2.5 * DAY) == deferred.id


def test_many_look_ups_at_once_find_what_each_finds_alone(session: Session) -> None:
    """Two customers, look-ups at several times (one before any decision, two at the same
    time, one in another time zone), in one call: each gets the decision the timeline says."""
    add_experiment(session)
    c1_day0, c1_day1, c2_day2, _ = add_decisions(
        session,
        make_decision("c1", T0),
        make_decision("c1", T0 + DAY),
        make_decision("c2", T0 + 2 * DAY),
        make_decision("c2", T0 + 5 * DAY, status="rewarded"),
    )
    tokyo = timezone(timedelta(hours=9))
    lookups = [
        ("c1", T0 - timedelta(seconds=1)),
        ("c1", T0 + timedelta(hours=3)),
        ("c1", (T0 + DAY).astimezone(tokyo)),
        ("c2", T0 + DAY),
        ("c2", T0 + 6 * DAY),
        ("c3", T0 + 6 * DAY),
    ]
    found = latest_open_decisions(session, experiment_key="exp", lookups=lookups)
    assert {key: head.id for key, head in found.items()} == {
        ("c1", T0 + timedelta(hours=3)): c1_day0.id,
        ("c1", T0 + DAY): c1_day1.id,
        ("c2", T0 + 6 * DAY): c2_day2.id,
    }
    assert latest_open_decisions(session, experiment_key="exp", lookups=[]) == {}
    assert latest_open_decisions(session, experiment_key="other", lookups=lookups) == {}


def test_activation_happens_once_and_only_for_deferred(session: Session) -> None:
    add_experiment(session)
    deferred, plain = add_decisions(
        session, make_decision(deferred=True, window_closes_at=None), make_decision()
    )
    at = T0 + timedelta(hours=2)
    assert activate_decision(
        session, decision_id=deferred.id, activated_at=at, window_closes_at=at + 14 * DAY
    )
    assert not activate_decision(
        session, decision_id=deferred.id, activated_at=at + DAY, window_closes_at=at + 15 * DAY
    )
    assert not activate_decision(
        session, decision_id=plain.id, activated_at=at, window_closes_at=at + DAY
    )
    assert not activate_decision(
        session, decision_id="0" * 32, activated_at=at, window_closes_at=at + DAY
    )
    session.commit()
    session.expire_all()
    stored = get_decision(session, decision_id=deferred.id)
    assert stored is not None
    assert (stored.activated_at, stored.window_closes_at) == (at, at + 14 * DAY)


def test_decisions_due_for_reward_and_expired_deferred(session: Session) -> None:
    add_experiment(session)
    due_early, due_late, not_due, rewarded, unactivated, activated = add_decisions(
        session,
        make_decision("a", T0, window_closes_at=T0 + 7 * DAY),
        make_decision("b", T0, window_closes_at=T0 + 10 * DAY),
        make_decision("c", T0, window_closes_at=T0 + 30 * DAY),
        make_decision("d", T0, window_closes_at=T0 + DAY, status="rewarded"),
        make_decision("e", T0, deferred=True, window_closes_at=None),
        make_decision("f", T0, deferred=True, window_closes_at=None),
    )
    activate_decision(
        session, decision_id=activated.id, activated_at=T0 + DAY, window_closes_at=T0 + 8 * DAY
    )
    session.commit()

    def due(now: datetime, limit: int = 100) -> list[str]:
        found = decisions_due_for_reward(session, experiment_key="exp", now=now, limit=limit)
        return [d.id for d in found]

    assert due(T0 + 6 * DAY) == []
    assert due(T0 + 7 * DAY) == [due_early.id]
    assert due(T0 + 10 * DAY) == [due_early.id, activated.id, due_late.id]
    # The join's light rows: the same decisions in the same order, context only when asked.
    light = reward_candidates(
        session, experiment_key="exp", now=T0 + 10 * DAY, fresh_since=None, with_context=False
    )
    assert [(row.id, row.activated_at, row.context) for row in light] == [
        (due_early.id, due_early.activated_at, None),
        (activated.id, T0 + DAY, None),
        (due_late.id, due_late.activated_at, None),
    ]
    with_context = reward_candidates(
        session, experiment_key="exp", now=T0 + 10 * DAY, fresh_since=None, with_context=True
    )
    assert [row.context for row in with_context] == [
        due_early.context,
        activated.context,
        due_late.context,
    ]
    assert due(T0 + 10 * DAY, limit=2) == [due_early.id, activated.id]
    assert not_due.id not in due(T0 + 29 * DAY)
    assert rewarded.id not in due(T0 + 99 * DAY)

    expired = expired_deferred_decisions(session, experiment_key="exp", created_before=T0 + DAY)
    assert [d.id for d in expired] == [unactivated.id]
    assert expired_deferred_decisions(session, experiment_key="exp", created_before=T0) == []
    assert set_decision_status(session, decision_ids=[unactivated.id], status="never_activated")
    # Only open decisions change by default.
    assert set_decision_status(session, decision_ids=[rewarded.id], status="open") == 0
    session.commit()
    assert expired_deferred_decisions(session, experiment_key="exp", created_before=T0 + DAY) == []
    with pytest.raises(ValueError, match="status"):
        set_decision_status(session, decision_ids=[due_early.id], status="gone")


# ------------------------------------------------------------------------------------ outcomes


def get_outcome(session: Session, *, outcome_id: str) -> Outcome | None:
    return session.exec(select(Outcome).where(Outcome.outcome_id == outcome_id)).first()


def test_outcomes_are_idempotent_by_outcome_id(session: Session) -> None:
    add_experiment(session)
    (decision,) = add_decisions(session, make_decision())
    first = insert_outcomes(session, outcomes=[outcome("o1", decision.id), outcome("o2")])
    assert (first.accepted, first.duplicates) == (2, 0)
    again = insert_outcomes(session, outcomes=[outcome("o1", decision.id, value=99.0)])
    accepted, duplicates = again  # unpacks like a pair
    assert (accepted, duplicates) == (0, 1)
    session.commit()
    mixed = insert_outcomes(session, outcomes=[outcome("o1"), Outcome(**outcome("o3"))])
    assert (mixed.accepted, mixed.duplicates) == (1, 1)
    assert get_outcome(session, outcome_id="o3") is not None
    # Within one batch the first occurrence wins.
    batch = insert_outcomes(session, outcomes=[outcome("o4", value=4.0), outcome("o4", value=5.0)])
    assert (batch.accepted, batch.duplicates) == (1, 1)
    session.commit()
    assert session.exec(select(func.count()).select_from(Outcome)).one() == 4
    assert get_outcome(session, outcome_id="o1").value == 1.0  # type: ignore[union-attr]
    assert get_outcome(session, outcome_id="o4").value == 4.0  # type: ignore[union-attr]
    assert insert_outcomes(session, outcomes=[]).accepted == 0


def test_outcome_mappings_are_checked(session: Session) -> None:
    incomplete = outcome("o1")
    del incomplete["event"]
    with pytest.raises(ValueError, match="'event' field of Outcome is required"):
        insert_outcomes(session, outcomes=[incomplete])
    with pytest.raises(ValueError, match="no field"):
        insert_outcomes(session, outcomes=[outcome("o1", colour="red")])
    minimal = {"outcome_id": "o2", "event": "click", "occurred_at": T0}
    assert insert_outcomes(session, outcomes=[minimal]).accepted == 1
    stored = get_outcome(session, outcome_id="o2")
    assert stored is not None
    assert (stored.value, stored.attribution, stored.decision_id) == (1.0, "attributed", None)
    assert stored.received_at.tzinfo == UTC


def test_large_outcome_batch_is_chunked(session: Session) -> None:
    rows = [outcome(f"o{i}", value=float(i)) for i in range(1_234)]
    assert insert_outcomes(session, outcomes=rows).accepted == 1_234
    result = insert_outcomes(session, outcomes=[*rows[::-1], outcome("new")])
    assert (result.accepted, result.duplicates) == (1, 1_234)
    session.commit()


def test_outcomes_for_decisions(session: Session) -> None:
    add_experiment(session)
    d1, d2, d3 = add_decisions(session, make_decision("a"), make_decision("b"), make_decision("c"))
    insert_outcomes(
        session,
        outcomes=[
            outcome("x2", d1.id, occurred_at=T0 + 2 * DAY),
            outcome("x1", d1.id, occurred_at=T0 + DAY),
            outcome("late", d1.id, occurred_at=T0 + 20 * DAY, attribution="late"),
            outcome("y", d2.id),
            outcome("orphan", "f" * 32, attribution="unknown_decision"),
        ],
    )
    session.commit()
    found = outcomes_for_decisions(session, decision_ids=[d2.id, d1.id, d3.id, d1.id])
    expected = sorted([(d1.id, "x1"), (d1.id, "x2"), (d1.id, "late"), (d2.id, "y")])
    # Ordered by decision, then occurred_at ("late" occurred last among d1's).
    assert [(o.decision_id, o.outcome_id) for o in found] == sorted(
        expected, key=lambda pair: (pair[0], ["x1", "x2", "late", "y"].index(pair[1]))
    )
    attributed = outcomes_for_decisions(
        session, decision_ids=[d1.id, d3.id], attributions=("attributed",)
    )
    assert [o.outcome_id for o in attributed] == ["x1", "x2"]
    assert outcomes_for_decisions(session, decision_ids=[d3.id]) == []
    # The reward join's plain rows: the same outcomes, in the same order, four fields each.
    for attributions in (None, ("attributed",)):
        ids = [d2.id, d1.id, d3.id, d1.id]
        rows = decision_outcomes(session, decision_ids=ids, attributions=attributions)
        full = outcomes_for_decisions(session, decision_ids=ids, attributions=attributions)
        assert rows == [(o.decision_id, o.event, o.value, o.occurred_at) for o in full]


def test_served_decisions_between_on_a_timeline(session: Session) -> None:
    """Served decisions in ``[start, end)``, oldest first: suppressed ones, other
    experiments' and those outside the interval are left out; no start means from the first."""
    add_experiment(session)
    add_experiment(session, "other")
    add_decisions(
        session,
        make_decision("c1", T0, id="d1"),
        make_decision("c2", T0 + DAY, id="d2"),
        make_decision("c3", T0 + DAY, id="d3", action_index=None, action=None, status="suppressed"),
        make_decision("c1", T0 + 2 * DAY, id="d4"),
        make_decision("c1", T0 + DAY, id="d5", experiment="other"),
    )
    found = served_decisions_between(
        session, experiment_key="exp", start=T0 + DAY, end=T0 + 3 * DAY
    )
    assert [(row.id, row.customer_id, row.action_index) for row in found] == [
        ("d2", "c2", 1),
        ("d4", "c1", 1),
    ]
    assert found[0].context == {"age": 30}
    from_first = served_decisions_between(
        session, experiment_key="exp", start=None, end=T0 + 2 * DAY
    )
    assert [row.id for row in from_first] == ["d1", "d2"]


def test_customer_event_times_whatever_the_attribution(session: Session) -> None:
    add_experiment(session)
    add_decisions(session, make_decision("c1", T0, id="d1"))
    insert_outcomes(
        session,
        outcomes=[
            outcome("o1", "d1", customer_id="c1", event="churn", occurred_at=T0 + 3 * DAY),
            outcome(
                "o2",
                None,
                customer_id="c2",
                event="churn",
                occurred_at=T0 + DAY,
                attribution="unattributed",
            ),
            outcome(
                "o3",
                None,
                customer_id="c2",
                event="churn",
                occurred_at=T0 + 9 * DAY,
                attribution="unattributed",
            ),
            outcome("o4", None, customer_id="c3", event="click", occurred_at=T0 + DAY),
            outcome(
                "o5",
                None,
                customer_id="c1",
                event="churn",
                occurred_at=T0 + DAY,
                experiment_key=None,
            ),
        ],
    )
    session.commit()
    times = customer_event_times(
        session,
        experiment_key="exp",
        customer_ids=["c1", "c2", "c3"],
        event="churn",
        start=T0,
        end=T0 + 9 * DAY,
    )
    # o3 is at the end (excluded), o4 another event, o5 in no experiment
    assert times == {"c1": [T0 + 3 * DAY], "c2": [T0 + DAY]}


def test_decisions_with_outcomes_since(session: Session) -> None:
    add_experiment(session)
    d1, d2, d3 = add_decisions(
        session,
        make_decision("a", T0),
        make_decision("b", T0 + timedelta(hours=1)),
        make_decision("c", T0 + timedelta(hours=2)),
    )
    insert_outcomes(
        session,
        outcomes=[
            outcome("o1", d1.id, received_at=T0 + DAY),
            outcome("o2", d2.id, received_at=T0 + 3 * DAY),
            outcome("o2b", d2.id, received_at=T0 + 4 * DAY),
            outcome("o3", d3.id, received_at=T0 + 3 * DAY, attribution="late"),
        ],
    )
    session.commit()

    def fresh(since: datetime) -> list[str]:
        found = decisions_with_outcomes_since(session, experiment_key="exp", since=since)
        return [d.id for d in found]

    assert fresh(T0) == [d1.id, d2.id]
    assert fresh(T0 + 2 * DAY) == [d2.id]
    # reward_candidates: the due decisions (none before T0 + 14 days) then the fresh ones.
    light = reward_candidates(
        session, experiment_key="exp", now=T0 + DAY, fresh_since=T0, with_context=False
    )
    assert [row.id for row in light] == [d1.id, d2.id]
    both = reward_candidates(
        session, experiment_key="exp", now=T0 + 30 * DAY, fresh_since=T0, with_context=False
    )
    assert [row.id for row in both] == [d1.id, d2.id, d3.id, d1.id, d2.id]
    assert fresh(T0 + 5 * DAY) == []
    set_decision_status(session, decision_ids=[d2.id], status="rewarded")
    assert fresh(T0 + 2 * DAY) == []


# ------------------------------------------------------------------------------------ rewards


def test_rewards_are_idempotent_and_learned_once(session: Session) -> None:
    add_experiment(session)
    d1, d2, d3, holdout = add_decisions(
        session,
        make_decision("a", action_index=0, propensity=0.5),
        make_decision("b", action_index=2, propensity=0.25, context={"age": 41}),
        make_decision("c"),
        make_decision("d", group="holdout", policy_version=3),
    )

    def reward(decision: Decision, value: float, minutes: int) -> Reward:
        at = T0 + 14 * DAY + timedelta(minutes=minutes)
        return Reward(decision_id=decision.id, experiment_key="exp", value=value, computed_at=at)

    assert insert_rewards(session, rewards=[reward(d1, 1.0, 1)]) == 1
    assert insert_rewards(session, rewards=[reward(d1, 5.0, 2)]) == 0
    assert (
        insert_rewards(
            session, rewards=[reward(d2, 0.0, 3), reward(holdout, 2.0, 4), reward(d2, 9.0, 5)]
        )
        == 2
    )
    session.commit()

    rows = unlearned_rewards(session, experiment_key="exp")
    assert [(r.decision_id, r.value) for r in rows] == [
        (d1.id, 1.0),
        (d2.id, 0.0),
        (holdout.id, 2.0),
    ]
    second = rows[1]
    assert (second.action_index, second.propensity, second.context) == (2, 0.25, {"age": 41})
    assert (rows[2].group, rows[2].policy_version) == ("holdout", 3)
    assert rows[0].computed_at == T0 + 14 * DAY + timedelta(minutes=1)
    assert [r.decision_id for r in unlearned_rewards(session, experiment_key="exp", limit=1)] == [
        d1.id
    ]
    # Ids first in reward_rows' order, then only some rows, in the order asked.
    assert reward_decision_ids(session, experiment_key="exp") == [r.decision_id for r in rows]
    picked = reward_rows_of(session, experiment_key="exp", decision_ids=[holdout.id, d1.id, d3.id])
    assert picked == [rows[2], rows[0]]  # d3 has no reward
    assert count_rewards(session, experiment_key="exp") == 3

    assert mark_rewards_learned(session, decision_ids=[d1.id, d2.id], version=1) == 2
    assert mark_rewards_learned(session, decision_ids=[d1.id], version=2) == 0
    session.commit()
    assert [r.decision_id for r in unlearned_rewards(session, experiment_key="exp")] == [holdout.id]
    assert count_rewards(session, experiment_key="exp", learned=True) == 2
    assert count_rewards(session, experiment_key="exp", learned=False) == 1
    assert count_unlearned_rewards(session, experiment_key="exp") == 1
    stored = session.get(Reward, d1.id)
    assert stored is not None
    assert stored.learned_version == 1
    assert d3.id not in {r.decision_id for r in rows}


# ------------------------------------------------------------------------------------ snapshots


def get_snapshot(session: Session, *, experiment_key: str, version: int) -> PolicySnapshot | None:
    stmt = select(PolicySnapshot).where(
        PolicySnapshot.experiment_key == experiment_key, PolicySnapshot.version == version
    )
    return session.exec(stmt).first()


def snapshot(version: int, experiment: str = "exp", state: bytes = b"npz") -> PolicySnapshot:
    return PolicySnapshot(
        experiment_key=experiment, version=version, state=state, rows_learned=10 * version
    )


def test_snapshot_versions_are_unique_and_increasing(session: Session) -> None:
    assert latest_snapshot(session, experiment_key="exp") is None
    assert latest_snapshot_version(session, experiment_key="exp") is None
    state = bytes(range(256)) * 4
    first = insert_snapshot(session, snapshot=snapshot(1))
    assert first.id is not None
    insert_snapshot(session, snapshot=snapshot(2, state=state))
    insert_snapshot(session, snapshot=snapshot(1, experiment="other"))
    session.commit()
    for stale in (2, 1, 0):
        with pytest.raises(SnapshotVersionError, match="not above the newest stored version 2"):
            insert_snapshot(session, snapshot=snapshot(stale))
    session.expire_all()
    newest = latest_snapshot(session, experiment_key="exp")
    assert newest is not None
    assert (newest.version, newest.state, newest.rows_learned) == (2, state, 20)
    assert latest_snapshot_version(session, experiment_key="exp") == 2
    assert latest_snapshot_version(session, experiment_key="other") == 1
    assert get_snapshot(session, experiment_key="exp", version=1).state == b"npz"  # type: ignore[union-attr]
    assert get_snapshot(session, experiment_key="exp", version=7) is None
    # The unique constraint holds even when the check is bypassed.
    session.add(snapshot(2))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


# ------------------------------------------------------------------------------------ leases


def test_learner_lease(engine: Engine) -> None:
    ttl = timedelta(seconds=30)

    def acquire(holder: str, now: datetime) -> bool:
        with Session(engine) as session:
            taken = acquire_lease(session, name="exp", holder=holder, now=now, ttl=ttl)
            session.commit()
            return taken

    assert acquire("a", T0)
    assert not acquire("b", T0 + timedelta(seconds=10))
    assert acquire("a", T0 + timedelta(seconds=20))  # renewal extends to T0+50s
    assert not acquire("b", T0 + timedelta(seconds=45))
    assert acquire("b", T0 + timedelta(seconds=50))  # expired: taken over
    with Session(engine) as session:
        lease = session.get(LearnerLease, "exp")
        assert lease is not None
        assert (lease.holder, lease.expires_at) == ("b", T0 + timedelta(seconds=80))
        assert not release_lease(session, name="exp", holder="a")
        assert release_lease(session, name="exp", holder="b")
        session.commit()
        assert session.get(LearnerLease, "exp") is None
    assert acquire("a", T0 + timedelta(seconds=51))
    # Within one session, a lease loaded before a takeover is refreshed, not served stale.
    with Session(engine) as session:
        assert session.get(LearnerLease, "exp").holder == "a"  # type: ignore[union-attr]
        later = T0 + timedelta(seconds=200)
        assert acquire_lease(session, name="exp", holder="c", now=later, ttl=ttl)
        assert session.get(LearnerLease, "exp").holder == "c"  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------ API keys


def test_api_keys_are_hashed_and_verified(session: Session) -> None:
    key, plaintext = create_api_key(session, scopes=["read", "decide"], name="svc", now=T0)
    session.commit()
    assert plaintext.startswith(API_KEY_PREFIX)
    assert len(plaintext) == len(API_KEY_PREFIX) + 40
    assert plaintext[len(API_KEY_PREFIX) :].isalnum()
    assert key.prefix == plaintext[4:12]
    assert key.scopes == "decide,read"
    assert key.scope_set == {"decide", "read"}

    # Neither the key nor its secret part is stored anywhere in the row.
    raw = session.exec(text("SELECT * FROM api_key")).one()  # type: ignore[call-overload]
    secret = plaintext[12:]
    assert not any(isinstance(v, str) and (secret in v or plaintext in v) for v in raw)
    assert key.key_hash.startswith("pbkdf2_sha256$")

    found = verify_api_key(session, key=plaintext)
    assert found is not None
    assert found.id == key.id
    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    for wrong in (tampered, plaintext + "x", "", "egk_", "Bearer " + plaintext, "x" * 44):
        assert verify_api_key(session, key=wrong) is None

    other, other_plain = create_api_key(session, scopes="admin")
    session.commit()
    assert other.salt != key.salt
    assert [k.id for k in list_api_keys(session)] == [key.id, other.id]
    assert revoke_api_key(session, prefix=key.prefix, now=T0 + DAY)
    assert not revoke_api_key(session, key_id=key.id)
    session.commit()
    assert verify_api_key(session, key=plaintext) is None
    assert verify_api_key(session, key=other_plain) is not None
    assert [k.id for k in list_api_keys(session)] == [other.id]
    assert len(list_api_keys(session, include_revoked=True)) == 2
    stored = session.get(ApiKey, key.id)
    assert stored is not None
    assert stored.revoked_at == T0 + DAY


def test_scope_validation() -> None:
    assert normalize_scopes("read, admin") == "admin,read"
    assert normalize_scopes(["decide", "decide"]) == "decide"
    with pytest.raises(ValueError, match=re.escape("one of admin|decide|read. Got 'root'")):
        normalize_scopes(["root"])
    with pytest.raises(ValueError, match="at least one"):
        normalize_scopes("")


def test_revoke_needs_one_selector(session: Session) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        revoke_api_key(session)
    with pytest.raises(ValueError, match="exactly one"):
        revoke_api_key(session, key_id=1, prefix="abc")
