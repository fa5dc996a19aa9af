"""Guardrail checks and the automatic stop, through the real engine on SQLite and PostgreSQL:
the per-customer KPIs and the split's test recomputed by hand, a harmful experiment stopping
itself (and serving control), a healthy one not, and an admin's resume."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from guardrail_support import independent_interval
from sqlalchemy import Engine

from bench.guardrails import START, run_experiment, split_log, world_spec
from experiments.analysis.guardrails import guardrail_tags
from experiments.analysis.report import build_live_report, live_report_markdown
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.engine.learner import Learner, LearnerLock
from experiments.store.database import Database, open_database
from experiments.store.models import Decision
from experiments.vocabulary import DecisionStatus, ExperimentStatus, Group, GuardrailStatus


def churn(outcome_id: str, decision_id: str | None, when_days: float, **extra: str) -> OutcomeInput:
    return OutcomeInput(
        outcome_id=outcome_id,
        event="churn",
        value=1.0,
        occurred_at=START + timedelta(days=when_days),
        decision_id=decision_id,
        **extra,
    )


def test_guardrails_recomputed_by_hand(engine: Engine) -> None:
    """40 customers; each of the first 10 of each group is decided for twice, the rest once.
    Churn: every 3rd customer, reported on day 2 (after the first decision); and one churn on
    day -1 (before any decision) for customer c1, which must not count. Retention, contacts
    and the sum of churn values (1 each) are recomputed here and compared to the report's
    rows, difference and always-valid interval alike."""
    clock = ManualClock(START)
    decisions = DecisionEngine(Database(engine), clock=clock, seed=0)
    spec = world_spec("hand", harmful=False, share=0.5)
    spec["guardrails"]["kpi"] += [
        {"measure": "contacts", "margin": 0.5},
        {"measure": "sum", "event": "churn", "margin": 0.1, "direction": "lower"},
    ]
    decisions.create_experiment(spec)
    customers = [f"c{index}" for index in range(40)]
    first = decisions.decide_many("hand", [DecisionRequest(c, {}) for c in customers])
    groups = {c: result.group for c, result in zip(customers, first, strict=True)}
    again = [c for g in Group for c in [c for c in customers if groups[c] == g][:10]]
    clock.set(START + timedelta(days=1))
    decisions.decide_many("hand", [DecisionRequest(c, {}) for c in again])
    churned = customers[::3]
    ids = {c: result.decision_id for c, result in zip(customers, first, strict=True)}
    decisions.record([churn(f"o{c}", ids[c], 2) for c in churned])
    decisions.record([churn("early", None, -1, experiment="hand", customer_id="c1")])

    report = build_live_report(decisions.database, "hand")
    assert report.checks is not None
    holdout = np.array([groups[c] == Group.HOLDOUT for c in customers])
    retention = np.array([c not in churned for c in customers], dtype=float)
    contacts = np.array([1.0 + (c in again) for c in customers])
    rows = {row.kpi: row for row in report.checks.guardrails}
    for kpi, values in (
        ("retention:churn", retention),
        ("contacts", contacts),
        ("sum:churn", 1.0 - retention),
    ):
        treated, control = values[~holdout], values[holdout]
        row = rows[kpi]
        assert (row.n_treatment, row.n_holdout) == (treated.size, control.size)
        assert row.mean_treatment == pytest.approx(treated.mean(), rel=1e-12)
        assert row.difference == pytest.approx(treated.mean() - control.mean(), rel=1e-12)
        assert (row.av_low, row.av_high) == pytest.approx(
            independent_interval(treated, control), rel=1e-12
        )
    assert [rows[k].direction for k in rows] == ["higher", "lower", "lower"]
    ratio = report.checks.sample_ratio
    assert ratio is not None
    assert (ratio.treatment, ratio.holdout) == ((~holdout).sum(), holdout.sum())
    assert ratio.expected_holdout_share == 0.5


@pytest.mark.parametrize("broken", [True, False])
def test_a_broken_split_is_flagged_and_a_correct_one_is_not(
    migrated_database_url: str, broken: bool
) -> None:
    """2,000 customers hashed at 5% against a spec saying 10%: about 100 held out where 200
    are expected, X² ≈ 100²/200 + 100²/1800 ≈ 56, p ~ 1e-13. At 10%, no flag (seed 0)."""
    mismatch, p_value = split_log(migrated_database_url, seed=0, broken=broken, customers=2000)
    assert mismatch is broken
    assert (p_value < 1e-6) if broken else (p_value > 0.001)
    database = open_database(migrated_database_url)
    try:
        report = build_live_report(database, "split-0")
    finally:
        database.dispose()
    markdown = live_report_markdown(report)
    top = markdown.split("\n\n")[2]  # right after the title and the status line
    assert ("sample-ratio mismatch: " in top) is broken
    assert "no sample-ratio mismatch" in top or broken
    tags = guardrail_tags(report.checks, stop_reason=None, stopped_at=None)
    assert tags["engage.srm"] == ("mismatch" if broken else "ok")


def test_a_harmful_experiment_stops_itself_and_serves_control_until_resumed(
    migrated_database_url: str,
) -> None:
    """The treatment only sends the fatiguing message (churn 4% a decision against the
    holdout's 1%): the retention guardrail (margin 0.02) is breached with always-valid
    confidence within days, the engine pauses the experiment with the reason and time, a
    treatment customer is then served the control's action, and an admin's resume clears the
    stop and restarts the evidence."""
    run = run_experiment(migrated_database_url, seed=0, harmful=True, customers=2000, days=20)
    assert run.stopped_day is not None
    assert run.reason is not None
    assert run.reason.startswith("guardrail retention:churn breached: treatment ")
    database = open_database(migrated_database_url)
    clock = ManualClock(START + timedelta(days=run.stopped_day + 1, hours=6))
    decisions = DecisionEngine(database, clock=clock, seed=0)
    try:
        row = decisions.get_experiment("guarded")
        assert row.status == ExperimentStatus.PAUSED
        assert row.stopped_at == START + timedelta(days=run.stopped_day + 1)
        assert decisions.check_guardrails("guarded") is None  # paused: nothing to check

        report = build_live_report(database, "guarded")
        assert report.stop_reason == run.reason
        assert report.stopped_at == row.stopped_at
        assert report.checks is not None
        [guardrail] = report.checks.guardrails
        assert guardrail.status == GuardrailStatus.BREACHED
        assert guardrail.av_high is not None
        assert guardrail.av_high < -0.02
        assert f"Stopped itself at {row.stopped_at.isoformat()}" in live_report_markdown(report)

        served = decisions.decide_many(
            "guarded", [DecisionRequest(f"new{index}", {}) for index in range(50)]
        )
        treated = [result for result in served if result.group == Group.TREATMENT]
        assert treated
        assert all(result.action == {"message": "gentle"} for result in treated)
        with database.session() as session:
            stored = session.get(Decision, treated[0].decision_id)
            assert stored is not None
            assert stored.status == DecisionStatus.PAUSED

        resumed = decisions.set_status("guarded", ExperimentStatus.RUNNING)
        assert (resumed.status, resumed.stop_reason) == (ExperimentStatus.RUNNING, None)
        assert resumed.resumed_at == clock.now()
        assert resumed.stopped_at == row.stopped_at  # the last stop stays on record
        checks = decisions.check_guardrails("guarded")
        assert checks is not None
        assert checks.since == clock.now()
        assert checks.stop_reasons() == []  # no decision since the resume yet
        assert decisions.get_experiment("guarded").status == ExperimentStatus.RUNNING
    finally:
        database.dispose()


def test_a_healthy_experiment_does_not_stop(migrated_database_url: str) -> None:
    """Treatment and holdout both send the gentle message: the true difference is 0."""
    run = run_experiment(migrated_database_url, seed=0, harmful=False, customers=1000, days=10)
    assert (run.stopped_day, run.reason) == (None, None)


def test_alert_guardrails_and_splits_never_stop(engine: Engine) -> None:
    """The same breach with action "alert" is reported, and the experiment keeps running."""
    clock = ManualClock(START)
    decisions = DecisionEngine(Database(engine), clock=clock, seed=0)
    spec = world_spec("alerting", harmful=True, share=0.5)
    spec["guardrails"] = {
        "sample_ratio": "alert",
        "kpi": [{"measure": "retention", "margin": 0.0, "action": "alert"}],
    }
    decisions.create_experiment(spec)
    customers = [f"c{index}" for index in range(400)]
    results = decisions.decide_many("alerting", [DecisionRequest(c, {}) for c in customers])
    decisions.record(
        [
            churn(f"o{index}", result.decision_id, 1)
            for index, result in enumerate(results)
            if result.group == Group.TREATMENT
        ]
    )
    checks = decisions.check_guardrails("alerting")
    assert checks is not None
    assert checks.guardrails[0].status == GuardrailStatus.BREACHED
    assert checks.stop_reasons() == []
    assert decisions.get_experiment("alerting").status == ExperimentStatus.RUNNING


def test_a_mismatched_split_stops_the_experiment(migrated_database_url: str) -> None:
    """The broken split (5% hashed, 10% in the spec) with sample_ratio = "stop": the
    anytime-valid p of 2,000 customers is far below 0.001 too, and the engine pauses it."""
    assert split_log(migrated_database_url, seed=1, broken=True, customers=2000, action="stop")[0]
    database = open_database(migrated_database_url)
    try:
        decisions = DecisionEngine(database, clock=ManualClock(START + timedelta(days=1)))
        checks = decisions.check_guardrails("split-1")
        assert checks is not None
        assert checks.sample_ratio is not None
        assert checks.sample_ratio.always_valid_p < 1e-6
        row = decisions.get_experiment("split-1")
        assert row.status == ExperimentStatus.PAUSED
        assert row.stop_reason is not None
        assert row.stop_reason.startswith("sample-ratio mismatch: ")
        assert row.stopped_at == START + timedelta(days=1)
    finally:
        database.dispose()


def test_the_background_learner_checks_and_stops(engine: Engine) -> None:
    """One pass of the learner (no reward has joined yet) checks the guardrails of each
    running experiment and stops the one whose treated customers all churned."""
    decisions = DecisionEngine(Database(engine), clock=ManualClock(START), seed=0)
    decisions.create_experiment(world_spec("learned", harmful=True, share=0.5))
    results = decisions.decide_many(
        "learned", [DecisionRequest(f"c{index}", {}) for index in range(200)]
    )
    decisions.record(
        [
            churn(f"o{index}", result.decision_id, 0.5)
            for index, result in enumerate(results)
            if result.group == Group.TREATMENT and index % 4
        ]
    )
    learner = Learner(decisions, lock=LearnerLock(decisions.database))
    try:
        assert learner.run_once() == []  # nothing learned: the window has not closed
    finally:
        learner.lock.release()
    row = decisions.get_experiment("learned")
    assert row.status == ExperimentStatus.PAUSED
    assert row.stop_reason is not None
    assert row.stop_reason.startswith("guardrail retention:churn breached")
