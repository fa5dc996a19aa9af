"""One report: ``GET /v1/experiments/{key}/report`` on a served app and ``engage report --json``
give the same JSON for the same experiment (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from e2e_support import Server, engage, free_port, prepare_in_process
from report_support import KEY, populate

from experiments.store.connection import make_engine


def test_http_and_cli_give_the_same_report(database_url: str) -> None:
    keys = prepare_in_process(database_url)
    database = make_engine(database_url)
    try:
        populate(database)  # every reward joined and learned: the server's learner stays idle
    finally:
        database.dispose()
    with Server(database_url, free_port(), keys) as server, server.client("read") as reader:
        served = reader.get(f"/v1/experiments/{KEY}/report", params={"period_days": 2})
        assert served.status_code == 200, served.text
        printed = engage(
            "report",
            KEY,
            "--period-days",
            "2",
            "--no-track",
            "--json",
            "--database-url",
            database_url,
        )
    report = served.json()
    assert json.loads(printed.stdout) == {**report, "mlflow_run_id": None}
    assert report["lift"]["kpi"] == report["kpi"] == "sum:revenue"
    assert [period["period"] for period in report["periods"]] == [0, 1]
    assert report["off_policy"]["rows"] == report["rewards"]["total"] == 36
