"""What the oracle edge is made of: the click and revenue oracles of a spec's world, side by side.

``engage run`` reports each arm's share of the *oracle edge*, what choosing by lifetime revenue
instead of the click is worth in the simulated world (:mod:`experiments.runs.oracles`). This
prints what the two oracles did differently, over the run's treated customers (same world,
seed, burn-in and contact rules as ``engage run``): revenue, purchases (accepts), clicks,
contacts and retention per customer, revenue oracle minus click oracle with a paired 95%
interval, and the share of contacts each oracle gave every level of every factor. Run the
same spec with a ``[simulation]`` section that switches one behaviour off (a message level's
``engagement`` or ``nurture`` gain, say) to see how much of the edge goes through it.

Run ``python -m bench.oracle_edge SPEC [--seed S] [--customers N] [--days D]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from experiments.analysis.lift import paired_difference
from experiments.runs.oracles import CLICK, oracle_rollouts, revenue_objective
from experiments.runs.simulation import RunOptions
from experiments.runs.world import holdout_mask
from experiments.spec import ExperimentSpec, load_spec

#: Per-customer truths compared, as ``RolloutResult.kpis`` names them, and their labels.
KPIS = (
    ("revenue", "revenue"),
    ("accepts", "purchases"),
    ("clicks", "clicks"),
    ("contacts", "contacts"),
    ("retained", "retained"),
)


@dataclass(frozen=True)
class KpiEdge:
    """One KPI's means under both oracles and the paired interval of their difference."""

    label: str
    click: float
    revenue: float
    low: float
    high: float

    @property
    def difference(self) -> float:
        return self.revenue - self.click


@dataclass(frozen=True)
class OracleEdge:
    """What :func:`oracle_edge` measured: the KPIs, and per factor the share of contacts each
    oracle gave every level (``levels[factor] = (names, click shares, revenue shares)``)."""

    objective: str
    kpis: list[KpiEdge]
    levels: dict[str, tuple[tuple[str, ...], np.ndarray, np.ndarray]]


def oracle_edge(spec: ExperimentSpec, options: RunOptions) -> OracleEdge:
    """Both oracles of ``engage run``'s world for ``spec`` and ``options``, compared over the
    treated customers."""
    treated = ~holdout_mask(spec, options.customers)
    rollouts = oracle_rollouts(spec, options)
    click, revenue = rollouts[CLICK], rollouts["revenue"]
    kpis = []
    for name, label in KPIS:
        by_revenue = revenue.kpis[name][treated].astype(np.float64)
        by_click = click.kpis[name][treated].astype(np.float64)
        interval = paired_difference(by_revenue, by_click)
        kpis.append(
            KpiEdge(
                label,
                float(by_click.mean()),
                float(by_revenue.mean()),
                np.nan if interval.low is None else float(interval.low),
                np.nan if interval.high is None else float(interval.high),
            )
        )
    space = spec.decision_space()
    levels = {
        factor: (
            tuple(space.factors[factor]),
            click.level_shares(space, factor, treated),
            revenue.level_shares(space, factor, treated),
        )
        for factor in space.factor_names
    }
    return OracleEdge(revenue_objective(spec), kpis, levels)


def render(edge: OracleEdge, console: Console) -> None:
    """The KPI table, then one table of level shares per factor with more than one level."""
    kpis = Table(title=f"Per treated customer: click oracle, revenue oracle ({edge.objective})")
    kpis.add_column("KPI")
    for column in ("click", "revenue", "difference"):
        kpis.add_column(column, justify="right")
    kpis.add_column("95% interval", justify="right", no_wrap=True)
    for kpi in edge.kpis:
        kpis.add_row(
            kpi.label,
            f"{kpi.click:.4f}",
            f"{kpi.revenue:.4f}",
            f"{kpi.difference:+.4f}",
            f"[{kpi.low:+.4f}, {kpi.high:+.4f}]",
        )
    console.print(kpis)
    for factor, (names, by_click, by_revenue) in edge.levels.items():
        if len(names) < 2:
            continue
        table = Table(title=f"Share of contacts by {factor}")
        table.add_column("oracle")
        for name in names:
            table.add_column(name, justify="right")
        for oracle, shares in (("click", by_click), ("revenue", by_revenue)):
            table.add_row(oracle, *(f"{share:.0%}" for share in shares))
        console.print(table)


def main(
    spec_path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Spec (TOML).")],
    seed: Annotated[int, typer.Option(min=0, help="Seed of the simulated world.")] = 0,
    customers: Annotated[int, typer.Option(min=10, help="Simulated customers.")] = 20_000,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Simulated days.")] = 60,
) -> None:
    """Print what the revenue oracle does differently from the click oracle."""
    options = RunOptions(customers=customers, days=days, seed=seed)
    render(oracle_edge(load_spec(spec_path), options), Console())


if __name__ == "__main__":
    typer.run(main)
