"""Links into ``engage ui`` for runs engage tracked: their experiment's runs and the compare
view of an ``engage run``'s arms (URLs from :mod:`experiments.analysis.mlflow_view`).

Reads the store through :mod:`experiments.analysis.tracking`'s client, so failures come as
one :class:`~experiments.analysis.tracking_store.TrackingError`.
"""

from __future__ import annotations

from experiments.analysis.mlflow_view import (
    SHARED_VIEW_TAG,
    UI_ADDRESS,
    compare_url,
    runs_url,
    view_key,
)
from experiments.analysis.tracking import _client, _translated
from experiments.analysis.tracking_store import tracking_uri

__all__ = ["latest_run_links", "run_links"]


def run_links(
    run_id: str, *, uri: str | None = None, address: str = UI_ADDRESS
) -> tuple[str, str | None]:
    """Links into ``engage ui`` at ``address`` for the parent run ``run_id``: its
    experiment's runs (in the run's shared view, showing its lift metrics, when it has one),
    and the compare view of its nested runs (None without any)."""
    resolved = uri or tracking_uri()
    with _translated(resolved, f"read run {run_id}"):
        client = _client(resolved)
        experiment_id = client.get_run(run_id).info.experiment_id
        tags = client.get_experiment(experiment_id).tags
        children = client.search_runs(
            [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
        )
    arms = sorted(children, key=lambda child: child.info.start_time or 0)
    compare = (
        compare_url(experiment_id, [child.info.run_id for child in arms], address=address)
        if arms
        else None
    )
    view = view_key(run_id) if SHARED_VIEW_TAG + view_key(run_id) in tags else None
    return runs_url(experiment_id, address=address, view=view), compare


def latest_run_links(
    *, uri: str | None = None, address: str = UI_ADDRESS
) -> tuple[str, str | None] | None:
    """:func:`run_links` of the newest ``engage run`` in the store (None when there is none)."""
    resolved = uri or tracking_uri()
    with _translated(resolved, "find the newest engage run"):
        client = _client(resolved)
        experiments = [item.experiment_id for item in client.search_experiments()]
        newest = (
            client.search_runs(
                experiments,
                filter_string="tags.`engage.kind` = 'run'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if experiments
            else []
        )
    if not newest:
        return None
    return run_links(newest[0].info.run_id, uri=resolved, address=address)
