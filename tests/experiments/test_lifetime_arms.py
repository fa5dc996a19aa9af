"""The ``sequential`` and ``surrogate`` arms of ``engage run``: what each changes in the spec,
and that both run through the engine, learn and log what they learned from."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, col, func, select

from experiments.runs.arms import (
    ARMS,
    LIFETIME_ARMS,
    LOOKAHEAD,
    SEQUENTIAL,
    SURROGATE,
    arm_names,
    arm_spec,
    regret_kind,
)
from experiments.runs.report import arm_summary
from experiments.runs.simulation import START, RunOptions, run_simulation
from experiments.spec import ExperimentSpec, load_spec
from experiments.spec.state import STATE_KEY
from experiments.store import models
from experiments.store.connection import make_engine
from experiments.store.schema import upgrade
from experiments.store.snapshots import unpack_state

MECHANISM = Path(__file__).resolve().parents[2] / "examples" / "mechanism.toml"


@pytest.fixture(scope="module")
def spec() -> ExperimentSpec:
    return load_spec(MECHANISM)


def test_lifetime_arms_run_only_when_named() -> None:
    assert LIFETIME_ARMS == ("lookahead", "sequential", "surrogate")
    assert not set(LIFETIME_ARMS) & set(ARMS)
    assert arm_names(["interaction", "sequential", "surrogate"]) == (
        "interaction",
        "sequential",
        "surrogate",
    )


def test_sequential_arm_is_fitted_q_on_customer_state(spec: ExperimentSpec) -> None:
    sequential = arm_spec(spec, "sequential")
    assert sequential.policy.name == "fitted_q"
    assert sequential.policy.params == {
        **spec.policy.params,
        **SEQUENTIAL["params"],
        "noise_variance": SEQUENTIAL["noise_variance"],
    }
    assert sequential.state is not None
    assert sequential.state.contact_half_life is not None
    # one count per level of offer, message, channel and timing, then days since contact
    assert sequential.n_features == spec.n_context + (1 + 5 + 4 + 4) + 1
    assert (sequential.reward.kind, sequential.reward.event) == ("sum", "revenue")
    assert sequential.reward.window.days == 7
    assert sequential.contact == spec.contact
    assert sequential.holdout == arm_spec(spec, "interaction").holdout


def test_lookahead_arm_is_lookahead_ts_on_the_response_funnel_with_contact_state(
    spec: ExperimentSpec,
) -> None:
    lookahead = arm_spec(spec, "lookahead")
    assert lookahead.policy.name == "lookahead_ts"
    assert lookahead.policy.params == {  # ridge and n_samples carry over
        **spec.policy.params,
        "churn_value": 5.1,
        "churn_window": 1.0,
        "churn_shrinkage": True,
        "lookahead_shrinkage": True,
        "state_effects": "crossed",
        "gate_level": 0.05,
        "gate_scale": 0.03,
        "short_term_reward": "own",
    }
    assert lookahead.state is not None
    assert lookahead.state.half_lives == (LOOKAHEAD["half_life"],)
    assert lookahead.state.lookback == LOOKAHEAD["lookback"]
    # one count per level of offer, message, channel and timing, then days since contact
    assert lookahead.n_features == spec.n_context + (1 + 5 + 4 + 4) + 1
    assert lookahead.reward.kind == "funnel"
    assert lookahead.reward.named_events == ("click", "accept") == tuple(LOOKAHEAD["events"])
    assert regret_kind(lookahead) == "funnel"
    assert lookahead.reward.window.days == 1
    # The gate's short-term learner learns the click apart from the funnel, when it happens.
    short_term = lookahead.reward.short_term
    assert short_term is not None
    assert (short_term.kind, short_term.event, short_term.window) == (
        "event",
        "click",
        timedelta(days=1),
    )
    assert short_term == arm_spec(spec, "interaction").reward
    assert lookahead.contact == spec.contact
    assert lookahead.holdout == arm_spec(spec, "interaction").holdout


def test_lookahead_arm_takes_a_weighted_funnel_and_its_window(
    spec: ExperimentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variant measured and dropped (README): a churn within 7 days charged 20.5 points."""
    assert LOOKAHEAD["weights"] is None  # the arm as it runs: 1 per step, within a day
    monkeypatch.setitem(LOOKAHEAD, "events", ["click", "accept", "churn"])
    monkeypatch.setitem(LOOKAHEAD, "weights", [1.0, 1.0, -20.5])
    monkeypatch.setitem(LOOKAHEAD, "window", timedelta(days=7))
    reward = arm_spec(spec, "lookahead").reward
    assert (reward.kind, reward.event, reward.window) == ("funnel", "churn", timedelta(days=7))
    assert reward.step_weights == (1.0, 1.0, -20.5)
    assert reward.label == "funnel:1click+1accept-20.5churn"


def test_surrogate_arm_predicts_the_spec_kpi(spec: ExperimentSpec) -> None:
    surrogate = arm_spec(spec, "surrogate")
    assert surrogate.policy == spec.policy
    assert surrogate.reward.kind == "surrogate"
    assert (surrogate.reward.event, surrogate.reward.window) == ("revenue", spec.reward.window)
    assert surrogate.reward.surrogate is not None
    assert surrogate.reward.surrogate.signals == SURROGATE["signals"]
    assert surrogate.reward.surrogate.window.days == 7


