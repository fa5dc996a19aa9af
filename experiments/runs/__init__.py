"""``engage run``: arms driven through the decision engine against the simulated world.

=================  ==============================================================================
``arms``           which policy and reward each arm runs, from one spec
``world``          :func:`world_config`: the one world every arm and oracle lives in, from the
                   spec's ``[simulation]`` section; :func:`contact_rules` in the world's terms
``routing``        :class:`OutcomeRouter`: the decision each simulated event belongs to
``simulation``     :func:`run_simulation`: every arm through a real engine and database, on the
                   same seeded population and the same holdout
``oracles``        :func:`run_oracles`: the click and revenue oracles under the contact rules
``comparison``     :func:`compare_arms`: every arm minus the interaction arm, paired by
                   customer, and its share of the oracle edge
``report``         the comparison, lift table and verdict of a run; :func:`track_run` logs it to
                   MLflow
``strategies``     the strategy arm: a strategy per customer and epoch, followed day by day and
                   logged to MLflow
``sweep``          ``engage sweep``: a grid of cells (seeds x spec overrides), each an ``engage
                   run``; ``sweep_executors`` runs them on Ray or local processes;
                   ``sweep_report`` reports them and pools settings over seeds
``quickstart``     ``engage demo``: a short bandit on the synthetic logistic environment
=================  ==============================================================================

The names below are loaded from their module on first use (:pep:`562`): ``engage demo`` needs
neither the engine nor the simulator that ``engage run`` loads.
"""

from __future__ import annotations

from experiments._lazy import load_on_first_use

__all__ = [
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
            "INTERVAL_NOTE",
            "SHARE_DEFINITION",
            "ArmSummary",
            "all_lift_rows",
            "arm_summary",
            "comparison_markdown",
            "comparison_metrics",
            "render_markdown",
            "result_json",
            "track_run",
            "verdict",
        ),
        "report",
    ),
    **dict.fromkeys(
        ("ArmResult", "RunOptions", "RunResult", "holdout_mask", "run_simulation"), "simulation"
    ),
    **dict.fromkeys(("contact_rules", "world_config"), "world"),
    "OutcomeRouter": "routing",
    **dict.fromkeys(("OracleResult", "revenue_objective", "run_oracles"), "oracles"),
    **dict.fromkeys(("ArmComparison", "compare_arms"), "comparison"),
}


__getattr__, __dir__ = load_on_first_use(__name__, HOMES)
