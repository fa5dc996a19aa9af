"""`engage experiments create` and `set` refuse bad input with one line and exit code 2, in
the engine's own words (what the HTTP API answers); `show` prints safe promotion's records.
In-process (typer runner) on a migrated SQLite file; tests/e2e/test_cli_launch.py runs the
real commands beside a real server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_support import invoke
from guardrail_support import breached

from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.errors import ConflictError
from experiments.spec import SpecError, load_spec
from experiments.store.database import open_database
from experiments.store.schema import upgrade
from experiments.vocabulary import ExperimentStatus, GuardrailStatus

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.toml"


@pytest.fixture
def url(tmp_path: Path) -> str:
    made = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(made)
    return made


def test_create_running_or_paused_and_refuse_a_second_one(url: str, tmp_path: Path) -> None:
    code, output = invoke("experiments", "create", str(QUICKSTART), "--database-url", url)
    assert (code, output.strip()) == (0, "quickstart: created, running")
    paused = tmp_path / "paused.toml"
    paused.write_text(QUICKSTART.read_text().replace('key = "quickstart"', 'key = "later"'))
    code, output = invoke(
        "experiments", "create", str(paused), "--paused", "--json", "--database-url", url
    )
    assert code == 0, output
    row = json.loads(output)
    assert (row["key"], row["status"], row["exploration_floor"]) == ("later", "paused", 0.01)
    code, output = invoke("experiments", "create", str(QUICKSTART), "--database-url", url)
    with pytest.raises(ConflictError) as conflict:  # what POST answers with 409
        DecisionEngine(open_database(url)).create_experiment(load_spec(QUICKSTART))
    assert (code, output.strip()) == (2, f"error: {conflict.value}")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda text: text.replace("share = 0.1", "share = 1.5"), "holdout.share"),
        (lambda text: text + "\n[promotion]\nmargin = -1\n", "promotion.margin"),
        (lambda text: text.replace("[factors]", "[factors"), "file"),
    ],
)
def test_create_refuses_a_bad_spec_as_the_spec_does(url: str, tmp_path: Path, edit, field) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(QUICKSTART.read_text()))
    with pytest.raises(SpecError) as error:
        load_spec(bad)
    assert error.value.field == field
    code, output = invoke("experiments", "create", str(bad), "--database-url", url)
    assert (code, output.strip()) == (2, f"error: {error.value}")
    code, output = invoke("experiments", "list", "--json", "--database-url", url)
    assert json.loads(output) == []


def test_create_refuses_a_missing_file(url: str, tmp_path: Path) -> None:
    code, output = invoke(
        "experiments", "create", str(tmp_path / "none.toml"), "--database-url", url
    )
    assert code == 2
    assert output.startswith("error: file: no spec file at")


def test_set_changes_floor_and_apprentice_and_refuses_bad_values(url: str) -> None:
    assert invoke("experiments", "create", str(QUICKSTART), "--database-url", url)[0] == 0
    code, output = invoke(
        "experiments", "set", "quickstart", "--exploration-floor", "0.2", "--database-url", url
    )
    assert (code, output.strip()) == (0, "quickstart: exploration floor 0.2, apprentice off")
    code, output = invoke(
        "experiments", "set", "quickstart", "--apprentice", "--json", "--database-url", url
    )
    assert code == 0, output
    row = json.loads(output)
    assert (row["exploration_floor"], row["apprentice"]) == (0.2, True)
    code, output = invoke(
        "experiments", "set", "quickstart", "--no-apprentice", "--database-url", url
    )
    assert (code, output.strip()) == (0, "quickstart: exploration floor 0.2, apprentice off")
    refusals = {
        ("quickstart",): "error: give --exploration-floor, --apprentice, --no-apprentice, "
        "--guardrail or --sample-ratio (see --help)",
        ("quickstart", "--exploration-floor", "-0.5"): "error: exploration_floor must be in "
        "[0, 1]; got -0.5",
        ("nobody", "--apprentice"): "error: unknown experiment 'nobody'",
        ("quickstart", "--exploration-floor", "much"): None,
    }
    for args, expected in refusals.items():
        code, output = invoke("experiments", "set", *args, "--database-url", url)
        assert code == 2, output
        assert len(output.strip().splitlines()) == 1, output
        if expected is not None:
            assert output.strip() == expected
    code, output = invoke("experiments", "show", "quickstart", "--json", "--database-url", url)
    assert json.loads(output)["exploration_floor"] == 0.2


def test_show_prints_the_promotion_records(url: str) -> None:
    """A gated experiment with one learned snapshot: its record is pending, and says so."""
    clock = ManualClock(datetime(2026, 6, 1, tzinfo=UTC))
    engine = DecisionEngine(open_database(url), clock=clock, seed=0)
    spec = load_spec(QUICKSTART).to_json_dict()
    engine.create_experiment({**spec, "promotion": {"enabled": True}})
    context = {"tenure_months": 3, "plan": "prepaid"}
    made = engine.decide_many("quickstart", [DecisionRequest(f"c{i}", context) for i in range(5)])
    engine.record(
        OutcomeInput(f"o{i}", "click", 1.0, clock.now(), decision_id=item.decision_id)
        for i, item in enumerate(made)
    )
    clock.advance(timedelta(days=2))
    engine.join_rewards("quickstart")
    assert engine.learn("quickstart") == 1
    code, output = invoke("experiments", "show", "quickstart", "--database-url", url)
    assert code == 0, output
    assert output.strip().endswith(
        "safe promotion, newest first:\nv1: pending: waiting for fresh rewards to judge it on"
    )
    code, output = invoke("experiments", "show", "quickstart", "--json", "--database-url", url)
    (record,) = json.loads(output)["promotions"]
    assert (record["version"], record["serving_version"], record["status"]) == (1, 0, "pending")
    assert record["candidate_value"] is None


def test_set_guardrail_actions_and_show_them(url: str) -> None:
    """``--guardrail retention:churn=alert``: the breached guardrail only alerts, and the
    engine's check leaves the experiment running; ``=stop`` again and the next check stops
    it. ``show`` and ``set`` print each guardrail's action; bad input is one line, exit 2."""
    database = open_database(url)
    decisions = breached(database, "harm")
    code, output = invoke(
        "experiments", "set", "harm", "--guardrail", "retention:churn=alert",
        "--sample-ratio", "alert", "--database-url", url,
    )  # fmt: skip
    assert code == 0, output
    assert output.strip().splitlines()[-1] == (
        "harm: guardrails: retention:churn alert, contacts stop; sample ratio alert"
    )
    checks = decisions.check_guardrails("harm")
    assert checks is not None
    assert checks.guardrails[0].status == GuardrailStatus.BREACHED
    assert decisions.get_experiment("harm").status == ExperimentStatus.RUNNING
    code, output = invoke("experiments", "show", "harm", "--database-url", url)
    assert "guardrails: retention:churn alert, contacts stop; sample ratio alert" in output

    refusals = {
        ("--guardrail", "retention=alert"): "error: guardrail_actions: has no guardrail "
        "'retention'; the guardrails are ['retention:churn', 'contacts']",
        ("--guardrail", "contacts=pause"): "error: guardrail_actions.contacts: must be one of "
        "['stop', 'alert']; got 'pause'",
        ("--guardrail", "contacts"): "error: --guardrail: expected LABEL=ACTION such as "
        "retention:churn=alert; got 'contacts'",
        ("--sample-ratio", "Alert"): "error: sample_ratio_action: must be one of ['stop', "
        "'alert']; got 'Alert'",
    }
    for args, expected in refusals.items():
        code, output = invoke("experiments", "set", "harm", *args, "--database-url", url)
        assert (code, output.strip()) == (2, expected)

    code, output = invoke(
        "experiments", "set", "harm", "--guardrail", "retention:churn=stop", "--json",
        "--database-url", url,
    )  # fmt: skip
    assert code == 0, output
    assert json.loads(output)["spec"]["guardrails"]["kpi"][0]["action"] == "stop"
    decisions.check_guardrails("harm")
    stopped = decisions.get_experiment("harm")
    assert stopped.status == ExperimentStatus.PAUSED
    assert stopped.stop_reason is not None
    assert stopped.stopped_at is not None
    code, output = invoke("experiments", "show", "harm", "--database-url", url)
    assert f"Stopped itself at {stopped.stopped_at.isoformat()}" in output
