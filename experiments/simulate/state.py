"""Everything a world carries from one day to the next, in one place: its configuration,
what its levels mean, its customers, its drift, the responses still to land and the day.

The modules that do the world's jobs (:mod:`~experiments.simulate.visits`,
:mod:`~experiments.simulate.response`, :mod:`~experiments.simulate.dynamics`,
:mod:`~experiments.simulate.outcomes`, :mod:`~experiments.simulate.truth`,
:mod:`~experiments.simulate.contexts`) read and move a :class:`WorldState`;
:class:`~experiments.simulate.world.CustomerWorld` is the public face over it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from experiments.simulate.config import WorldConfig
from experiments.simulate.drift import Drift
from experiments.simulate.events import Pending
from experiments.simulate.population import Customers
from experiments.simulate.semantics import Semantics


@dataclass(eq=False)
class WorldState:
    """A world's state on ``day``.

    Attributes:
        mech: the configuration's :class:`~experiments.simulate.model.Mechanism`.
        phi_fatigue: the share of fatigue left after a day.
        phi_nurture: the share of the nurture stock left after a day.
        gamma: relative churn hazard per unit of fatigue (0 with fatigue off).
    """

    config: WorldConfig
    semantics: Semantics
    customers: Customers
    drift: Drift
    day: int = 0
    pending: Pending = field(default_factory=Pending)

    def __post_init__(self) -> None:
        config, mech = self.config, self.config.mechanism
        self.mech = mech
        self.phi_fatigue = 0.5 ** (1.0 / mech.fatigue_half_life)
        self.phi_nurture = 0.5 ** (1.0 / mech.nurture_half_life)
        self.gamma = mech.fatigue_churn if config.fatigue else 0.0

    @property
    def n_actions(self) -> int:
        return int(self.semantics.actions.offer.shape[0])

    def readiness(self, rows: np.ndarray, *, penalise_active: bool = True) -> np.ndarray:
        """Readiness logits ``(n, K)`` today; 0 for the no-offer level."""
        offers = self.semantics.offers
        c = self.customers
        ready = (
            c.features(rows, self.day) @ offers.weights.T
            + c.readiness_effect[rows]
            + c.nurture[rows]
            + self.drift.offer_drift(self.day, c.region[rows])
        )
        if penalise_active:
            ready += self.mech.already_active * (c.active_until[rows] > self.day)
        ready[:, ~offers.is_offer] = 0.0
        return ready

    def hazard_prefactor(self, rows: np.ndarray | slice) -> np.ndarray:
        """``h0`` without the season (see :meth:`Customers.hazard_prefactor`)."""
        return self.customers.hazard_prefactor(rows, self.config.churn_scale)
