"""What timing level names mean to the simulated customers: a local delivery hour.

Slots: morning 9, breakfast 8, lunch and midday 12.5, noon 12, afternoon 15.5, evening 19.5,
night and late 23; names like ``h18`` or ``18:00`` give that hour; any other name gets an hour
in [7, 22) drawn by a generator seeded by the factor and level names. The fit falls with the
squared distance to the customer's preferred hour; night slots (22:00-07:00) cost clicks and
double the fatigue (see :mod:`experiments.simulate.model`). A world may also give a level its
own click shift and fatigue multiplier
(:class:`~experiments.simulate.semantics.overrides.LevelSemantics`); both are neutral by
default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from experiments.simulate.checks import check_fields
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


@dataclass(frozen=True)
class TimingSemantics:
    """What one timing level does (a value).

    Attributes:
        hour: local delivery hour, in [0, 24).
        click: click logit shift on top of the fit to the preferred hour, in [-10, 10].
        fatigue: fatigue multiplier on top of the slot's own, in [0, 100].
    """

    hour: float
    click: float = 0.0
    fatigue: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self, TIMING_LIMITS)


TIMING_LIMITS: dict[str, tuple[float, float]] = {
    "hour": (0.0, 24.0),
    "click": (-10.0, 10.0),
    "fatigue": (0.0, 100.0),
}


@dataclass(frozen=True)
class TimingTable:
    """Per timing level (shape ``(T,)``); ``hour`` is NaN for "at the visit" (no timing
    factor)."""

    names: tuple[str, ...]
    hour: np.ndarray
    click: np.ndarray
    fatigue: np.ndarray


def _known_hour(name: str) -> float | None:
    key = name.lower()
    if key in _SLOTS:
        return _SLOTS[key]
    match = re.fullmatch(r"h?(\d{1,2})(?::(\d{2}))?h?", key)
    if match and int(match.group(1)) < 24:
        return int(match.group(1)) + int(match.group(2) or 0) / 60.0
    return None


def known_timing(name: str) -> TimingSemantics | None:
    """The built-in semantics of a timing level name (a slot or ``hHH``/``HH:MM``), else
    None."""
    hour = _known_hour(name)
    return None if hour is None else TimingSemantics(hour)


def timing_table(
    levels: Sequence[str] | None,
    seed: int,
    factor: str = "timing",
    overrides: Mapping[str, TimingSemantics | Mapping[str, float]] | None = None,
) -> TimingTable:
    """Semantics of every timing level; ``None`` (no timing factor) is one level "at the
    visit". ``overrides`` maps a level name to its complete semantics or to the fields that
    replace its own."""
    if levels is None:
        return TimingTable(("(at visit)",), np.array([np.nan]), np.zeros(1), np.ones(1))
    hours = []
    for name in levels:
        hour = _known_hour(name)
        if hour is None:
            hour = float(named_rng(seed, factor, name).uniform(7.0, 22.0))
        hours.append(hour)
    click = np.zeros(len(levels))
    fatigue = np.ones(len(levels))
    for position, name in enumerate(levels):
        override = (overrides or {}).get(name)
        if override is None:
            continue
        if not isinstance(override, TimingSemantics):
            override = replace(TimingSemantics(hours[position]), **override)
        hours[position], click[position], fatigue[position] = (
            override.hour,
            override.click,
            override.fatigue,
        )
    return TimingTable(tuple(levels), np.array(hours, dtype=np.float64), click, fatigue)
