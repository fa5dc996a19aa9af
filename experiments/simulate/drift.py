"""What moves under the customers' feet (``WorldConfig.drift``): seasons of ``season_days``
move readiness per offer (each offer on its own phase), spend, usage, travel, churn and the
preferred hour; slow random walks move readiness per region and offer, message appeal and
channel fit; channels trend (push and in-app gain, SMS and email lose); urgency and
promotional framing wear out; weekends bring more visits later in the day.

The walks draw their steps every day whatever the flags, so the other random streams do not
depend on them; without drift every quantity here is neutral (0, or the level's own value).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from experiments.simulate.config import WorldConfig
from experiments.simulate.fields import REGIONS
from experiments.simulate.semantics import Semantics


def is_weekend(day: int) -> bool:
    """Days 5 and 6 of every week (day 0 is a Monday)."""
    return day % 7 in (5, 6)


class Drift:
    """Seasons and random walks; every method takes the day it is asked about.

    Attributes:
        offer_walk: ``(regions, K)`` readiness walk per region and offer.
        message_walk: ``(M,)`` click appeal walk per message level.
        channel_walk: ``(C,)`` fit walk per channel level.
    """

    def __init__(self, config: WorldConfig, semantics: Semantics, rng: np.random.Generator):
        self.config = config
        self.semantics = semantics
        self._rng = rng
        self.offer_walk = np.zeros((len(REGIONS), len(semantics.offers.names)))
        self.message_walk = np.zeros(len(semantics.messages.names))
        self.channel_walk = np.zeros(len(semantics.channels.names))

    def season(self, day: int, phase: float = 0.0, ahead: np.ndarray | int = 0) -> Any:
        """The season ``drift_strength sin(2 pi day / season_days + phase)`` on ``day`` or
        ``ahead`` days later (an array gives an array); 0 without drift."""
        if not self.config.drift:
            return np.zeros(np.shape(ahead)) if np.ndim(ahead) else 0.0
        angle = 2.0 * math.pi * (day + np.asarray(ahead)) / self.config.season_days + phase
        value = self.config.drift_strength * np.sin(angle)
        return value if np.ndim(ahead) else float(value)

    def churn_season(self, day: int, ahead: np.ndarray | int = 0) -> Any:
        """Multiplier of the churn hazard."""
        return np.exp(0.15 * self.season(day, 0.5 * math.pi, ahead))

    def spend_season(self, day: int, ahead: np.ndarray | int = 0) -> Any:
        """Multiplier of the daily spend."""
        return 1.0 + 0.08 * self.season(day, 0.0, ahead)

    def usage_season(self, day: int) -> float:
        """Multiplier of the daily usage."""
        return 1.0 + 0.1 * self.season(day)

    def travel(self, day: int) -> float:
        """Multiplier of the chance of starting a trip."""
        return 1.0 + 0.8 * self.season(day, 0.25 * math.pi)

    def hour_shift(self, day: int) -> float:
        """Shift of everyone's preferred hour (later in summer and at weekends)."""
        if not self.config.drift:
            return 0.0
        return self.season(day) + 0.75 * self.config.drift_strength * is_weekend(day)

    def visit_boost(self, day: int) -> float:
        """Multiplier of the visit rate (weekends bring more visits)."""
        if self.config.drift and is_weekend(day):
            return 1.0 + 0.15 * self.config.drift_strength
        return 1.0

    def offer_drift(self, day: int, regions: np.ndarray) -> np.ndarray:
        """Readiness drift, ``(n, K)``: each offer's season plus the region x offer walk."""
        offers = self.semantics.offers
        if not self.config.drift:
            return np.zeros((regions.shape[0], len(offers.names)))
        angle = 2.0 * math.pi * day / self.config.season_days + offers.season_phase
        season = self.config.drift_strength * offers.season_amplitude * np.sin(angle)
        return season[None, :] + self.offer_walk[regions]

    def message_click(self, day: int) -> np.ndarray:
        """Click logit shift of each message level, ``(M,)``: its appeal, walked and worn."""
        messages = self.semantics.messages
        if not self.config.drift:
            return messages.click
        strength = self.config.drift_strength
        return messages.click + self.message_walk - strength * messages.wear_out * day

    def channel_drift(self, day: int) -> np.ndarray:
        """Fit gained by each channel level, ``(C,)``: its trend plus its walk."""
        if not self.config.drift:
            return np.zeros(len(self.semantics.channels.names))
        trend = self.config.drift_strength * self.semantics.channels.trend * day
        return trend + self.channel_walk

    def step(self) -> None:
        """Move the walks on a day."""
        offer = self._rng.normal(0.0, 0.03, self.offer_walk.shape)
        message = self._rng.normal(0.0, 0.02, self.message_walk.shape)
        channel = self._rng.normal(0.0, 0.02, self.channel_walk.shape)
        if self.config.drift:
            strength = self.config.drift_strength
            self.offer_walk += strength * offer
            self.message_walk += strength * message
            self.channel_walk += strength * channel
