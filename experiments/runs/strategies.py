"""The strategy arm of an ``engage run``: the spec's strategies driven through the engine.

When a spec has a ``[strategies]`` section, ``engage run`` adds the ``strategy`` arm: the spec's
own policy and reward per contact, with every treated customer living under a strategy per
epoch, assigned and learned by the engine exactly as it serves HTTP
(:mod:`experiments.engine.strategies`, :mod:`experiments.engine.epochs`). Other arms run the
spec without its strategies.

:class:`StrategyDays` follows the arm day by day (the share of treated decisions under each
strategy, the strategy snapshot version) and reads the final strategy report from the arm's
database (:func:`experiments.analysis.strategies.strategy_report`, the live report's own
section). :func:`strategy_params` and :func:`log_strategy_arm` put it in the arm's MLflow run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from experiments.analysis.strategies import StrategyReport, strategy_metrics, strategy_report
from experiments.engine import DecisionEngine, DecisionResult
from experiments.runs.arms import STRATEGY_ARM
from experiments.spec import ExperimentSpec
from experiments.spec.strategies import StrategySet
from experiments.vocabulary import Group

__all__ = ["StrategyDays", "log_strategy_arm", "strategy_params"]


class StrategyDays:
    """A strategy arm's days: the allocation over strategies and the strategy learning.

    Args:
        engine: the arm's engine.
        spec: the arm's spec (with strategies).
    """

    def __init__(self, engine: DecisionEngine, spec: ExperimentSpec) -> None:
        strategies = spec.strategy_set()
        if strategies is None:
            raise ValueError(f"arm '{STRATEGY_ARM}' needs a spec with a [strategies] section")
        self.engine = engine
        self.key = spec.key
        self.strategies: StrategySet = strategies
        self.shares: list[np.ndarray] = []
        self.version = 0

    def day(self, results: Sequence[DecisionResult]) -> dict[str, float]:
        """Record the day's decisions; return the day's metrics (share of treated decisions
        per strategy, suppressed by a cadence)."""
        names = self.strategies.names
        counts = np.zeros(len(names))
        cadence = 0
        for result in results:
            if result.group == Group.TREATMENT and result.strategy is not None:
                counts[names.index(result.strategy)] += 1
                cadence += result.suppressed_reason == "strategy_cadence"
        shares = counts / counts.sum() if counts.sum() else counts
        self.shares.append(shares)
        metrics = {
            f"strategy_share.{name}": float(share)
            for name, share in zip(names, shares, strict=True)
        }
        metrics["strategy_cadence_suppressed"] = float(cadence)
        return metrics

    def learn(self) -> dict[str, float]:
        """Measure closed epochs and learn from them; the day's strategy metrics."""
        measured = self.engine.measure_epochs(self.key)
        version = self.engine.learn_strategies(self.key)
        if version is not None:
            self.version = version
        return {"epochs_measured": float(measured), "strategy_policy_version": float(self.version)}

    def report(self) -> StrategyReport:
        """The strategy section of the arm's live report, from its database."""
        with self.engine.database.session() as session:
            return strategy_report(session, experiment_key=self.key, strategies=self.strategies)

    @property
    def allocation(self) -> np.ndarray:
        """``(days, strategies)`` share of treated decisions under each strategy per day."""
        return np.array(self.shares) if self.shares else np.zeros((0, len(self.strategies.names)))


def strategy_params(report: StrategyReport | None) -> dict[str, Any]:
    """MLflow params of an arm's strategies (none without them)."""
    if report is None:
        return {}
    return {
        "strategies": ",".join(lift.strategy for lift in report.lifts),
        "strategy_epoch_days": report.epoch_days,
        "strategy_kpi": report.kpi,
        "strategy_baseline": ",".join(report.baseline),
        "strategy_policy": report.policy,
        "strategy_panel": report.panel,
        "strategy_panel_warmup": report.panel_warmup,
        "strategy_panel_settle": report.panel_settle,
    }


def log_strategy_arm(
    child: Any, report: StrategyReport, allocation: np.ndarray, labels: Sequence[str]
) -> None:
    """Log a strategy arm's final strategy metrics, report and allocation figure."""
    from experiments.analysis import plots

    last_epoch = max((epoch.epoch for epoch in report.epochs), default=0)
    child.log_metrics(strategy_metrics(report), step=last_epoch)
    child.log_dict(report.to_json(), "strategies.json")
    if allocation.size:
        child.log_figure(
            plots.allocation_over_time(
                np.arange(allocation.shape[0]),
                allocation,
                list(labels),
                title="strategy: share of treated decisions by strategy",
            ),
            "strategy_allocation.png",
        )
