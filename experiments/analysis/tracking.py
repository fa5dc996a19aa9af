"""MLflow tracking: one MLflow experiment per engage experiment, runs, metrics by day, artifacts.

The only module in engage that imports ``mlflow``, and only inside functions, once something is
tracked: ``import mlflow`` costs seconds, and ``engage --help`` must not pay it.

* :class:`Tracker` - one ``engage run``: a parent run holding the spec and the comparison across
  policies, with a nested :class:`ChildRun` per policy (tag ``mlflow.parentRunId``);
* :func:`log_reporting_run` - one run of a live experiment's report, metrics by reporting period.

Where the runs live (:func:`~experiments.analysis.tracking_store.tracking_uri`) and how params
are flattened (:mod:`experiments.analysis.tracking_params`) are in modules of their own that do
not import ``mlflow``.

Runs are driven through :class:`mlflow.MlflowClient` with explicit run ids, never through the
fluent API's process-wide "active run", so any number of runs can be open in one process.

Failures of MLflow (unreachable server, unwritable store) surface as
:class:`~experiments.analysis.tracking_store.TrackingError`, a ``ValueError``, so the CLI prints
them as one line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from experiments.analysis.guardrails import guardrail_tags
from experiments.analysis.lift import lift_table_markdown
from experiments.analysis.mlflow_view import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    NOTE_TAG,
    SHARED_VIEW_TAG,
    lift_metrics,
    shared_view,
    view_key,
)
from experiments.analysis.model import finite_or_none
from experiments.analysis.report import LiveReport, live_report_markdown
from experiments.analysis.strategies import strategy_metrics
from experiments.analysis.tracking_params import clean_key, flatten_params, plain
from experiments.analysis.tracking_store import (
    TrackingError,
    artifact_location,
    configure,
    git_commit,
    redacted,
    tracking_uri,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow import MlflowClient

__all__ = [
    "ChildRun",
    "Tracker",
    "check_store",
    "log_reporting_run",
]

_log = logging.getLogger(__name__)


def _client(uri: str) -> MlflowClient:
    configure()
    from mlflow import MlflowClient

    # mlflow configures its loggers on import; keep ours quieter than its INFO default.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def _translated(uri: str, action: str) -> Iterator[None]:
    """Re-raise MLflow's and the filesystem's failures as one readable TrackingError."""
    configure()  # before mlflow's first import: telemetry reads the environment then
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as error:
        first_line = (error.message or str(error)).strip().splitlines()[0]
        where = redacted(uri)
        raise TrackingError(f"MLflow could not {action} at {where}: {first_line}") from error
    except OSError as error:
        raise TrackingError(f"MLflow could not {action} at {redacted(uri)}: {error}") from error


def check_store(uri: str | None = None) -> str:
    """Reach the tracking store at ``uri`` (default :func:`tracking_uri`) and return it, or
    raise :class:`TrackingError` saying why not: a long simulation checks it first rather than
    learn at its end that nothing can be logged."""
    uri = uri or tracking_uri()
    with _translated(uri, "reach the tracking store"):
        _client(uri).search_experiments(max_results=1)
    return uri


def _experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    """The id of the active MLflow experiment ``name``, created if missing."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(
                name,
                artifact_location=artifact_location(uri),
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # Another process created it between our look-up and our create.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise TrackingError(
            f"the MLflow experiment '{name}' is deleted; restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) "
            "or rename the engage experiment"
        )
    return experiment.experiment_id


def _run_tags(kind: str, tags: Mapping[str, str] | None, commit: str | None) -> dict[str, str]:
    """Tags MLflow's fluent API would set, plus ``engage.kind``; the caller's tags win."""
    from mlflow.utils import mlflow_tags

    base = {
        mlflow_tags.MLFLOW_SOURCE_NAME: "engage",
        mlflow_tags.MLFLOW_SOURCE_TYPE: "LOCAL",
        "engage.kind": kind,
    }
    with contextlib.suppress(OSError, KeyError):  # no login name (some containers)
        base[mlflow_tags.MLFLOW_USER] = getpass.getuser()
    if commit is not None:
        base[mlflow_tags.MLFLOW_GIT_COMMIT] = commit
    return {**base, **{str(key): str(value) for key, value in (tags or {}).items()}}


def _status(exc_type: type[BaseException] | None) -> str:
    if exc_type is None:
        return "FINISHED"
    if issubclass(exc_type, KeyboardInterrupt):
        return "KILLED"
    return "FAILED"


# --------------------------------------------------------------------------- runs


