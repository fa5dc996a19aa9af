"""The analyst's view in MLflow: lift metric names that lead MLflow's (code-unit) sort, the
links the UI lands on, and the lift metrics and description of a live report's run."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from mlflow import MlflowClient

from bandit.lift import welch_lift
from experiments.analysis.lift import LiftRow, kpi_lift_rows
from experiments.analysis.mlflow_view import (
    NOTE_TAG,
    compare_url,
    lift_metrics,
    runs_url,
    shared_view,
)
from experiments.analysis.report import LiveReport
from experiments.analysis.tracking import log_reporting_run

#: What engage's runs log besides the lifts (lowercase, as every engage metric name).
OTHER_METRICS = ["clicks", "contacts", "cumulative_regret", "engagement_minus_interaction_revenue"]


def rows() -> list[LiftRow]:
    rng = np.random.default_rng(5)
    holdout = rng.random(200) < 0.3
    spend = rng.gamma(2.0, 5.0, 200)
    measures = {"revenue": spend + rng.normal(0, 1, 200), "retention": rng.random(200)}
    return [
        *kpi_lift_rows("uniform", measures, holdout, covariates={"spend": spend}),
        *kpi_lift_rows("engagement", measures, holdout, covariates={"spend": spend}),
    ]


def test_lift_metrics_name_every_arm_and_kpi_and_sort_before_the_rest() -> None:
    lifts = rows()
    metrics = lift_metrics(lifts)
    revenue = lifts[0]
    assert metrics["Lift/revenue/uniform"] == revenue.relative_lift
    assert metrics["Lift/revenue/uniform/low"] == revenue.ci_low
    assert metrics["Lift/revenue/uniform/high"] == revenue.ci_high
    assert metrics["Lift/revenue/uniform/cuped_low"] == revenue.adjusted_ci_low
    assert metrics["Lift/revenue/uniform/narrower"] == revenue.width_reduction
    assert len(metrics) == 4 * 6
    # MLflow sorts metric columns with JavaScript's Array.sort: UTF-16 code units, which for
    # these ASCII names is Python's str order.
    ordered = sorted([*metrics, *OTHER_METRICS])
    assert ordered[: len(metrics)] == sorted(metrics)
    single = lift_metrics(lifts[:1], per_arm=False)
    assert set(single) == {
        "Lift/revenue",
        "Lift/revenue/low",
        "Lift/revenue/high",
        "Lift/revenue/cuped_low",
        "Lift/revenue/cuped_high",
        "Lift/revenue/narrower",
    }


def test_links_land_on_the_runs_and_on_the_compare_view() -> None:
    assert (
        runs_url("7") == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    )
    assert runs_url("7", address="http://[::1]:5001", view="engage-abc").endswith(
        "/#/experiments/7/runs?workflowType=machine_learning&viewStateShareKey=engage-abc"
    )
    link = compare_url("7", ["a1", "b2"])
    path, query = link.split("?", 1)
    assert path == "http://127.0.0.1:5000/#/compare-runs"
    fields = dict(part.split("=", 1) for part in query.split("&"))
    assert json.loads(unquote(fields["runs"])) == ["a1", "b2"]
    assert json.loads(unquote(fields["experiments"])) == ["7"]
    assert fields["workflowType"] == "machine_learning"


def test_shared_view_selects_the_lift_points_and_bounds_in_the_order_given() -> None:
    names = [
        "Lift/revenue/b",
        "Lift/revenue/b/cuped_low",
        "Lift/revenue/b/low",
        "Lift/accepts/a",
        "clicks",
    ]
    view = json.loads(shared_view(names))
    expected = [
        "metrics.`Lift/revenue/b`",
        "metrics.`Lift/revenue/b/low`",
        "metrics.`Lift/accepts/a`",
    ]
    assert view == {"selectedColumns": expected, "columnOrder": expected}


def test_a_live_report_run_carries_its_lift_and_the_table_as_description(tmp_path: Path) -> None:
    treatment, holdout = np.array([3.0, 5.0, 4.0, 6.0]), np.array([2.0, 3.0, 2.5])
    lift = LiftRow.from_lift("sum:revenue", "live", welch_lift(treatment, holdout))
    report = LiveReport.model_validate(
        {
            "experiment": "promo",
            "status": "running",
            "policy_version": 1,
            "kpi": "sum:revenue",
            "decisions": {"total": 7, "by_status": {}, "by_group": {}},
            "outcomes": {"total": 7, "by_attribution": {}},
            "rewards": {"total": 7, "learned": 7, "unlearned": 0},
            "groups": (),
            "lift": lift,
            "period_days": 1,
            "periods": (),
            "off_policy": None,
        }
    )
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = log_reporting_run(report, params={"experiment": "promo"}, uri=store)
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(run_id)
    assert run.data.metrics["Lift/sum:revenue"] == lift.relative_lift
    assert run.data.metrics["Lift/sum:revenue/low"] == lift.ci_low
    assert run.data.tags[NOTE_TAG].startswith("| policy | KPI |")
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
