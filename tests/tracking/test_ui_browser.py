"""``engage ui`` in a real headless Chromium: the page a link of ``engage run`` lands on
shows the run's arms and their lift metrics, not MLflow's GenAI overview.

Chromium is Debian's ``chromium`` package, installed here with apt-get when it is missing;
the test is skipped (with the reason) when it cannot be installed, and fails instead under
``CI=true``. The screenshot is kept in ``tests/artifacts/`` (git-ignored) and its path printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner
from ui_support import free_port, stop, wait_until_up

from cli.main import app

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
FLAGSHIP = ROOT / "examples" / "engagement.toml"
ARMS = ("uniform", "engagement")
STARTUP_TIMEOUT = 90.0
#: Virtual milliseconds Chromium lets the page run (network waits pause this clock).
PAGE_BUDGET_MS = "30000"


def unavailable(reason: str) -> None:
    """Skip with ``reason``; under CI=true the browser test is required, so fail."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    """The path of Debian's chromium, installed with apt-get when missing."""
    found = shutil.which("chromium")
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        unavailable("chromium is not installed and apt-get cannot run here (not root)")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", "chromium"]):
        done = subprocess.run(  # noqa: S603 - apt-get with fixed arguments
            command, env=environment, capture_output=True, text=True, timeout=900, check=False
        )
        if done.returncode != 0:
            unavailable(f"could not install chromium: {done.stderr.strip()[-300:]}")
    found = shutil.which("chromium")
    if found is None:
        unavailable("apt-get installed chromium but it is not on PATH")
    return str(found)


def browse(chromium: str, url: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our browser, fixed arguments
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace for the sandbox
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1800,1100",
            f"--virtual-time-budget={PAGE_BUDGET_MS}",
            *options,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_runs_page_shows_the_arms_and_their_lift_metrics(
    chromium: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(FLAGSHIP),
            *("--customers", "300", "--days", "3", "--arms", ",".join(ARMS)),
            *("--no-oracles", "--jobs", "1"),
        ],
    )
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    runs_link = printed.split("Runs in MLflow: ")[1].split()[0]
    compare_link = printed.split("Arms side by side: ")[1].split()[0]
    assert "/runs?workflowType=machine_learning&viewStateShareKey=engage-" in runs_link

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = tmp_path / "ui.log"
    with logs.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - this worktree's engage, fixed arguments
            [
                sys.executable,
                "-c",
                "from cli.main import entry; entry()",
                "ui",
                "--port",
                str(port),
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(process, base, logs, timeout=STARTUP_TIMEOUT)
        ui_output = " ".join(logs.read_text().split())
        runs_url = runs_link.replace("http://127.0.0.1:5000", base)
        assert f"Runs in MLflow: {runs_url}" in ui_output
        assert f"Arms side by side: {compare_link.replace('http://127.0.0.1:5000', base)}" in (
            ui_output
        )

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "mlflow_runs.png"
        shot.unlink(missing_ok=True)  # the size check below must see this run's screenshot
        # One page load gives both the DOM and the screenshot (one Chromium start fewer).
        page = browse(chromium, runs_url, "--dump-dom", f"--screenshot={shot}")
        assert page.returncode == 0, page.stderr[-2000:]
        dom = page.stdout
        (ARTIFACTS / "mlflow_runs.html").write_text(dom)
        print(f"screenshot of the runs page: {shot}")
        assert shot.stat().st_size > 10_000
        # The shared view's columns: the experiment's KPI (revenue) leads, every arm's lift.
        for arm in ARMS:
            assert f"Lift/revenue/{arm}" in dom
        assert "Lift/accepts/" not in dom  # MLflow's own order would lead with accepts
        assert "run seed=0 n=300 days=3" in dom
        assert "Detect issues" not in dom

        compare = browse(
            chromium, compare_link.replace("http://127.0.0.1:5000", base), "--dump-dom"
        )
        assert compare.returncode == 0, compare.stderr[-2000:]
        (ARTIFACTS / "mlflow_compare.html").write_text(compare.stdout)
        assert "Comparing 2 Runs from 1 Experiment" in compare.stdout
        # The parallel-coordinates plot opens on the first metric the arms logged: the lift
        # of the experiment's KPI, not `contacts`.
        metrics_control = compare.stdout.split("Metrics:", 1)[1]
        assert re.findall(r">([^<>]+)<", metrics_control)[0] == "Lift/revenue"
    finally:
        stop(process)
