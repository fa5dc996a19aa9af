"""The engine package's shape and its pure parts: the public names, planning without a
database, contact rules by hand, and the one validated status path. (Module and class sizes are
bounded for all of experiments in tests/test_architecture.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine

import experiments.engine
from experiments.engine import DecisionEngine, DecisionRequest, DecisionResult
from experiments.engine.clock import ManualClock
from experiments.engine.planning import (
    SuppressionReason,
    contact_suppressions,
    encode_batch,
    encode_single,
    plan_decisions,
)
from experiments.engine.snapshots import LoadedPolicy, PolicyFactory
from experiments.errors import ConflictError, InvalidInputError, NotFoundError
from experiments.spec import ContactSpec, parse_spec
from experiments.store.database import Database
from experiments.vocabulary import DecisionStatus, ExperimentStatus, Group

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPEC = {
    "key": "promo",
    "factors": {"offer": ["none", "bundle"], "channel": ["sms", "push"]},
    "context": {
        "tenure": {"type": "numeric", "min": 0},
        "local_hour": {"type": "numeric", "required": False, "default": 12},
    },
    "policy": {"name": "linear_ts", "params": {}},
    "reward": {"kind": "sum", "event": "revenue", "window": "7d"},
    "holdout": {"share": 0.5},
    "contact": {"max_decisions": 1, "window": "7d"},
}


def test_public_names_are_pinned() -> None:
    assert experiments.engine.__all__ == [
        "DecisionEngine",
        "DecisionRequest",
        "DecisionResult",
        "LoadedPolicy",
        "OutcomeInput",
        "RecordResult",
    ]


def test_contact_rules_by_hand() -> None:
    """Quiet 22:00-07:59; at most 2 decisions a window. c1 has 1 recent decision, so its first
    request here is its 2nd (served) and its second is its 3rd (limited); c2 at 23:00 is quiet
    and does not count; c3 has none."""
    contact = ContactSpec(max_decisions=2, quiet_hours=(22, 8), local_hour_field="local_hour")
    requests = [
        DecisionRequest("c1", {"local_hour": 9}),
        DecisionRequest("c2", {"local_hour": 23}),
        DecisionRequest("c1", {"local_hour": 10}),
        DecisionRequest("c3", {}),
    ]
    reasons = contact_suppressions(contact, requests, {"c1": 1})
    assert reasons == [None, SuppressionReason.QUIET_HOURS, SuppressionReason.CONTACT_LIMIT, None]


def test_planning_needs_no_database() -> None:
    spec = parse_spec(SPEC)
    treatment, control = PolicyFactory(seed=0).build(spec, spec.exploration_floor)
    loaded = LoadedPolicy(
        spec=spec,
        status=ExperimentStatus.RUNNING,
        exploration_floor=spec.exploration_floor,
        apprentice=False,
        treatment=treatment,
        control=control,
        version=3,
        checked_at=0.0,
    )
    requests = [DecisionRequest(f"c{index}", {"tenure": index}) for index in range(6)]
    planned = plan_decisions(
        "promo", loaded, requests, encode_batch(spec, requests), now=NOW, recent={"c0": 1}
    )
    assert [row.customer_id for row in planned] == [request.customer_id for request in requests]
    assert planned[0].status == DecisionStatus.SUPPRESSED
    assert planned[0].action is None
    assert planned[0].window_closes_at is None
    for row in planned[1:]:
        assert row.status == DecisionStatus.OPEN
        assert row.group in (Group.TREATMENT, Group.HOLDOUT)
        assert 0 < row.propensity <= 1
        assert row.window_closes_at == NOW + timedelta(days=7)
        assert row.policy_version == 3
    result = DecisionResult.of(planned[1])
    assert (result.decision_id, result.action, result.deferred) == (
        planned[1].id,
        planned[1].action,
        False,
    )


def test_single_and_batch_encoders_name_the_field_their_way() -> None:
    spec = parse_spec(SPEC)
    bad = DecisionRequest("c1", {"tenure": "x"})
    with pytest.raises(InvalidInputError) as single:
        encode_single(spec, bad)
    with pytest.raises(InvalidInputError) as batch:
        encode_batch(spec, [DecisionRequest("c0", {"tenure": 1}), bad])
    assert (single.value.field, batch.value.field) == ("context.tenure", "contexts[1].tenure")
    encoded = encode_single(spec, DecisionRequest("c1", {"tenure": 2}))
    assert encoded.contexts.shape == (1, spec.n_context)
    assert np.array_equal(encoded.eligible, spec.decision_space().eligibility(1))


def test_status_changes_are_validated(engine: Engine) -> None:
    core = DecisionEngine(Database(engine), clock=ManualClock(NOW), seed=0)
    with pytest.raises(InvalidInputError) as bad_initial:
        core.create_experiment(SPEC, status="live")
    assert bad_initial.value.field == "status"
    core.create_experiment(SPEC)
    with pytest.raises(InvalidInputError) as unknown:
        core.set_status("promo", "archived")
    assert unknown.value.field == "status"
    assert core.get_experiment("promo").status == ExperimentStatus.RUNNING
    with pytest.raises(NotFoundError):
        core.set_status("nope", ExperimentStatus.PAUSED)
    assert core.set_status("promo", ExperimentStatus.PAUSED).status == ExperimentStatus.PAUSED
    assert core.set_status("promo", ExperimentStatus.STOPPED).status == ExperimentStatus.STOPPED
    with pytest.raises(ConflictError):
        core.set_status("promo", ExperimentStatus.RUNNING)
