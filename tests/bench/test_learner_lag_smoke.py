"""bench.learner_lag end to end on a tiny load: a real server on SQLite, a learner that
publishes every 5 rewards, and figures that agree with each other."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bench.learner_lag import SPEC_PATH, run_one, tables


def test_every_clicked_decision_is_learned_and_timed(tmp_path: Path) -> None:
    """40 decision+click pairs at 20/s: 40 rewards, all learned before the drain ends; each
    lag is positive and at least the click's own (the click follows its decision)."""
    spec = tomllib.loads(SPEC_PATH.read_text())
    spec["learner"] = {"batch_size": 5, "interval_seconds": 1}
    result = run_one("sqlite", workers=1, rate=20, seconds=2, drain=30, log_dir=tmp_path, spec=spec)
    assert (result.decisions, result.outcomes, result.errors) == (40, 40, 0)
    assert result.unlearned == 0
    assert result.drain_seconds is not None
    assert result.rewards == 40
    assert 0 < result.lag_ms["p50"] <= result.lag_ms["p99"] <= result.lag_ms["max"]
    assert 0 < result.outcome_lag_ms["p50"] <= result.lag_ms["p50"]
    (table,) = tables([result])
    assert table.rows[0][:2] == ["sqlite", "1"]
