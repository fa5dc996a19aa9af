"""The CLI's view of the checks: ``engage experiments show`` and ``engage report`` say that
an experiment stopped itself, when and why, and flag a broken split (terminal, --json and the
MLflow report run); ``engage experiments resume`` clears the stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import invoke, one_line

from bench.guardrails import run_experiment, split_log


def test_show_report_and_resume_a_stopped_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'guarded.db'}"
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    run = run_experiment(url, seed=0, harmful=True, customers=2000, days=20)
    assert run.reason is not None
    code, output = invoke("experiments", "show", "guarded", "--database-url", url)
    assert code == 0, output
    assert "(paused)" in output
    assert "Stopped itself at 2026-01-" in one_line(output)
    assert one_line(run.reason) in one_line(output)
    assert "engage experiments resume guarded" in one_line(output)

    code, output = invoke("report", "guarded", "--no-track", "--database-url", url)
    assert code == 0, output
    text = one_line(output)
    assert text.index("STOPPED ITSELF at") < text.index("split:") < text.index("guardrails")
    assert "retention:churn" in text
    assert "breached (stop)" in text
    checks = output[: output.index("lift vs holdout")].splitlines()[:-1]
    assert max(len(line) for line in checks) <= 80  # the checks wrap at 80 columns

    code, output = invoke("report", "guarded", "--json", "--database-url", url)
    data = json.loads(output)
    assert data["stop_reason"] == run.reason
    assert data["checks"]["guardrails"][0]["status"] == "breached"
    from mlflow.tracking import MlflowClient

    tags = MlflowClient(tracking_uri=mlflow_uri).get_run(data["mlflow_run_id"]).data.tags
    assert (tags["engage.stopped"], tags["engage.stop_reason"]) == ("true", run.reason)
    assert tags["engage.stopped_at"] == data["stopped_at"].replace("Z", "+00:00")
    assert tags["engage.guardrail.retention:churn"] == "breached"

    code, output = invoke("experiments", "resume", "guarded", "--json", "--database-url", url)
    assert code == 0, output
    resumed = json.loads(output)
    assert (resumed["status"], resumed["stop_reason"]) == ("running", None)
    assert resumed["resumed_at"] is not None
    code, output = invoke("experiments", "show", "guarded", "--database-url", url)
    assert "Resumed by an admin at" in output
    assert "Stopped itself" not in output


def test_every_report_flags_a_broken_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Terminal, --json and the MLflow report run of one log hashed at 5% for a spec at 10%."""
    url = f"sqlite:///{tmp_path / 'split.db'}"
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    assert split_log(url, seed=3, broken=True, customers=2000)[0]
    code, output = invoke("report", "split-3", "--database-url", url)
    assert code == 0, output
    assert one_line(output).startswith("SPLIT: sample-ratio mismatch: ")
    code, output = invoke("report", "split-3", "--json", "--database-url", url)
    data = json.loads(output)
    assert data["checks"]["sample_ratio"]["mismatch"] is True
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=mlflow_uri).get_run(data["mlflow_run_id"])
    assert run.data.tags["engage.srm"] == "mismatch"
    assert run.data.tags["engage.stopped"] == "false"
    assert not [tag for tag in run.data.tags if tag.startswith("engage.guardrail.")]
