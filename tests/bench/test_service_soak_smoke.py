"""Smoke test of the soak benchmark: a few seconds on SQLite with one worker, structure not speed.

No timing, rate or memory figure is asserted; those targets belong to ``make bench-soak``.
"""

from __future__ import annotations

import io
import json

from rich.console import Console

from bench.service_soak import SoakConfig, soak


def test_a_short_soak_samples_every_process_and_writes_its_results(tmp_path) -> None:
    config = SoakConfig(workers=1, minutes=0.1, sample_seconds=3.0, peak_seconds=1.0, rate=40.0)
    result, found = soak(config, out=tmp_path, console=Console(file=io.StringIO()))

    assert result.failure is None
    assert not result.interrupted
    assert result.rate == 40.0
    assert [sample.seconds for sample in result.samples] == [3.0, 3.0]
    (main,) = [pid for pid, role in result.start_roles.items() if role == "main"]
    for sample in result.samples:
        assert sample.decide["requests"] > 0
        assert sample.outcomes["requests"] > 0
        assert sample.health_status == 200
        assert main in sample.rss_mib
    (row,) = [row for row in found["rss"] if row["role"] == "main"]
    assert row["start_mib"] > 0
    assert row["end_mib"] > 0
    assert found["errors_pass"] in (True, False)

    payload = json.loads((tmp_path / "service_soak.json").read_text())
    assert payload["config"]["minutes"] == 0.1
    assert len(payload["samples"]) == 2
    assert {"errors", "p99_drift", "rss"} <= set(payload["targets"])
    text = (tmp_path / "service_soak.md").read_text()
    assert text.startswith("# Service soak")
    assert "### Targets" in text