class _Run:
    """An open MLflow run: the log_* methods shared by parent and nested runs."""

    _client: MlflowClient
    _uri: str
    run_id: str

    def log_metrics(self, metrics: Mapping[str, float | None], step: int) -> None:
        """Log ``metrics`` at ``step`` (a simulated day, a reporting period).

        None, NaN and infinite values are skipped: MLflow would store NaN as a value and
        clamp infinity to the largest float, and both break its charts.
        """
        timestamp = int(time.time() * 1000)
        from mlflow.entities import Metric

        batch = []
        for key, value in metrics.items():
            number = finite_or_none(value)
            if number is not None:
                batch.append(Metric(clean_key(str(key)), number, timestamp, int(step)))
        if batch:
            with _translated(self._uri, "log metrics"):
                self._client.log_batch(self.run_id, metrics=batch)

    def describe(self, markdown: str) -> None:
        """Make ``markdown`` the run's description (the note MLflow shows on its page)."""
        self.set_tags({NOTE_TAG: markdown})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set (or overwrite) tags on the run."""
        from mlflow.entities import RunTag

        with _translated(self._uri, "set tags"):
            self._client.log_batch(
                self.run_id, tags=[RunTag(str(key), str(value)) for key, value in tags.items()]
            )

    def log_dict(self, data: Any, artifact_file: str) -> None:
        """Save ``data`` as JSON, or YAML when ``artifact_file`` ends in .yaml/.yml.

        numpy arrays and scalars, dataclasses and tuples become plain JSON; NaN and infinity
        become null (JSON has no spelling for them).
        """
        data_json = plain(data)
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(data_json, sort_keys=False, allow_unicode=True)
        else:
            text = json.dumps(data_json, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        self.log_text(text, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Save ``text`` (the spec's TOML, a markdown report) as ``artifact_file``."""
        with _translated(self._uri, f"save {artifact_file}"):
            self._client.log_text(self.run_id, text, artifact_file)

    def log_figure(self, figure: Figure, artifact_file: str) -> None:
        """Save a matplotlib figure (format from the extension, e.g. ``figures/reward.png``)."""
        with _translated(self._uri, f"save {artifact_file}"):
            self._client.log_figure(self.run_id, figure, artifact_file)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Copy a local file (or directory) into the run's artifacts under ``artifact_path``."""
        with _translated(self._uri, f"save {local_path}"):
            self._client.log_artifact(self.run_id, str(local_path), artifact_path)

    def _end(self, status: str) -> None:
        with _translated(self._uri, "end the run"):
            self._client.set_terminated(self.run_id, status=status)


class ChildRun(_Run):
    """A nested run (one policy of an ``engage run``); ends when its ``with`` block does.

    Created by :meth:`Tracker.child`, already started: ``run_id`` is set and logging works with
    or without the ``with`` block; the parent ends any child still open when it ends.
    """

    def __init__(self, client: MlflowClient, uri: str, run_id: str, name: str) -> None:
        self._client = client
        self._uri = uri
        self.run_id = run_id
        self.name = name
        self.ended = False

    def __enter__(self) -> ChildRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end(_status(exc_type), quiet=exc_type is not None)

    def end(self, status: str = "FINISHED", *, quiet: bool = False) -> None:
        """End the run with ``status`` (FINISHED, FAILED, KILLED); a second call does nothing.

        With ``quiet``, a failure to record the end is logged instead of raised (used while an
        exception is already propagating, so it is not masked).
        """
        if self.ended:
            return
        self.ended = True
        try:
            self._end(status)
        except TrackingError:
            if not quiet:
                raise
            _log.warning("could not end MLflow run %s", self.run_id, exc_info=True)


