"""Guardrail actions changed on a running experiment (``DecisionEngine.update_settings``), on
SQLite and PostgreSQL: the stored spec changes, the very next check acts on it, and bad input
(an unknown guardrail, a value that is no action) is refused by name and changes nothing."""

from __future__ import annotations

import pytest
from guardrail_support import breached
from sqlalchemy import Engine

from bench.guardrails import START, world_spec
from experiments.engine import DecisionEngine
from experiments.engine.clock import ManualClock
from experiments.errors import InvalidInputError, NotFoundError
from experiments.spec import parse_spec
from experiments.store.database import Database
from experiments.vocabulary import ExperimentStatus, GuardrailStatus


def actions(decisions: DecisionEngine, key: str) -> tuple[dict[str, str], str]:
    """The stored spec's guardrail actions by label, and the split's."""
    guardrails = parse_spec(decisions.get_experiment(key).spec).guardrails
    return {g.label: g.action for g in guardrails.kpi}, guardrails.sample_ratio


def test_a_breached_stop_guardrail_switched_to_alert_does_not_stop(engine: Engine) -> None:
    """Switched to alert, the breach is reported and the experiment keeps running; switched
    back to stop, the very next check stops it (the check reads the stored spec afresh)."""
    decisions = breached(Database(engine), "harm")
    row = decisions.update_settings("harm", guardrail_actions={"retention:churn": "alert"})
    assert parse_spec(row.spec).guardrails.kpi[0].action == "alert"
    assert actions(decisions, "harm") == ({"retention:churn": "alert", "contacts": "stop"}, "stop")

    checks = decisions.check_guardrails("harm")
    assert checks is not None
    retention = checks.guardrails[0]
    assert (retention.kpi, retention.status) == ("retention:churn", GuardrailStatus.BREACHED)
    assert checks.stop_reasons() == []
    assert decisions.get_experiment("harm").status == ExperimentStatus.RUNNING

    decisions.update_settings("harm", guardrail_actions={"retention:churn": "stop"})
    checks = decisions.check_guardrails("harm")
    assert checks is not None
    stopped = decisions.get_experiment("harm")
    assert stopped.status == ExperimentStatus.PAUSED
    assert stopped.stop_reason is not None
    assert stopped.stop_reason.startswith("guardrail retention:churn breached")


def test_the_split_action_is_set_and_other_settings_stay(engine: Engine) -> None:
    """``sample_ratio_action`` alone changes the split's action and nothing else; the spec's
    other sections are stored as they were."""
    decisions = breached(Database(engine), "split")
    before = decisions.get_experiment("split")
    row = decisions.update_settings("split", sample_ratio_action="alert")
    assert actions(decisions, "split") == ({"retention:churn": "stop", "contacts": "stop"}, "alert")
    assert (row.exploration_floor, row.apprentice) == (before.exploration_floor, before.apprentice)
    assert {**row.spec, "guardrails": None} == {**before.spec, "guardrails": None}
    assert row.spec["guardrails"] == {**before.spec["guardrails"], "sample_ratio": "alert"}


def test_a_spec_without_a_guardrails_section_takes_a_split_action(engine: Engine) -> None:
    """Without ``[guardrails]`` a mismatched split stops by default; "alert" is stored as the
    section's one non-default value, and "stop" again leaves the stored spec as created."""
    decisions = DecisionEngine(Database(engine), clock=ManualClock(START))
    spec = world_spec("bare", harmful=False)
    del spec["guardrails"]
    created = decisions.create_experiment(spec)
    assert "guardrails" not in created.spec
    row = decisions.update_settings("bare", sample_ratio_action="alert")
    assert row.spec["guardrails"] == {"confidence": 0.95, "sample_ratio": "alert", "kpi": []}
    row = decisions.update_settings("bare", sample_ratio_action="stop")
    assert row.spec == created.spec
    with pytest.raises(InvalidInputError) as raised:
        decisions.update_settings("bare", guardrail_actions={"retention:churn": "alert"})
    assert raised.value.field == "guardrail_actions"
    assert "'retention:churn'" in str(raised.value)
    assert "none (the spec has no [[guardrails.kpi]])" in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        (
            {"guardrail_actions": {"retention:churned": "alert"}},
            "guardrail_actions",
            "has no guardrail 'retention:churned'; the guardrails are "
            "['retention:churn', 'contacts']",
        ),
        (
            {"guardrail_actions": {"retention:churn": "pause"}},
            "guardrail_actions.retention:churn",
            "must be one of ['stop', 'alert']; got 'pause'",
        ),
        ({"sample_ratio_action": "Stop"}, "sample_ratio_action", "got 'Stop'"),
        (
            {"guardrail_actions": {"contacts": "alert"}, "exploration_floor": 1.5},
            "exploration_floor",
            "must be in [0, 1]; got 1.5",
        ),
    ],
)
def test_bad_settings_are_refused_by_name_and_change_nothing(
    engine: Engine, settings: dict[str, object], field: str, words: str
) -> None:
    decisions = breached(Database(engine), "refused")
    before = decisions.get_experiment("refused")
    with pytest.raises(InvalidInputError) as raised:
        decisions.update_settings("refused", **settings)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert words in str(raised.value)
    after = decisions.get_experiment("refused")
    assert (after.spec, after.exploration_floor, after.updated_at) == (
        before.spec,
        before.exploration_floor,
        before.updated_at,
    )


def test_an_unknown_experiment_is_not_found(engine: Engine) -> None:
    decisions = DecisionEngine(Database(engine), clock=ManualClock(START))
    with pytest.raises(NotFoundError):
        decisions.update_settings("nobody", sample_ratio_action="alert")
