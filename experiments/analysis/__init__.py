"""What reads logged data and reports on it: lift, off-policy estimates, figures, MLflow.

One room, one job: everything here reads what the decision path wrote (or a log from elsewhere)
and writes nothing back to the experiment.

=====================  ==========================================================================
``report``             the live report: :func:`build_live_report` -> :class:`LiveReport`, served
                       by HTTP, printed by ``engage report``, logged to MLflow
``lift``               :class:`LiftRow`, the one row of every lift engage reports; how a
                       difference reads (:func:`reading`); :func:`paired_difference`
``covariates``         the live reward lift adjusted on pre-period covariates (CUPED)
``guardrails``         the live report's checks: the split's sample ratio, each guardrail KPI
                       holding, breached or undecided (what the automatic stop acts on)
``strategies``         the live report's strategies: each strategy's epoch KPI against the
                       holdout's, raw and regression-adjusted
``promotions``         safe promotion's verdict on each learned snapshot, as report values
``surrogate``          a surrogate reward beside the matured KPI of the same decisions
``model``              :class:`ReportModel`, the frozen base whose undefined numbers are None
``plots``              figures (matplotlib Agg, no pyplot state)
``evaluate``           off-policy evaluation of a decision log (``engage evaluate``)
``log_table``          reading and validating such a log (every refusal names the column)
``export``             decisions, outcomes and the evaluation log as CSV/Parquet (``engage export``)
``tracking``           MLflow runs: the only module that imports ``mlflow``
``tracking_store``     where the runs live and how ``engage ui`` serves them
``tracking_params``    MLflow params from nested specs
=====================  ==========================================================================

The names below are loaded from their module on first use (:pep:`562`), so importing one
module of the package does not import the others: the HTTP service reads reports without
loading matplotlib, and ``engage ui`` starts without the report's dependencies.
"""

from __future__ import annotations

from experiments._lazy import load_on_first_use

__all__ = [
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

#: The module of the package that defines each public name.
HOMES: dict[str, str] = {
    **dict.fromkeys(("Evaluation", "evaluate_log"), "evaluate"),
    **dict.fromkeys(("LoggedData", "load_log"), "log_table"),
    **dict.fromkeys(("ExportResult", "export_experiment"), "export"),
    **dict.fromkeys(
        (
            "NO_DIFFERENCE",
            "LiftRow",
            "PairedDifference",
            "kpi_lift_rows",
            "lift_table_markdown",
            "paired_difference",
            "reading",
        ),
        "lift",
    ),
    **dict.fromkeys(
        ("GuardrailChecks", "GuardrailRow", "SampleRatioCheck", "guardrail_checks"), "guardrails"
    ),
    **dict.fromkeys(("Number", "ReportModel"), "model"),
    **dict.fromkeys(
        ("LiftPoint", "allocation_over_time", "cumulative_curves", "lift_intervals"), "plots"
    ),
    **dict.fromkeys(
        (
            "DecisionCounts",
            "GroupSummary",
            "LiveReport",
            "OffPolicyEstimate",
            "OffPolicySummary",
            "OutcomeCounts",
            "PeriodMetrics",
            "RewardCounts",
            "build_live_report",
            "live_report_markdown",
            "off_policy_summary",
        ),
        "report",
    ),
    **dict.fromkeys(("PromotionRecord", "promotion_lines", "read_promotions"), "promotions"),
    **dict.fromkeys(("SurrogateCheck", "surrogate_check"), "surrogate"),
    **dict.fromkeys(("ChildRun", "Tracker", "log_reporting_run"), "tracking"),
    **dict.fromkeys(("MAX_PARAM_VALUE_LENGTH", "flatten_params"), "tracking_params"),
    **dict.fromkeys(
        (
            "TrackingError",
            "artifact_root",
            "configure",
            "git_commit",
            "redacted",
            "tracking_uri",
            "ui_command",
            "ui_environment",
        ),
        "tracking_store",
    ),
}


__getattr__, __dir__ = load_on_first_use(__name__, HOMES)
