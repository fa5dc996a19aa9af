"""Runs logged through experiments.analysis.tracking read back through MLflow's own client.

A temporary SQLite store per module (MLFLOW_TRACKING_URI in tmp): one comparison run with two
nested policy runs, checked for the experiment, the parent/child links, the flattened params,
the metric history step by step, and the artifacts byte for byte.
"""

from __future__ import annotations

import ast
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from experiments.analysis.plots import cumulative_curves
from experiments.analysis.report import LiveReport, live_report_markdown
from experiments.analysis.tracking import Tracker, log_reporting_run
from experiments.analysis.tracking_params import (
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    clean_key,
    flatten_params,
)
from experiments.analysis.tracking_store import (
    TrackingError,
    artifact_root,
    git_commit,
    tracking_uri,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LONG_VALUE = "x" * (MAX_PARAM_VALUE_LENGTH + 500)

SPEC = {
    "name": "engagement",
    "policy": {"name": "linear_ts", "params": {"scale": 0.5, "prior": 1.0}},
    "factors": {"channel": ["email", "sms"]},
    "holdout": {"share": 0.1, "enabled": True},
    "notes": LONG_VALUE,
}
REWARD = {  # per policy: the reward logged each day (steps 0..3)
    "uniform": [0.10, 0.20, 0.30, 0.40],
    "linear_ts": [0.15, 0.35, 0.55, 0.75],
}
REGRET_DAY_WITHOUT_VALUE = 2  # regret is NaN on that day and must not be logged


@dataclass(frozen=True)
class Logged:
    uri: str
    store_dir: Path
    experiment_name: str
    parent_run_id: str
    child_run_ids: dict[str, str]


def client_for(uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    """A comparison run with two nested policy runs in a fresh store, logged once per module."""
    store_dir = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{store_dir / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        children = {}
        with Tracker(
            "engagement",
            run_name="compare policies",
            params={"spec": SPEC, "seed": 7, "population": 1000},
            tags={"engage.spec_file": "engagement.toml"},
        ) as tracker:
            for policy, rewards in REWARD.items():
                with tracker.child(
                    policy, params={"policy": policy, "alpha": 0.1}, tags={"engage.arm": policy}
                ) as child:
                    for day, reward in enumerate(rewards):
                        regret = math.nan if day == REGRET_DAY_WITHOUT_VALUE else 1.0 - reward
                        child.log_metrics(
                            {"reward": reward, "regret": regret, "ctr": None}, step=day
                        )
                    child.log_dict(
                        {"policy": policy, "lift": np.float32(0.25), "ci": (0.1, 0.4)},
                        "lift/lift.json",
                    )
                    children[policy] = child.run_id
            tracker.log_text("# Lift report\n\nlinear_ts beats uniform.\n", "report.md")
            tracker.log_figure(
                cumulative_curves(
                    {policy: np.asarray(r) for policy, r in REWARD.items()},
                    title="Cumulative reward",
                    ylabel="reward",
                ),
                "figures/cumulative_reward.png",
            )
            tracker.log_metrics({"best_policy_reward": 2.2}, step=3)
        yield Logged(uri, store_dir, "engagement", tracker.parent_run_id, children)


def test_experiment_keeps_its_artifacts_beside_the_store(logged: Logged) -> None:
    experiment = client_for(logged.uri).get_experiment_by_name(logged.experiment_name)
    assert experiment is not None
    assert experiment.lifecycle_stage == "active"
    assert experiment.artifact_location == (logged.store_dir / "artifacts").as_uri()


def test_parent_and_nested_runs(logged: Logged) -> None:
    client = client_for(logged.uri)
    parent = client.get_run(logged.parent_run_id)
    assert parent.info.run_name == "compare policies"
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["engage.kind"] == "run"
    assert parent.data.tags["engage.spec_file"] == "engagement.toml"
    assert "mlflow.parentRunId" not in parent.data.tags

    nested = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{logged.parent_run_id}'",
    )
    assert {run.info.run_name: run.info.run_id for run in nested} == logged.child_run_ids
    for run in nested:
        assert run.info.status == "FINISHED"
        assert run.data.tags["engage.kind"] == "policy"
        assert run.data.tags["engage.arm"] == run.info.run_name


def test_params_are_flattened_and_truncated(logged: Logged) -> None:
    client = client_for(logged.uri)
    params = client.get_run(logged.parent_run_id).data.params
    assert params["spec.policy.params.scale"] == "0.5"
    assert params["spec.policy.name"] == "linear_ts"
    assert params["spec.factors.channel"] == '["email", "sms"]'
    assert params["spec.holdout.enabled"] == "true"
    assert params["seed"] == "7"
    assert params["population"] == "1000"
    assert len(params["spec.notes"]) == MAX_PARAM_VALUE_LENGTH
    assert params["spec.notes"].endswith("...")

    child = client.get_run(logged.child_run_ids["linear_ts"]).data.params
    assert child == {"policy": "linear_ts", "alpha": "0.1"}


def test_metrics_by_day(logged: Logged) -> None:
    client = client_for(logged.uri)
    for policy, rewards in REWARD.items():
        run_id = logged.child_run_ids[policy]
        history = sorted(client.get_metric_history(run_id, "reward"), key=lambda m: m.step)
        assert [m.step for m in history] == [0, 1, 2, 3]
        assert [m.value for m in history] == pytest.approx(rewards, abs=0)

        regret = sorted(client.get_metric_history(run_id, "regret"), key=lambda m: m.step)
        assert [m.step for m in regret] == [0, 1, 3]  # NaN on day 2 was skipped
        expected = [1.0 - r for day, r in enumerate(rewards) if day != REGRET_DAY_WITHOUT_VALUE]
        assert [m.value for m in regret] == pytest.approx(expected, abs=0)

        assert client.get_metric_history(run_id, "ctr") == []  # None is never logged

    parent_history = client.get_metric_history(logged.parent_run_id, "best_policy_reward")
    assert [(m.step, m.value) for m in parent_history] == [(3, 2.2)]


def test_artifacts_round_trip(logged: Logged, tmp_path: Path) -> None:
    client = client_for(logged.uri)
    parent_files = {f.path for f in client.list_artifacts(logged.parent_run_id)}
    assert parent_files == {"report.md", "figures"}
    figures = [f.path for f in client.list_artifacts(logged.parent_run_id, "figures")]
    assert figures == ["figures/cumulative_reward.png"]

    report = Path(client.download_artifacts(logged.parent_run_id, "report.md", str(tmp_path)))
    assert report.read_text() == "# Lift report\n\nlinear_ts beats uniform.\n"
    png = Path(client.download_artifacts(logged.parent_run_id, figures[0], str(tmp_path)))
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert png.stat().st_size > 5_000

    child_id = logged.child_run_ids["uniform"]
    path = client.download_artifacts(child_id, "lift/lift.json", str(tmp_path / "child"))
    assert json.loads(Path(path).read_text()) == {
        "policy": "uniform",
        "lift": 0.25,
        "ci": [0.1, 0.4],
    }
    # The files sit where the experiment says, under the store's artifacts directory.
    assert (logged.store_dir / "artifacts" / child_id / "artifacts" / "lift" / "lift.json").exists()


def test_exception_marks_parent_and_child_failed(
    logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    with (
        pytest.raises(RuntimeError, match="simulation broke"),
        Tracker("failing", run_name="broken", params={}) as tracker,
        tracker.child("uniform", params={}) as child,
    ):
        raise RuntimeError("simulation broke")
    client = client_for(logged.uri)
    assert client.get_run(tracker.parent_run_id).info.status == "FAILED"
    assert client.get_run(child.run_id).info.status == "FAILED"


def test_parent_ends_children_left_open(logged: Logged) -> None:
    with Tracker("open-children", run_name="r", params={}, uri=logged.uri) as tracker:
        child = tracker.child("uniform", params={})  # no `with`: the parent must end it
    assert client_for(logged.uri).get_run(child.run_id).info.status == "FINISHED"


def live_report(key: str, periods: list[tuple[int, int, float]]) -> LiveReport:
    """A report of experiment ``key`` with ``(period, rewards, lift)`` periods, nothing else."""
    return LiveReport.model_validate(
        {
            "experiment": key,
            "status": "running",
            "policy_version": 3,
            "kpi": "event:revenue",
            "decisions": {"total": 0, "by_status": {}, "by_group": {}},
            "outcomes": {"total": 0, "by_attribution": {}},
            "rewards": {"total": 0, "learned": 0, "unlearned": 0},
            "groups": [],
            "lift": None,
            "period_days": 7,
            "periods": [
                {
                    "period": period,
                    "rewards": rewards,
                    "mean_reward_treatment": None,
                    "mean_reward_holdout": None,
                    "lift": lift,
                }
                for period, rewards, lift in periods
            ],
            "off_policy": None,
        }
    )


def test_reporting_run_logs_metrics_by_period(logged: Logged, tmp_path: Path) -> None:
    report = live_report(
        "engagement-live", [(1, 1200, 0.02), (2, 2500, 0.035), (3, 3900, math.nan)]
    )
    run_id = log_reporting_run(
        report,
        params={"experiment": {"key": "engagement", "holdout_share": 0.1}},
        uri=logged.uri,
    )
    client = client_for(logged.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["engage.kind"] == "report"
    assert re.fullmatch(r"report \d{4}-\d\d-\d\d \d\d:\d\d UTC", run.info.run_name)
    assert run.data.params == {"experiment.key": "engagement", "experiment.holdout_share": "0.1"}
    lift = sorted(client.get_metric_history(run_id, "lift"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in lift] == [(1, 0.02), (2, 0.035)]
    rewards = sorted(client.get_metric_history(run_id, "rewards"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in rewards] == [(1, 1200), (2, 2500), (3, 3900)]
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "engagement-live"

    assert {f.path for f in client.list_artifacts(run_id)} == {"report.md", "report.json"}
    saved = client.download_artifacts(run_id, "report.json", str(tmp_path))
    assert json.loads(Path(saved).read_text()) == report.to_json()
    markdown = client.download_artifacts(run_id, "report.md", str(tmp_path))
    assert Path(markdown).read_text() == live_report_markdown(report)


def test_deleted_experiment_is_a_readable_error(logged: Logged) -> None:
    client = client_for(logged.uri)
    client.delete_experiment(client.create_experiment("retired"))
    with (
        pytest.raises(TrackingError, match="experiment 'retired' is deleted; restore it"),
        Tracker("retired", run_name="r", params={}, uri=logged.uri),
    ):
        pass


def test_unreachable_server_is_a_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with (
        pytest.raises(
            TrackingError, match=r"^MLflow could not start a run .* http://127\.0\.0\.1:9"
        ),
        Tracker("x", run_name="r", params={}, uri="http://127.0.0.1:9"),
    ):
        pass


def test_default_store_is_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert tracking_uri() == tracking_uri(tmp_path)
    assert (tmp_path / "mlruns" / "artifacts").is_dir()
    assert artifact_root(tmp_path) == (tmp_path / "mlruns" / "artifacts").as_uri()

    with Tracker("default-store", run_name="r", params={"seed": 1}) as tracker:
        tracker.log_text("hello", "hello.txt")
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    saved = tmp_path / "mlruns" / "artifacts" / tracker.parent_run_id / "artifacts" / "hello.txt"
    assert saved.read_text() == "hello"


def test_tracking_uri_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking_uri() == "http://tracking.example:5000"


def test_parent_run_id_needs_a_started_tracker() -> None:
    with pytest.raises(RuntimeError, match="`with` block"):
        _ = Tracker("x", run_name="r", params={}).parent_run_id


# --------------------------------------------------------------------------- pure helpers


def test_flatten_params() -> None:
    flat = flatten_params(
        {
            "policy": {"name": "linucb", "params": {"alpha": 0.5, "ridge": 1}},
            "rules": [{"offer": "data_bundle", "channel": "email"}, {"offer": "voice"}],
            "levels": ("a", "b"),
            "flags": {"nurture": True, "fatigue": False, "limit": None},
            "numpy": {"mean": np.float64(0.25), "count": np.int64(3), "grid": np.arange(3)},
            "empty": {},
            "bad key!": "v",
        }
    )
    assert flat == {
        "policy.name": "linucb",
        "policy.params.alpha": "0.5",
        "policy.params.ridge": "1",
        "rules.0.offer": "data_bundle",
        "rules.0.channel": "email",
        "rules.1.offer": "voice",
        "levels": '["a", "b"]',
        "flags.nurture": "true",
        "flags.fatigue": "false",
        "flags.limit": "null",
        "numpy.mean": "0.25",
        "numpy.count": "3",
        "numpy.grid": "[0, 1, 2]",
        "empty": "{}",
        "bad key_": "v",
    }


def test_flatten_truncates_to_mlflow_limit() -> None:
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    assert MAX_PARAM_VALUE_LENGTH == MAX_PARAM_VAL_LENGTH
    exact = "y" * MAX_PARAM_VALUE_LENGTH
    assert flatten_params({"a": exact}) == {"a": exact}
    cut = flatten_params({"a": exact + "z"})["a"]
    assert len(cut) == MAX_PARAM_VALUE_LENGTH
    assert cut == "y" * (MAX_PARAM_VALUE_LENGTH - 3) + "..."


def test_long_names_are_cut_to_mlflow_key_limit_and_stay_distinct() -> None:
    """A param or metric name over MLflow's limit made it refuse the whole batch, after the
    simulation: names are cut to the limit with a hash of the whole name."""
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH

    assert MAX_KEY_LENGTH == MAX_ENTITY_KEY_LENGTH
    exact = "k" * MAX_KEY_LENGTH
    assert clean_key(exact) == exact
    first, second = clean_key(exact + "a"), clean_key(exact + "b")
    assert len(first) == len(second) == MAX_KEY_LENGTH
    assert first != second
    assert first.startswith("k" * (MAX_KEY_LENGTH - 9) + "~")
    flat = flatten_params({"spec": {"factors": {"f" * 5_000: ["a", "b"]}}})
    assert [len(key) for key in flat] == [MAX_KEY_LENGTH]


def test_git_commit(tmp_path: Path) -> None:
    commit = git_commit(ROOT)
    if (ROOT / ".git").exists():
        assert commit is not None
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
    assert git_commit(tmp_path) is None


# --------------------------------------------------------------------------- import cost


def run_python(code: str) -> str:
    done = subprocess.run(  # noqa: S603 - this interpreter with a fixed snippet
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_tracking_does_not_import_mlflow() -> None:
    code = "import sys, experiments.analysis.tracking; print('mlflow' in sys.modules)"
    assert run_python(code) == "False"


def test_engage_help_does_not_import_mlflow() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        "for args in (['--help'], ['ui', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "print('mlflow' in sys.modules)"
    )
    assert run_python(code) == "False"


def test_only_the_tracking_module_imports_mlflow() -> None:
    importers = set()
    for package in ("bandit", "experiments", "cli"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                if any(name.split(".")[0] == "mlflow" for name in names):
                    importers.add(str(path.relative_to(ROOT)))
    assert importers == {"experiments/analysis/tracking.py"}
