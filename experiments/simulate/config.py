"""A simulated world's configuration as one validated, hashable value: its size, seed,
mechanisms (switches and effect sizes), drift and bookkeeping cadence.

Every field is checked on construction; a bad value raises ``ValueError`` naming the field
and the range it must lie in (:func:`~experiments.simulate.checks.check_value`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from experiments.simulate.checks import check_value
from experiments.simulate.fields import HISTORY_DAYS


@dataclass(frozen=True)
class WorldConfig:
    """A world's size, seed, mechanisms and effect sizes (a value; hashable).

    Attributes:
        n_customers: population size.
        n_days: the horizon runs are meant for (the world itself can go on).
        seed: the only source of randomness.
        visit_rate: daily chance an active customer of average engagement is reachable.
        fatigue: contacts raise fatigue, which lowers response and raises churn.
        nurturing: informational/educational messages raise readiness (and engagement).
        drift: seasonality and slow shifts in preferences.
        fatigue_response: click logit lost per unit of fatigue (half of it for accepts).
        fatigue_churn: relative churn hazard added per unit of fatigue.
        fatigue_half_life: days for fatigue to halve.
        nurture_gain: readiness logit an educational message adds when read (informational
            0.6 of it), before saturation.
        nurture_half_life: days for the nurture stock to halve.
        nurture_cap: the nurture stock's ceiling (gains shrink as it fills).
        churn_scale: multiplies every churn hazard.
        drift_strength: multiplies every drift.
        season_days: period of the seasons.
        organic_rate: the ceiling of the daily chance of buying a renewable offer unprompted.
        billing_period: days between revenue (and usage) bookings of the accrued spend.
        emit_usage: emit ``usage`` events (turn off to keep event logs small).
    """

    n_customers: int = 20_000
    n_days: int = 60
    seed: int = 0
    visit_rate: float = 0.15
    fatigue: bool = True
    nurturing: bool = True
    drift: bool = True
    fatigue_response: float = 0.3
    fatigue_churn: float = 0.15
    fatigue_half_life: float = 7.0
    nurture_gain: float = 0.8
    nurture_half_life: float = 30.0
    nurture_cap: float = 2.5
    churn_scale: float = 1.0
    drift_strength: float = 1.0
    season_days: float = 56.0
    organic_rate: float = 0.01
    billing_period: int = 7
    emit_usage: bool = True

    def __post_init__(self) -> None:
        inf = math.inf
        limits: dict[str, tuple[type, float, float]] = {
            "n_customers": (int, 1, 50_000_000),
            "n_days": (int, 1, inf),
            "seed": (int, 0, inf),
            "visit_rate": (float, 0.0, 1.0),
            "fatigue": (bool, 0, 0),
            "nurturing": (bool, 0, 0),
            "drift": (bool, 0, 0),
            "fatigue_response": (float, 0.0, inf),
            "fatigue_churn": (float, 0.0, inf),
            "fatigue_half_life": (float, 1e-3, inf),
            "nurture_gain": (float, 0.0, inf),
            "nurture_half_life": (float, 1e-3, inf),
            "nurture_cap": (float, 1e-3, inf),
            "churn_scale": (float, 0.0, inf),
            "drift_strength": (float, 0.0, inf),
            "season_days": (float, 1.0, inf),
            "organic_rate": (float, 0.0, 1.0),
            "billing_period": (int, 1, HISTORY_DAYS),
            "emit_usage": (bool, 0, 0),
        }
        for item in fields(self):
            kind, low, high = limits[item.name]
            check_value("WorldConfig", item.name, getattr(self, item.name), kind, low, high)
