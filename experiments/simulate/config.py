"""A simulated world's configuration as one validated, hashable value: its size, seed,
mechanism switches, what its levels mean (:class:`LevelSemantics`), the constants of the
customers' behaviour (:class:`Mechanism`), drift, bookkeeping cadence and burn-in.

Every field is checked on construction; a bad value raises ``ValueError`` naming the field
and the range it must lie in (:func:`~experiments.simulate.checks.check_value`). The defaults
are the world every test and measurement was made on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from experiments.simulate.checks import check_value
from experiments.simulate.fields import HISTORY_DAYS
from experiments.simulate.model import Mechanism
from experiments.simulate.rules import ContactRules
from experiments.simulate.semantics.overrides import LevelSemantics

_INF = math.inf
_LIMITS: dict[str, tuple[type, float, float]] = {
    "n_customers": (int, 1, 50_000_000),
    "n_days": (int, 1, _INF),
    "seed": (int, 0, _INF),
    "visit_rate": (float, 0.0, 1.0),
    "fatigue": (bool, 0, 0),
    "nurturing": (bool, 0, 0),
    "drift": (bool, 0, 0),
    "churn_scale": (float, 0.0, _INF),
    "drift_strength": (float, 0.0, _INF),
    "season_days": (float, 1.0, _INF),
    "organic_rate": (float, 0.0, 1.0),
    "billing_period": (int, 1, HISTORY_DAYS),
    "emit_usage": (bool, 0, 0),
    "burn_in_days": (int, 0, 3650),
}
_VALUES: dict[str, type] = {
    "levels": LevelSemantics,
    "mechanism": Mechanism,
    "burn_in_rules": ContactRules,
}


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
        churn_scale: multiplies every churn hazard.
        drift_strength: multiplies every drift.
        season_days: period of the seasons.
        organic_rate: the ceiling of the daily chance of buying a renewable offer unprompted.
        billing_period: days between revenue (and usage) bookings of the accrued spend.
        emit_usage: emit ``usage`` events (turn off to keep event logs small).
        levels: message, channel and timing levels that mean something else than their
            names say (:class:`~experiments.simulate.semantics.overrides.LevelSemantics`).
        mechanism: the constants of the customers' behaviour: fatigue's decay and effects,
            nurturing's strength, the response and lifetime coefficients
            (:class:`~experiments.simulate.model.Mechanism`).
        burn_in_days: days of business as usual lived before day 0, so customers start with
            fatigue, nurture, contacts and offers of their own; 0 starts them fresh.
        burn_in_rules: the cadence of the burn-in's contacts: each visitor the rules allow
            gets an action drawn uniformly from the eligible ones
            (:class:`~experiments.simulate.rules.ContactRules`; the default has no rules).
    """

    n_customers: int = 20_000
    n_days: int = 60
    seed: int = 0
    visit_rate: float = 0.15
    fatigue: bool = True
    nurturing: bool = True
    drift: bool = True
    churn_scale: float = 1.0
    drift_strength: float = 1.0
    season_days: float = 56.0
    organic_rate: float = 0.01
    billing_period: int = 7
    emit_usage: bool = True
    levels: LevelSemantics = field(default_factory=LevelSemantics)
    mechanism: Mechanism = field(default_factory=Mechanism)
    burn_in_days: int = 0
    burn_in_rules: ContactRules = field(default_factory=ContactRules)

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _VALUES:
                kind = _VALUES[item.name]
                if not isinstance(value, kind):
                    raise ValueError(
                        f"The '{item.name}' parameter of WorldConfig must be a "
                        f"{kind.__name__}. Got {value!r}."
                    )
                continue
            kind, low, high = _LIMITS[item.name]
            check_value("WorldConfig", item.name, value, kind, low, high)
