"""``engage run``: arms driven through the decision engine against the simulated world.

=================  ==============================================================================
``arms``           which policy and reward each arm runs, from one spec
``simulation``     :func:`run_simulation`: every arm through a real engine and database, on the
                   same seeded population
``report``         the comparison, lift table and verdict of a run; :func:`track_run` logs it to
                   MLflow
``strategies``     the strategy arm: a strategy per customer and epoch, followed day by day and
                   logged to MLflow
``quickstart``     ``engage demo``: a short bandit on the synthetic logistic environment
=================  ==============================================================================

The names below are loaded from their module on first use (:pep:`562`): ``engage demo`` needs
neither the engine nor the simulator that ``engage run`` loads.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ARMS",
    "ArmResult",
    "ArmSummary",
    "PolicyResult",
    "RunOptions",
    "RunResult",
    "all_lift_rows",
    "allocation_factor",
    "arm_names",
    "arm_spec",
    "arm_summary",
    "business_as_usual",
    "regret_kind",
    "render_markdown",
    "result_json",
    "run_quickstart",
    "run_simulation",
    "track_run",
    "verdict",
]

#: The module of the package that defines each public name.
HOMES: dict[str, str] = {
    **dict.fromkeys(
        (
            "ARMS",
            "allocation_factor",
            "arm_names",
            "arm_spec",
            "business_as_usual",
            "regret_kind",
        ),
        "arms",
    ),
    **dict.fromkeys(("PolicyResult", "run_quickstart"), "quickstart"),
    **dict.fromkeys(
        (
            "ArmSummary",
            "all_lift_rows",
            "arm_summary",
            "render_markdown",
            "result_json",
            "track_run",
            "verdict",
        ),
        "report",
    ),
    **dict.fromkeys(("ArmResult", "RunOptions", "RunResult", "run_simulation"), "simulation"),
}


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (see the module docstring)."""
    if name not in HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
