"""What channel level names mean to the simulated customers.

Fit depends on the device (feature phones cannot see push or in-app; they read SMS), on a
personal preference and, for in-app and push, on engagement; SMS tires the most and in-app
the least. Under drift, push and in-app gain and SMS and email lose over time. Any other name
gets effects drawn by a generator seeded by the factor and level names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from experiments.simulate.semantics.common import named_rng


@dataclass(frozen=True)
class ChannelTable:
    """Per channel level (shape ``(C,)``)."""

    names: tuple[str, ...]
    device_fit: np.ndarray  # (C, len(DEVICES)) click logit shift by device class
    engaged: np.ndarray  # weight of engagement in the fit
    fatigue: np.ndarray  # fatigue per contact
    trend: np.ndarray  # fit gained per day under drift


_CHANNELS = {
    #         android ios  feature engaged fatigue trend
    "sms": (0.0, -0.1, 0.6, 0.0, 1.0, -0.006),
    "email": (-0.3, -0.2, -1.0, 0.1, 0.4, -0.004),
    "push": (0.2, 0.3, -4.0, 0.3, 0.8, 0.006),
    "in_app": (0.0, 0.1, -4.0, 0.6, 0.25, 0.004),
}
_CHANNEL_ALIASES = {"text": "sms", "e-mail": "email", "inapp": "in_app", "app": "in_app"}
_NEUTRAL_CHANNEL = (0.0, 0.0, 0.0, 0.0, 0.6, 0.0)


def channel_table(levels: Sequence[str] | None, seed: int, factor: str = "channel") -> ChannelTable:
    """Semantics of every channel level; ``None`` (no channel factor) is one neutral level."""
    rows = []
    names = tuple(levels) if levels is not None else ("(neutral)",)
    for name in names:
        if levels is None:
            rows.append(_NEUTRAL_CHANNEL)
            continue
        key = _CHANNEL_ALIASES.get(name.lower(), name.lower())
        if key in _CHANNELS:
            rows.append(_CHANNELS[key])
            continue
        rng = named_rng(seed, factor, name)
        rows.append(
            (
                *rng.normal(0.0, 0.4, 3),
                rng.normal(0.2, 0.2),
                rng.uniform(0.3, 1.0),
                rng.normal(0.0, 0.003),
            )
        )
    table = np.array(rows, dtype=np.float64)
    return ChannelTable(names, table[:, 0:3].copy(), table[:, 3], table[:, 4], table[:, 5])
