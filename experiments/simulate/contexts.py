"""What a decision sees: each visitor's context today, one column per field of the spec's
context schema, produced as :mod:`~experiments.simulate.fields` planned it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from experiments.simulate.drift import is_weekend
from experiments.simulate.fields import FieldPlan, to_python_rows
from experiments.simulate.state import WorldState
from experiments.simulate.visits import Today


def context_rows(
    state: WorldState, today: Today, plans: Sequence[FieldPlan], rows: np.ndarray
) -> list[dict[str, Any]]:
    """The context of each customer in ``rows`` today as JSON-able dicts."""
    names = [plan.name for plan in plans]
    if not names:
        return [{} for _ in range(rows.shape[0])]
    columns = [_column(state, today, plan, rows) for plan in plans]
    return to_python_rows(names, columns)


def _planned(array: np.ndarray | None, plan: FieldPlan, what: str) -> np.ndarray:
    """``plan``'s ``what`` array, which the plan of its source always fills in."""
    if array is None:
        raise ValueError(f"context field {plan.name!r} from {plan.source!r} was planned no {what}")
    return array


def _column(state: WorldState, today: Today, plan: FieldPlan, rows: np.ndarray) -> list[Any]:
    c, day = state.customers, state.day
    source = plan.source
    if plan.kind == "categorical":
        if source == "noise":
            codes = _planned(plan.noise, plan, "noise")[rows]
        else:
            own = {"device": c.device, "plan": c.plan, "region": c.region}[source]
            codes = _planned(plan.code_map, plan, "code_map")[own[rows]]
        return np.array(plan.levels, dtype=object)[codes].tolist()
    if plan.kind == "boolean":
        if source == "roaming":
            values = c.roaming[rows]
        elif source == "weekend":
            values = np.full(rows.shape[0], is_weekend(day))
        else:
            values = _planned(plan.noise, plan, "noise")[rows]
        return values.astype(bool).tolist()
    if source == "noise":
        values = _planned(plan.noise, plan, "noise")[rows]
    elif source in ("usage", "spend", "contacts"):
        history = {
            "usage": c.usage_history,
            "spend": c.spend_history,
            "contacts": c.contact_history,
        }[source]
        values = np.round(c.history_sum(history, rows, plan.window, day), 3)
    elif source == "tenure_months":
        values = np.round(c.tenure[rows], 1)
    elif source == "local_hour":
        values = np.floor(today.visit_local[rows]) % 24
    elif source == "days_since_contact":
        values = (day - c.last_contact[rows]).astype(np.float64)
    elif source == "age":
        values = np.floor(c.age[rows])
    elif source == "day_of_week":
        values = np.full(rows.shape[0], float(day % 7))
    elif source == "engagement_score":
        raw = 50.0 + 15.0 * c.engagement[rows] + 5.0 * c.score_noise[rows]
        values = np.round(np.clip(raw, 0.0, 100.0), 1)
    else:  # active_offers
        values = c.active(rows, day).sum(axis=1).astype(np.float64)
    values = np.asarray(values, dtype=np.float64)
    if plan.low is not None or plan.high is not None:
        values = np.clip(values, plan.low, plan.high)
    return values.tolist()