class Tracker(_Run):
    """One ``engage run`` in MLflow: a parent run with a nested run per policy.

    ``with Tracker("engagement", run_name="compare", params=spec) as tracker:`` finds or creates
    the MLflow experiment ``experiment_name`` and starts the parent run with ``params``
    flattened (:func:`flatten_params`) and ``tags``; :meth:`child` starts a nested run. Leaving
    the block ends the parent as FINISHED, or FAILED when an exception escapes (KILLED on
    Ctrl-C), and ends any child still open the same way. ``uri`` defaults to
    :func:`tracking_uri`. Nothing touches MLflow before ``__enter__``.
    """

    def __init__(
        self,
        experiment_name: str,
        *,
        run_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
        uri: str | None = None,
    ) -> None:
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.params = params
        self.tags = tags
        self.uri = uri
        self._children: list[ChildRun] = []
        self._started = False

    @property
    def parent_run_id(self) -> str:
        """The parent run's id (available inside the ``with`` block)."""
        if not self._started:
            raise RuntimeError("the Tracker has not started; use it in a `with` block")
        return self.run_id

    def __enter__(self) -> Tracker:
        if self._started:
            raise RuntimeError("a Tracker records one run; create a new one for the next")
        self._uri = self.uri or tracking_uri()
        self._commit = git_commit()
        flat = flatten_params(self.params)
        with _translated(self._uri, f"start a run of experiment '{self.experiment_name}'"):
            self._client = _client(self._uri)
            self.experiment_id = _experiment_id(self._client, self.experiment_name, self._uri)
            run = self._client.create_run(
                self.experiment_id,
                run_name=self.run_name,
                tags=_run_tags("run", self.tags, self._commit),
            )
        self.run_id = run.info.run_id
        self._started = True
        try:
            with _translated(self._uri, "log the run's params"):
                _log_params(self._client, self.run_id, flat)
        except BaseException:
            # __exit__ does not run when __enter__ raises: end the run here.
            with contextlib.suppress(TrackingError):
                self._end("FAILED")
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        status = _status(exc_type)
        failing = exc_type is not None
        for child in self._children:
            child.end(status, quiet=failing)
        try:
            self._end(status)
        except TrackingError:
            if not failing:
                raise
            _log.warning("could not end MLflow run %s", self.run_id, exc_info=True)

    def share_view(self, metrics: Iterable[str]) -> None:
        """Store a runs-table view showing the lift metrics among ``metrics`` on the
        experiment, under this run's :func:`~experiments.analysis.mlflow_view.view_key`."""
        tag = SHARED_VIEW_TAG + view_key(self.parent_run_id)
        with _translated(self._uri, "share the runs view"):
            self._client.set_experiment_tag(self.experiment_id, tag, shared_view(metrics))

    def child(
        self,
        name: str,
        *,
        params: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
    ) -> ChildRun:
        """Start a nested run ``name`` under the parent, with ``params`` flattened."""
        run_id = self.parent_run_id
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        child_tags = _run_tags(
            "policy", {**(tags or {}), MLFLOW_PARENT_RUN_ID: run_id}, self._commit
        )
        flat = flatten_params(params)
        with _translated(self._uri, f"start the nested run '{name}'"):
            run = self._client.create_run(self.experiment_id, run_name=name, tags=child_tags)
            _log_params(self._client, run.info.run_id, flat)
        created = ChildRun(self._client, self._uri, run.info.run_id, name)
        self._children.append(created)
        return created


def _log_params(client: MlflowClient, run_id: str, flat: Mapping[str, str]) -> None:
    from mlflow.entities import Param

    if flat:  # log_batch splits into MLflow's 100-params-per-request batches itself
        client.log_batch(run_id, params=[Param(key, value) for key, value in flat.items()])


def log_reporting_run(
    report: LiveReport,
    *,
    params: Mapping[str, Any],
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    uri: str | None = None,
) -> str:
    """Log a live experiment's report as one run of its MLflow experiment; return the run's id.

    The MLflow experiment is named after the engage experiment (``report.experiment``). Each
    period's metrics are logged at ``step=period`` (undefined ones skipped, as in
    :meth:`ChildRun.log_metrics`); the report is saved as ``report.md`` and as ``report.json``,
    the JSON that ``GET /v1/experiments/{key}/report`` and ``engage report --json`` give. The
    run is named ``report <UTC time>`` unless ``run_name`` is given; it is tagged
    ``engage.kind=report``, and with the checks' tags (:func:`guardrail_tags`: stopped, why,
    the split, each guardrail's status).
    """
    experiment_name = report.experiment
    resolved = uri or tracking_uri()
    name = run_name or f"report {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}"
    flat = flatten_params(params)
    with _translated(resolved, f"start a report run of experiment '{experiment_name}'"):
        client = _client(resolved)
        experiment_id = _experiment_id(client, experiment_name, resolved)
        checks = guardrail_tags(
            report.checks, stop_reason=report.stop_reason, stopped_at=report.stopped_at
        )
        run_id = client.create_run(
            experiment_id,
            run_name=name,
            tags=_run_tags("report", {**checks, **(tags or {})}, git_commit()),
        ).info.run_id
    run = ChildRun(client, resolved, run_id, name)
    with run:
        with _translated(resolved, "log the report's params"):
            _log_params(client, run_id, flat)
        for period in report.periods:
            run.log_metrics(period.model_dump(exclude={"period"}), step=period.period)
        if report.lift is not None:
            run.log_metrics(lift_metrics([report.lift], per_arm=False), step=len(report.periods))
            run.describe(lift_table_markdown([report.lift]))
        if report.strategies is not None:
            last_epoch = max((epoch.epoch for epoch in report.strategies.epochs), default=0)
            run.log_metrics(strategy_metrics(report.strategies), step=last_epoch)
        run.log_text(live_report_markdown(report), "report.md")
        run.log_dict(report.to_json(), "report.json")
    return run_id
