"""The command line with strategies: engage run adds the strategy arm by default for a spec
that has them, and engage report and engage export read the strategy experiment it kept."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import invoke, one_line

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ROOT / "examples" / "strategies.toml"


def test_run_report_and_export_a_strategy_experiment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'run.db'}"
    code, output = invoke(
        "run",
        str(STRATEGIES),
        "--customers",
        "300",
        "--days",
        "4",
        "--no-track",
        "--jobs",
        "1",
        "--database-url",
        url,
        "--json",
    )
    assert code == 0, output
    data = json.loads(output)
    assert [arm["arm"] for arm in data["arms"]] == [
        "uniform",
        "business_as_usual",
        "interaction",
        "engagement",
        "strategy",
    ]
    assert list(data["strategies"]) == ["strategy"]
    lifts = data["strategies"]["strategy"]["lifts"]
    assert [lift["strategy"] for lift in lifts] == [
        "all",
        "no-pressure",
        "inform-educate",
        "fewer-contacts",
    ]
    assert sum(lift["assignments"] for lift in lifts) > 0
    code, output = invoke("report", "strategies-strategy", "--no-track", "--database-url", url)
    assert code == 0, output
    assert "by strategy vs holdout" in output
    code, output = invoke(
        "export", "strategies-strategy", "--out", str(tmp_path / "out"), "--database-url", url
    )
    assert code == 0, output
    assert "strategies:" in output
    code, output = invoke("run", str(STRATEGIES), "--arms", "strategy,bogus", "--no-track")
    assert code == 2
    assert "unknown arm(s) ['bogus']" in " ".join(output.split())


def test_the_strategy_arm_needs_strategies() -> None:
    code, output = invoke(
        "run", str(ROOT / "examples" / "mechanism.toml"), "--arms", "strategy", "--no-track"
    )
    assert code == 2
    assert "needs a spec with a [strategies] section" in " ".join(output.split())


def test_the_arms_help_names_the_strategies_section() -> None:
    """Rich reads ``[strategies]`` as markup unless escaped, and the help lost the word."""
    for command in ("run", "sweep"):
        code, output = invoke(command, "--help")
        assert code == 0
        assert "spec with a [strategies] section" in one_line(output.replace("│", " "))
