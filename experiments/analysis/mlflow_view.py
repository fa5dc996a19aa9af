"""What an analyst sees of engage in MLflow's UI: lift metrics named to sort first, the run's
description, and links that land on the runs and on the comparison of the arms.

No ``mlflow`` import: names, tags and URLs only (:mod:`experiments.analysis.tracking` logs).

**Metric names.** MLflow's runs table and compare view order metric columns by plain string
sort (JavaScript's ``Array.sort``: code-unit order, so capitals come before lowercase), and the
compare view opens on the first. engage's lift metrics start with a capital, ``Lift/``, so they
lead every other metric (all lowercase), and MLflow's charts group them in one "Lift" section
(it groups by the part before ``/``)::

    Lift/<kpi>/<arm>             relative lift over the holdout (0.05 = +5%)
    Lift/<kpi>/<arm>/low, /high  its 95% interval (delta method)
    Lift/<kpi>/<arm>/cuped_low, /cuped_high, /narrower
                                 the CUPED-adjusted interval and its width reduction

On a run of one arm (or a live report) the ``/<arm>`` part is left out.

**Description.** MLflow shows the tag ``mlflow.note.content`` (markdown) as the run's
description; engage writes the lift table there, so the comparison is on the run's page.

**Landing.** MLflow 3.17 opens an experiment on its GenAI overview unless the URL says
``workflowType=machine_learning`` (the UI is a hash router: the query follows ``#/...``); the
experiment tag ``mlflow.experimentKind`` is set as well, though 3.17.2 did not land by it alone.
The runs table shows no metric column until one is picked; a *shared view* picks them: the
experiment tag ``mlflow.sharedViewState.<key>`` holds the view as JSON (the runs table's
``selectedColumns``, each ``metrics.`<name>```), and ``viewStateShareKey=<key>`` in the URL
opens it (:func:`shared_view`; MLflow's own "Share" button writes the same tag).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from experiments.analysis.lift import LiftRow

__all__ = [
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "LIFT_PREFIX",
    "NOTE_TAG",
    "SHARED_VIEW_TAG",
    "UI_ADDRESS",
    "compare_url",
    "lift_metrics",
    "runs_url",
    "shared_view",
    "view_key",
]

#: The first part of every lift metric's name (see the module docstring).
LIFT_PREFIX = "Lift"
#: The tag MLflow shows as a run's description (markdown).
NOTE_TAG = "mlflow.note.content"
#: The experiment tag MLflow's UI reads for the kind of an experiment, and engage's kind.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: Where ``engage ui`` serves by default.
UI_ADDRESS = "http://127.0.0.1:5000"
_MACHINE_LEARNING = "workflowType=machine_learning"
#: The prefix of the experiment tag that holds a shared view of the runs table.
SHARED_VIEW_TAG = "mlflow.sharedViewState."


def lift_metrics(rows: Iterable[LiftRow], *, per_arm: bool = True) -> dict[str, float | None]:
    """The lift metrics of ``rows`` (module docstring); ``per_arm`` names each row's policy
    in the metric (a parent run comparing arms), else not (a run of one arm). Undefined
    values are None (the tracker skips them)."""
    metrics: dict[str, float | None] = {}
    for row in rows:
        stem = f"{LIFT_PREFIX}/{row.kpi}" + (f"/{row.policy}" if per_arm else "")
        metrics[stem] = row.relative_lift
        metrics[f"{stem}/low"] = row.ci_low
        metrics[f"{stem}/high"] = row.ci_high
        if row.covariates:
            metrics[f"{stem}/cuped_low"] = row.adjusted_ci_low
            metrics[f"{stem}/cuped_high"] = row.adjusted_ci_high
            metrics[f"{stem}/narrower"] = row.width_reduction
    return metrics


def view_key(run_id: str) -> str:
    """The share key of the runs-table view made for run ``run_id``."""
    return f"engage-{run_id}"


def shared_view(metrics: Iterable[str]) -> str:
    """The JSON of a runs-table view (the value of the tag ``SHARED_VIEW_TAG + key``) whose
    columns are the lift metrics among ``metrics`` (each point with its 95% bounds; the CUPED
    ones stay on the run's page), in the order given: give the experiment's own KPI first,
    and its columns lead the table (``columnOrder``; MLflow would sort them by name)."""
    columns = [
        f"metrics.`{name}`"
        for name in metrics
        if name.startswith(f"{LIFT_PREFIX}/")
        and not name.rsplit("/", 1)[-1].startswith(("cuped_", "narrower"))
    ]
    return json.dumps({"selectedColumns": columns, "columnOrder": columns}, separators=(",", ":"))


def runs_url(experiment_id: str, *, address: str = UI_ADDRESS, view: str | None = None) -> str:
    """The MLflow UI page of an experiment's runs, as a model-training experiment, in the
    shared view ``view`` (a :func:`view_key`) when given."""
    shared = f"&viewStateShareKey={quote(view)}" if view is not None else ""
    return f"{address}/#/experiments/{experiment_id}/runs?{_MACHINE_LEARNING}{shared}"


def compare_url(experiment_id: str, run_ids: Sequence[str], *, address: str = UI_ADDRESS) -> str:
    """The MLflow UI's compare view of ``run_ids`` (the arms of one run)."""
    runs = quote(json.dumps(list(run_ids), separators=(",", ":")))
    experiments = quote(json.dumps([experiment_id], separators=(",", ":")))
    return f"{address}/#/compare-runs?runs={runs}&experiments={experiments}&{_MACHINE_LEARNING}"
