"""Export decisions, outcomes and the evaluation log; the log feeds engage evaluate."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from experiments.analysis.evaluate import evaluate_log
from experiments.analysis.export import export_experiment
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.store.database import Database

START = datetime(2026, 3, 1, tzinfo=UTC)
SPEC = {
    "key": "promo",
    "factors": {"offer": ["none", "bundle"], "channel": ["sms", "push"]},
    "context": {
        "tenure": {"type": "numeric", "min": 0},
        "plan": {"type": "categorical", "levels": ["prepaid", "postpaid"]},
    },
    "policy": {"name": "linucb", "params": {}},
    "reward": {"kind": "event", "event": "click", "window": "1d"},
    "holdout": {"share": 0.2},
}


@pytest.fixture
def filled(engine: Engine) -> Engine:
    """40 decisions, clicks on every third, windows closed, rewards joined."""
    clock = ManualClock(START)
    core = DecisionEngine(Database(engine), clock=clock, seed=1)
    core.create_experiment(SPEC)
    made = [
        core.decide(
            "promo",
            DecisionRequest(
                customer_id=f"c{index}",
                context={"tenure": index % 7, "plan": ["prepaid", "postpaid"][index % 2]},
            ),
        )
        for index in range(40)
    ]
    core.record(
        OutcomeInput(f"o{index}", "click", 1.0, START + timedelta(hours=1), item.decision_id)
        for index, item in enumerate(made)
        if index % 3 == 0
    )
    clock.advance(timedelta(days=2))
    core.join_rewards("promo")
    return engine


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_three_tables_that_evaluate_reads(
    filled: Engine, tmp_path: Path, fmt: str
) -> None:
    result = export_experiment(filled, "promo", tmp_path, fmt=fmt)
    assert result.rows == {"decisions": 40, "outcomes": 14, "log": 40}
    if fmt == "csv":
        with result.files["log"].open() as handle:
            header = next(csv.reader(handle))
    else:
        header = pq.read_table(result.files["log"]).column_names
    assert header == ["timestamp", "action", "reward", "propensity", "tenure", "plan"]
    evaluation = evaluate_log(result.files["log"], policy="linucb")
    assert evaluation.n_rows == 40
    assert 0.0 <= evaluation.report.snips.value <= 1.0


def test_export_of_an_unknown_experiment_names_it(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(LookupError):
        export_experiment(engine, "nope", tmp_path)
