"""CLI commands of experiments: init, run, report, evaluate, experiments, demo (typer runner)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cli_support import invoke, one_line

from experiments.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
FLAGSHIP = ROOT / "examples" / "engagement.toml"


@pytest.fixture(scope="module")
def run_database(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """A short simulated run kept in a SQLite file, tracked in a temporary MLflow store."""
    folder = tmp_path_factory.mktemp("run")
    url = f"sqlite:///{folder / 'run.db'}"
    mlflow_uri = f"sqlite:///{folder / 'mlflow.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    try:
        code, output = invoke(
            "run",
            str(FLAGSHIP),
            "--customers",
            "400",
            "--days",
            "6",
            "--arms",
            "uniform,engagement",
            "--database-url",
            url,
            "--json",
        )
    finally:
        patch.undo()
    assert code == 0, output
    return url, {"mlflow_uri": mlflow_uri, **json.loads(output)}


def test_run_reports_every_arm_and_tracks_nested_runs(run_database: tuple[str, dict]) -> None:
    _, data = run_database
    assert [arm["arm"] for arm in data["arms"]] == ["uniform", "engagement"]
    assert {row["kpi"] for row in data["lift"]} >= {"revenue", "retention"}
    # The flagship names pre-period covariates: every lift carries its CUPED interval too.
    revenue = next(row for row in data["lift"] if row["kpi"] == "revenue")
    assert revenue["covariates"] == ["spend_30d", "usage_30d"]
    assert revenue["adjusted_low"] < revenue["adjusted_difference"] < revenue["adjusted_high"]
    assert revenue["width_reduction"] is not None
    assert data["options"]["customers"] == 400
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=data["mlflow_uri"])
    parent = client.get_run(data["mlflow_run_id"])
    assert parent.data.params["customers"] == "400"
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert sorted(child.info.run_name for child in children) == ["engagement", "uniform"]
    history = client.get_metric_history(children[0].info.run_id, "contacts")
    assert [point.step for point in history] == list(range(6))
    artifacts = {item.path for item in client.list_artifacts(parent.info.run_id)}
    assert {"report.md", "report.json", "spec.toml", "lift.png", "own_regret.png"} <= artifacts
    # The analyst's view: per arm and KPI the lift and its interval on the parent, the lift
    # table as its description, a shared view of the runs table that shows them.
    for row in data["lift"]:
        stem = f"Lift/{row['kpi']}/{row['policy']}"
        for name, field in (("", "relative_lift"), ("/low", "ci_low"), ("/high", "ci_high")):
            if row[field] is not None:
                assert parent.data.metrics[stem + name] == pytest.approx(row[field], rel=1e-12)
    assert parent.data.tags["mlflow.note.content"].count("| engagement |") == 4
    experiment = client.get_experiment(parent.info.experiment_id)
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.engage-{parent.info.run_id}"])
    assert view["selectedColumns"][:3] == [
        "metrics.`Lift/revenue/uniform`",
        "metrics.`Lift/revenue/uniform/low`",
        "metrics.`Lift/revenue/uniform/high`",
    ]
    engagement = next(child for child in children if child.info.run_name == "engagement")
    revenue = next(
        row for row in data["lift"] if (row["policy"], row["kpi"]) == ("engagement", "revenue")
    )
    assert engagement.data.metrics["Lift/revenue"] == pytest.approx(revenue["relative_lift"])


def test_report_and_experiments_read_the_run_database(run_database: tuple[str, dict]) -> None:
    url, _ = run_database
    code, output = invoke("experiments", "list", "--database-url", url, "--json")
    assert code == 0, output
    keys = [row["key"] for row in json.loads(output)]
    assert keys == ["engagement-engagement", "engagement-uniform"]
    code, output = invoke(
        "report", "engagement-engagement", "--database-url", url, "--no-track", "--json"
    )
    assert code == 0, output
    report = json.loads(output)
    assert report["decisions"]["total"] > 0
    # Six simulated days are shorter than the 14-day revenue window: nothing is final yet.
    assert report["rewards"]["total"] == 0
    assert report["periods"] == []
    assert report["lift"] is None
    code, output = invoke("report", "nope", "--database-url", url, "--no-track")
    assert code == 2
    assert one_line(output).startswith("error:")


def test_run_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    code, output = invoke("run", str(tmp_path / "missing.toml"))
    assert code == 2
    assert one_line(output) == f"error: file: no spec file at '{tmp_path / 'missing.toml'}'"
    bad = tmp_path / "bad.toml"
    bad.write_text('key = "Bad Key"\n')
    code, output = invoke("run", str(bad))
    assert code == 2
    assert one_line(output).startswith("error: ")
    assert "Traceback" not in output
    code, output = invoke("run", str(FLAGSHIP), "--arms", "bogus")
    assert code == 2
    assert "unknown arm(s) ['bogus']" in one_line(output)


def test_init_writes_a_spec_once(tmp_path: Path) -> None:
    target = tmp_path / "spec.toml"
    code, _ = invoke("init", str(target))
    assert code == 0
    assert target.read_text().startswith("#") or "key" in target.read_text()
    code, output = invoke("init", str(target))
    assert code == 2
    assert one_line(output) == f"error: {target} exists; pass --force to overwrite it"


def test_init_writes_the_packaged_quickstart_verbatim(tmp_path: Path) -> None:
    target = tmp_path / "spec.toml"
    code, _ = invoke("init", str(target))
    assert code == 0
    assert target.read_bytes() == (ROOT / "examples" / "quickstart.toml").read_bytes()
    assert load_spec(target).key == "quickstart"


def test_evaluate_prints_estimates_and_refuses_logs_without_propensity(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    with log.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["action", "reward", "propensity", "x"])
        for row in range(200):
            writer.writerow(["ab"[row % 2], float(row % 3 == 0), 0.5, row % 7])
    code, output = invoke("evaluate", str(log), "--policy", "linucb", "--json")
    assert code == 0, output
    assert set(json.loads(output)["estimates"]) == {"ips", "snips", "dm", "dr"}
    code, output = invoke("evaluate", str(log), "--policy", "nonsense")
    assert code == 2
    assert "Unknown policy 'nonsense'" in one_line(output)
    bare = tmp_path / "bare.csv"
    bare.write_text("action,reward\na,1\nb,0\n")
    code, output = invoke("evaluate", str(bare), "--policy", "linucb")
    assert code == 2
    assert "has no 'propensity' column" in one_line(output)


def test_demo_prints_a_table() -> None:
    code, output = invoke("demo", "--rounds", "300")
    assert code == 0, output
    assert "linucb" in output


def test_export_writes_the_run_tables(run_database: tuple[str, dict], tmp_path: Path) -> None:
    url, _ = run_database
    code, output = invoke(
        "export", "engagement-engagement", "--database-url", url, "--out", str(tmp_path), "--json"
    )
    assert code == 0, output
    written = json.loads(output)
    assert written["decisions"]["rows"] > 0
    assert written["log"]["rows"] == 0  # no 14-day window has closed after 6 days
    assert Path(written["outcomes"]["file"]).exists()
    code, output = invoke("export", "nope", "--database-url", url, "--out", str(tmp_path))
    assert code == 2
    assert one_line(output).startswith("error:")


def test_export_refuses_to_overwrite_an_earlier_export_and_leaves_no_folder_when_it_fails(
    run_database: tuple[str, dict], tmp_path: Path
) -> None:
    url, _ = run_database
    first = invoke("export", "engagement-engagement", "--database-url", url, "--out", str(tmp_path))
    assert first[0] == 0, first[1]
    before = (tmp_path / "decisions.csv").read_bytes()
    code, output = invoke(
        "export", "engagement-uniform", "--database-url", url, "--out", str(tmp_path)
    )
    assert (code, one_line(output)) == (
        2,
        f"error: {tmp_path / 'decisions.csv'} already exists (an earlier export); pass "
        "--force to overwrite it, or choose another --out",
    )
    assert (tmp_path / "decisions.csv").read_bytes() == before
    code, output = invoke(
        "export", "engagement-uniform", "--database-url", url, "--out", str(tmp_path), "--force"
    )
    assert code == 0, output
    assert (tmp_path / "decisions.csv").read_bytes() != before
    assert not list(tmp_path.glob(".*.partial"))
    fresh = tmp_path / "fresh"
    code, output = invoke("export", "nope", "--database-url", url, "--out", str(fresh))
    assert code == 2
    assert not fresh.exists()


def test_purge_and_erase(run_database: tuple[str, dict]) -> None:
    url, _ = run_database
    code, output = invoke("purge", "--before", "not-a-date", "--database-url", url)
    assert code == 2
    assert one_line(output) == (
        "error: --before 'not-a-date' is not an ISO date or time (e.g. 2026-01-01)"
    )
    code, output = invoke("purge", "--before", "2000-01-01", "--database-url", url, "--json")
    assert code == 0, output
    assert json.loads(output)["purged_contexts"] == 0
    code, output = invoke("erase", "c1", "--database-url", url, "--json")
    assert code == 0, output
    assert json.loads(output)["decisions"] >= 0
    # The store's own ValueError (it names the field) is one line and exit code 2 too.
    code, output = invoke("erase", "", "--database-url", url)
    assert code == 2
    assert one_line(output) == "error: customer_id must not be empty"
