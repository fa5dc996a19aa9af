"""What timing level names mean to the simulated customers: a local delivery hour.

Slots: morning 9, breakfast 8, lunch and midday 12.5, noon 12, afternoon 15.5, evening 19.5,
night and late 23; names like ``h18`` or ``18:00`` give that hour; any other name gets an hour
in [7, 22) drawn by a generator seeded by the factor and level names. The fit falls with the
squared distance to the customer's preferred hour; night slots (22:00-07:00) cost clicks and
double the fatigue (see :mod:`experiments.simulate.model`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from experiments.simulate.semantics.common import named_rng

_SLOTS = {
    "morning": 9.0,
    "breakfast": 8.0,
    "lunch": 12.5,
    "midday": 12.5,
    "noon": 12.0,
    "afternoon": 15.5,
    "evening": 19.5,
    "night": 23.0,
    "late": 23.0,
}


def timing_hours(levels: Sequence[str] | None, seed: int, factor: str = "timing") -> np.ndarray:
    """Local delivery hour of every timing level, shape ``(T,)``; NaN means "at the visit"
    (no timing factor). Level names like ``h18`` or ``18:00`` give that hour."""
    if levels is None:
        return np.array([np.nan])
    hours = []
    for name in levels:
        key = name.lower()
        if key in _SLOTS:
            hours.append(_SLOTS[key])
            continue
        match = re.fullmatch(r"h?(\d{1,2})(?::(\d{2}))?h?", key)
        if match and int(match.group(1)) < 24:
            hours.append(int(match.group(1)) + int(match.group(2) or 0) / 60.0)
            continue
        hours.append(float(named_rng(seed, factor, name).uniform(7.0, 22.0)))
    return np.array(hours, dtype=np.float64)
