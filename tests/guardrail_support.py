"""For guardrail tests: the guardrail interval written out independently of
:mod:`bandit.guardrails`, and an experiment whose retention guardrail is breached."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np

from bench.guardrails import START, world_spec
from experiments.engine import DecisionEngine, DecisionRequest, OutcomeInput
from experiments.engine.clock import ManualClock
from experiments.store.database import Database
from experiments.vocabulary import Group


def independent_interval(t: np.ndarray, h: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """:func:`bandit.guardrails.guarded_difference`'s docstring formula, written out again: V
    the larger of Welch's and the pooled variance of the difference, τ² tuned for 1000 per
    group (``r = 2 log(1/α) + log(1 + 2 log(1/α))``), then the normal-mixture radius
    ``√(V (V + τ²)/τ² · log((V + τ²)/(V α²)))``."""
    n_t, n_h = t.size, h.size
    v_t, v_h = t.var(ddof=1), h.var(ddof=1)
    pooled = np.concatenate([t, h]).var(ddof=1)
    v = max(v_t / n_t + v_h / n_h, pooled * (1 / n_t + 1 / n_h))
    log_inv = 2 * math.log(1 / alpha)
    tau2 = max(v_t + v_h, 2 * pooled) / 1000 * (log_inv + math.log1p(log_inv))
    radius = math.sqrt(v * (v + tau2) / tau2 * math.log((v + tau2) / (v * alpha**2)))
    d = t.mean() - h.mean()
    return float(d - radius), float(d + radius)


def breached(database: Database, key: str) -> DecisionEngine:
    """An experiment whose retention guardrail (action "stop") is breached, and a contacts
    guardrail (action "stop") that holds: of 400 customers (about half held out) every
    treated one churned a day after their decision, no held-out one did. Nothing has been
    checked yet, so it is still running."""
    decisions = DecisionEngine(database, clock=ManualClock(START), seed=0)
    spec = world_spec(key, harmful=True, share=0.5)
    spec["guardrails"]["kpi"].append({"measure": "contacts", "margin": 0.5})
    decisions.create_experiment(spec)
    results = decisions.decide_many(key, [DecisionRequest(f"c{i}", {}) for i in range(400)])
    decisions.record(
        [
            OutcomeInput(
                outcome_id=f"o{index}",
                event="churn",
                value=1.0,
                occurred_at=START + timedelta(days=1),
                decision_id=result.decision_id,
            )
            for index, result in enumerate(results)
            if result.group == Group.TREATMENT
        ]
    )
    return decisions