def test_the_arms_run_through_the_engine(spec: ExperimentSpec, tmp_path: Path) -> None:
    """300 customers for 12 days: each arm publishes snapshots; the lookahead and sequential
    arms' decisions log the customer state they were chosen on."""
    url = f"sqlite:///{tmp_path / 'run.db'}"
    upgrade(url)
    options = RunOptions(customers=300, days=12, seed=0, arms=LIFETIME_ARMS, database_url=url)
    result = run_simulation(spec, options)
    assert [arm.arm for arm in result.arms] == list(LIFETIME_ARMS)
    assert all(arm.policy_version >= 1 for arm in result.arms)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            contexts = {
                arm.arm: session.exec(
                    select(models.Decision.context).where(models.Decision.experiment_key == arm.key)
                ).all()
                for arm in result.arms
            }
    finally:
        engine.dispose()
    for arm in ("lookahead", "sequential"):
        assert contexts[arm]
        assert all(len(context[STATE_KEY]) == 15 for context in contexts[arm])
    assert not any(STATE_KEY in context for context in contexts["surrogate"])
    # Only the lookahead arm is gated: a day-by-day record of what chose, and its first day.
    gated = {arm.arm: arm for arm in result.arms if arm.gated}
    assert list(gated) == ["lookahead"]
    chooses = gated["lookahead"].daily["lifetime_value_chooses"]
    assert len(chooses) == 12
    assert set(chooses) <= {0.0, 1.0}
    assert chooses == sorted(chooses)  # once open, for good
    first = chooses.index(1.0) if 1.0 in chooses else None
    assert gated["lookahead"].gate_opened_day == first
    summary = arm_summary(gated["lookahead"])
    assert summary.gate_opened_day == first
    assert summary.note is not None
    assert "gate" in summary.note


def test_a_closed_gate_makes_the_click_learners_decisions_through_the_engine(
    spec: ExperimentSpec,
) -> None:
    """Without the mechanisms the gate stays closed, and the short-term learner, learning the
    click the moment it is joined (``[reward.short_term]``), chooses what the interaction arm
    chooses, decision for decision: every customer's revenue and retention are the same."""
    options = RunOptions(
        customers=300,
        days=10,
        seed=1,
        arms=("interaction", "lookahead"),
        fatigue=False,
        nurturing=False,
        oracles=False,
    )
    result = run_simulation(spec, options)
    interaction, lookahead = result.arms
    assert lookahead.gated
    assert lookahead.gate_opened_day is None
    assert lookahead.decisions == interaction.decisions > 0
    assert lookahead.per_customer.keys() == interaction.per_customer.keys()
    for name, values in interaction.per_customer.items():
        np.testing.assert_array_equal(lookahead.per_customer[name], values)


def test_the_lookahead_arm_learns_churn_over_the_weeks_after_each_contact(
    spec: ExperimentSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``churn_value`` set, every served decision from day 0 on and older than the churn
    window at the last snapshot is one row of the churn model (the intercept's entry of ``U^T
    U`` counts them), and its label is whether its customer churned within the window after it
    (the intercept's entry of ``U^T y``), read back from the store independently: churns by
    customer and time, most of them outside any decision's one-day reward window. The
    burn-in's log, replayed before day 0 (the spec's ``learn_from_burn_in``), is in the store
    but labels nothing: nobody churns in a burn-in."""
    monkeypatch.setitem(LOOKAHEAD, "churn_value", 5.1)
    monkeypatch.setitem(LOOKAHEAD, "churn_window", timedelta(days=7))
    params = arm_spec(spec, "lookahead").policy.params
    assert (params["churn_value"], params["churn_window"]) == (5.1, 7.0)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    upgrade(url)
    options = RunOptions(
        customers=400, days=25, seed=0, arms=("lookahead",), database_url=url, oracles=False
    )
    (arm,) = run_simulation(spec, options).arms
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            snapshot = session.exec(
                select(models.PolicySnapshot)
                .where(models.PolicySnapshot.experiment_key == arm.key)
                .order_by(col(models.PolicySnapshot.version).desc())
            ).first()
            assert snapshot is not None
            decisions = session.exec(
                select(models.Decision.customer_id, models.Decision.created_at).where(
                    models.Decision.experiment_key == arm.key,
                    col(models.Decision.action_index).is_not(None),
                    col(models.Decision.status).in_(["open", "rewarded", "paused"]),
                    models.Decision.created_at < snapshot.created_at - timedelta(days=7),
                    models.Decision.created_at >= START,
                )
            ).all()
            history = session.exec(
                select(func.count())
                .select_from(models.Decision)
                .where(
                    models.Decision.experiment_key == arm.key, models.Decision.created_at < START
                )
            ).one()
            churns = session.exec(
                select(
                    models.Outcome.customer_id,
                    models.Outcome.occurred_at,
                    models.Outcome.decision_id,
                ).where(models.Outcome.experiment_key == arm.key, models.Outcome.event == "churn")
            ).all()
    finally:
        engine.dispose()
    churned_at = {customer: at for customer, at, _ in churns}
    labels = [
        customer in churned_at and at <= churned_at[customer] < at + timedelta(days=7)
        for customer, at in decisions
    ]
    state = unpack_state(snapshot.state)
    assert history == arm.history_decisions > 0
    assert state["churn_gram"][0, 0] == len(decisions) > 0
    assert state["churn_moment"][0] == sum(labels) > 0
    assert sum(decision is None for _, _, decision in churns) > sum(
        decision is not None for _, _, decision in churns
    )


def test_the_lookahead_arm_takes_several_half_lives(
    spec: ExperimentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tuple of half-lives gives a block of counts each, and the policy as many blocks."""
    monkeypatch.setitem(LOOKAHEAD, "half_life", (timedelta(days=10), timedelta(days=28)))
    lookahead = arm_spec(spec, "lookahead")
    assert lookahead.state is not None
    assert lookahead.state.half_lives == (timedelta(days=10), timedelta(days=28))
    assert lookahead.n_features == spec.n_context + 2 * (1 + 5 + 4 + 4) + 1
    policy = lookahead.build_policy(seed=0)
    assert getattr(policy, "contact_blocks", None) == 2
