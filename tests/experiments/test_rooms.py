"""The rooms experiments.analysis, experiments.runs and experiments.service: public names
pinned, imports one way.

Each public name resolves, through the package, to the very object its defining module exports;
importing a package (or the report module the HTTP service reads) loads nothing it does not
need; and analysis, which only reads what was logged, never imports the engine, the service,
the simulator or the runs built on them.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ANALYSIS = [
    "MAX_PARAM_VALUE_LENGTH",
    "NO_DIFFERENCE",
    "ChildRun",
    "DecisionCounts",
    "Evaluation",
    "ExportResult",
    "GroupSummary",
    "GuardrailChecks",
    "GuardrailRow",
    "LiftPoint",
    "LiftRow",
    "LiveReport",
    "LoggedData",
    "Number",
    "OffPolicyEstimate",
    "OffPolicySummary",
    "OutcomeCounts",
    "PairedDifference",
    "PeriodMetrics",
    "PromotionRecord",
    "ReportModel",
    "RewardCounts",
    "SampleRatioCheck",
    "SurrogateCheck",
    "Tracker",
    "TrackingError",
    "allocation_over_time",
    "artifact_root",
    "build_live_report",
    "configure",
    "cumulative_curves",
    "evaluate_log",
    "export_experiment",
    "flatten_params",
    "git_commit",
    "guardrail_checks",
    "kpi_lift_rows",
    "lift_intervals",
    "lift_table_markdown",
    "live_report_markdown",
    "load_log",
    "log_reporting_run",
    "off_policy_summary",
    "paired_difference",
    "promotion_lines",
    "read_promotions",
    "reading",
    "redacted",
    "surrogate_check",
    "tracking_uri",
    "ui_command",
    "ui_environment",
]
RUNS = [
    "ARMS",
    "INTERVAL_NOTE",
    "SHARE_DEFINITION",
    "ArmComparison",
    "ArmResult",
    "ArmSummary",
    "OracleResult",
    "OutcomeRouter",
    "PolicyResult",
    "RunOptions",
    "RunResult",
    "all_lift_rows",
    "allocation_factor",
    "arm_names",
    "arm_spec",
    "arm_summary",
    "business_as_usual",
    "compare_arms",
    "comparison_markdown",
    "comparison_metrics",
    "contact_rules",
    "holdout_mask",
    "regret_kind",
    "render_markdown",
    "result_json",
    "revenue_objective",
    "run_oracles",
    "run_quickstart",
    "run_simulation",
    "track_run",
    "verdict",
    "world_config",
]
SERVICE = ["EngageClient", "EngageError", "create_app"]


@pytest.mark.parametrize(
    ("package", "names"),
    [
        ("experiments.analysis", ANALYSIS),
        ("experiments.runs", RUNS),
        ("experiments.service", SERVICE),
    ],
)
def test_public_names_are_pinned_and_resolve_to_their_module(package: str, names: list) -> None:
    room = importlib.import_module(package)
    assert room.__all__ == names
    assert sorted(room.HOMES) == sorted(names)
    for name in names:
        home = importlib.import_module(f"{package}.{room.HOMES[name]}")
        assert name in home.__all__, (home.__name__, name)
        assert getattr(room, name) is getattr(home, name)
    assert set(names) <= set(dir(room))
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = room.missing


def run_python(code: str) -> str:
    done = subprocess.run(  # noqa: S603 - this interpreter with a fixed snippet
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_a_room_loads_none_of_its_modules() -> None:
    code = (
        "import sys, experiments.analysis, experiments.runs, experiments.service\n"
        "prefixes = ('experiments.analysis.', 'experiments.runs.', 'experiments.service.',\n"
        "            'matplotlib', 'mlflow', 'fastapi')\n"
        "print(sorted(name for name in sys.modules if name.startswith(prefixes)))"
    )
    assert run_python(code) == "[]"


def test_the_client_loads_neither_the_app_nor_the_engine() -> None:
    code = (
        "import sys\n"
        "from experiments.service import EngageClient\n"
        "heavy = ('fastapi', 'sqlmodel', 'experiments.engine')\n"
        "print([name for name in heavy if name in sys.modules])"
    )
    assert run_python(code) == "[]"


def test_the_report_the_service_reads_loads_no_figures_and_no_mlflow() -> None:
    code = (
        "import sys, experiments.analysis.report\n"
        "print([name for name in ('matplotlib', 'mlflow') if name in sys.modules])"
    )
    assert run_python(code) == "[]"


def experiments_imports(path: Path) -> set[str]:
    """The ``experiments.*`` modules a file imports, by absolute name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] == "experiments"}


def test_analysis_reads_and_imports_nothing_that_decides_or_simulates() -> None:
    forbidden = (
        "experiments.engine",
        "experiments.engine.learner",
        "experiments.runs",
        "experiments.service",
        "experiments.simulate",
    )
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in experiments_imports(path)
            if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
        )
        for path in (ROOT / "experiments" / "analysis").rglob("*.py")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}
