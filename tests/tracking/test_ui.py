"""``engage ui``: refuses unsafe binds in one line, and really serves the tracked runs.

The last test starts the real ``engage ui`` on a free loopback port over a store where a run
was logged, and reads that run back through MLflow's REST API.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cli_support import one_line, runner
from ui_support import free_port, stop, wait_until_up

from cli.main import app
from experiments.analysis.tracking import Tracker
from experiments.analysis.tracking_store import ui_command

ENGAGE = str(Path(sys.executable).parent / "engage")
STARTUP_TIMEOUT = 60.0  # mlflow server takes 10-25 s to start on a busy 2-core machine
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - refused, never bound


class ExecReachedError(Exception):
    """Raised by the fake os.execve so the command stops where the real one would exec."""


def test_ui_refuses_a_non_loopback_host() -> None:
    result = runner.invoke(app, ["ui", "--host", ALL_INTERFACES])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert one_line(result.stderr) == (
        f"error: --host {ALL_INTERFACES} is not a loopback address; pass --allow-remote to bind it"
    )


def test_ui_refuses_a_tracking_server_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:secret@tracking.example:5000")
    result = runner.invoke(app, ["ui"])
    assert result.exit_code == 2
    assert one_line(result.stderr) == (
        "error: MLFLOW_TRACKING_URI is a tracking server "
        "(http://user:***@tracking.example:5000); open it in a browser instead"
    )


def test_ui_execs_mlflow_server_on_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    calls = []

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((path, argv, env))
        raise ExecReachedError

    monkeypatch.setattr("cli.ui.os.execve", fake_execve)
    result = runner.invoke(app, ["ui", "--port", "5123"])
    assert isinstance(result.exception, ExecReachedError), result.output
    assert one_line(result.stdout) == (
        f"MLflow UI on http://127.0.0.1:5123 (store {store}); Ctrl-C stops it"
    )
    ((path, argv, env),) = calls
    assert path == sys.executable
    assert argv == [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        store,
        "--default-artifact-root",
        (tmp_path / "artifacts").as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        "5123",
        "--workers",
        "1",
    ]
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_ui_command_leaves_artifacts_to_a_database_server() -> None:
    command = ui_command("127.0.0.1", 5000, "postgresql://u:p@db.example/mlflow")
    assert "--default-artifact-root" not in command
    assert command[command.index("--backend-store-uri") + 1] == "postgresql://u:p@db.example/mlflow"


def test_engage_ui_serves_logged_runs_over_rest(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with Tracker(
        "ui-check",
        run_name="compare",
        params={"policy": {"name": "linucb", "alpha": 0.5}, "seed": 3},
        uri=store,
    ) as tracker:
        tracker.log_metrics({"reward": 1.5}, step=0)
        tracker.log_text("# report\n", "report.md")

    port = free_port()
    environment = {**os.environ, "MLFLOW_TRACKING_URI": store}
    stdout_file, stderr_file = tmp_path / "ui.out", tmp_path / "ui.err"
    with stdout_file.open("wb") as stdout, stderr_file.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
            [ENGAGE, "ui", "--port", str(port)],
            env=environment,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: mlflow server and uvicorn die with it
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base, stderr_file, timeout=STARTUP_TIMEOUT, poll=0.25)

        assert f"MLflow UI on {base}" in one_line(stdout_file.read_text())
        response = httpx.get(
            f"{base}/api/2.0/mlflow/runs/get",
            params={"run_id": tracker.parent_run_id},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        run = response.json()["run"]
        assert run["info"]["run_name"] == "compare"
        assert run["info"]["status"] == "FINISHED"
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        assert params == {"policy.name": "linucb", "policy.alpha": "0.5", "seed": "3"}
        assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"reward": 1.5}

        listed = httpx.get(
            f"{base}/api/2.0/mlflow/artifacts/list",
            params={"run_id": tracker.parent_run_id},
            timeout=10,
        )
        assert listed.status_code == 200, listed.text
        assert [f["path"] for f in listed.json()["files"]] == ["report.md"]
    finally:
        stop(process)
