"""The two oracles of an ``engage run``: what knowing the simulator's truth is worth.

The *click oracle* contacts, under the spec's contact rules, every visitor the rules allow
with the eligible action of highest true click probability; the *revenue oracle* with the
action of highest true expected revenue over the engagement reward's window (28 days when the
reward is not a revenue window). Both run :func:`~experiments.simulate.greedy_rollout` in the
run's own world (:func:`~experiments.runs.world.world_config`: same seed, burn-in, level
semantics and constants), so they face the arms' customers with the arms' luck.

Their difference is the *oracle edge*: what choosing by lifetime revenue instead of the click
is worth in this world, per KPI (revenue per customer, retention), with its paired 95%
interval over the treated customers (both oracles face the same customers with the same luck).
An arm's *share of the edge* is ``(arm - interaction arm) / (revenue oracle - click oracle)``
on the same treated customers and seed: 0 for the click learner, 1 for a learner that does as
well over the click learner as the revenue oracle does over the click oracle. Where the edge's
interval contains 0 there is no edge to share (the world without fatigue and nurturing).

Both rollouts together cost seconds at 20,000 customers x 60 days (about 3 s of CPU for
``examples/mechanism.toml``, 12 s for the 693 actions of ``examples/engagement.toml``),
little beside the arms (one to a few minutes each), so runs compute them unless told not to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from experiments.analysis.lift import paired_difference
from experiments.runs.arms import regret_kind
from experiments.runs.world import contact_rules, world_config
from experiments.simulate import RolloutResult, greedy_rollout
from experiments.spec import ExperimentSpec

if TYPE_CHECKING:
    from experiments.runs.simulation import RunOptions

__all__ = ["CLICK", "OracleResult", "oracle_rollouts", "revenue_objective", "run_oracles"]

#: The click oracle's objective.
CLICK = "click"
#: The revenue oracle's window when the engagement reward is not a revenue window.
DEFAULT_REVENUE_DAYS = 28


@dataclass(frozen=True)
class OracleResult:
    """Both oracles' KPIs over the run's treated customers.

    Attributes:
        revenue_objective: what the revenue oracle maximised (``revenue_<W>d``).
        click: ``{"revenue": ..., "retention": ...}`` of the click oracle (means over the
            treated customers).
        revenue: the same for the revenue oracle.
        edge_low, edge_high: per KPI, the paired 95% interval of revenue oracle minus click
            oracle over the treated customers.
        seconds: wall time of both rollouts.
    """

    revenue_objective: str
    click: dict[str, float] = field(default_factory=dict)
    revenue: dict[str, float] = field(default_factory=dict)
    edge_low: dict[str, float] = field(default_factory=dict)
    edge_high: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def edge(self, kpi: str) -> float:
        """Revenue oracle minus click oracle on ``kpi``."""
        return self.revenue[kpi] - self.click[kpi]

    def has_edge(self, kpi: str) -> bool:
        """Whether the edge on ``kpi`` is positive beyond its interval (its low end > 0)."""
        return self.edge_low.get(kpi, 0.0) > 0.0


def revenue_objective(spec: ExperimentSpec) -> str:
    """The revenue oracle's objective: the reward's revenue window, else 28-day revenue."""
    kind = regret_kind(spec)
    if spec.reward.kind == "sum" and spec.reward.event == "revenue":
        return kind
    return f"revenue_{DEFAULT_REVENUE_DAYS}d"


def oracle_rollouts(spec: ExperimentSpec, options: RunOptions) -> dict[str, RolloutResult]:
    """Both oracles' rollouts in the run's world, under the spec's contact rules: ``"click"``
    and ``"revenue"`` (every customer; the caller picks the treated ones)."""
    config = world_config(spec, options)
    rules = contact_rules(spec)
    space = spec.decision_space()
    targets = ((CLICK, CLICK), ("revenue", revenue_objective(spec)))
    return {
        name: greedy_rollout(config, space, spec.context, target, rules=rules)
        for name, target in targets
    }


def run_oracles(spec: ExperimentSpec, options: RunOptions, treated: np.ndarray) -> OracleResult:
    """Both oracles in the run's world; KPIs are means over ``treated`` customers ``(n,)``."""
    started = time.perf_counter()
    objective = revenue_objective(spec)
    values: dict[str, dict[str, np.ndarray]] = {}
    for name, rollout in oracle_rollouts(spec, options).items():
        values[name] = {
            "revenue": rollout.kpis["revenue"][treated].astype(np.float64),
            "retention": rollout.kpis["retained"][treated].astype(np.float64),
        }
    edges = {
        kpi: paired_difference(values["revenue"][kpi], values[CLICK][kpi])
        for kpi in ("revenue", "retention")
    }
    return OracleResult(
        revenue_objective=objective,
        click={kpi: float(array.mean()) for kpi, array in values[CLICK].items()},
        revenue={kpi: float(array.mean()) for kpi, array in values["revenue"].items()},
        edge_low={kpi: _or_zero(edge.low) for kpi, edge in edges.items()},
        edge_high={kpi: _or_zero(edge.high) for kpi, edge in edges.items()},
        seconds=time.perf_counter() - started,
    )


def _or_zero(value: float | None) -> float:
    return 0.0 if value is None else float(value)
