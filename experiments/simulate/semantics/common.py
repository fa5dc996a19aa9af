"""What every factor role's semantics share: the customer features readiness is linear in,
the device classes, the night window, the seeded generator that gives unknown level
names stable effects, and a role's table of levels with a world's overrides applied.

A generator seeded by ``(seed, factor name, level name)`` means renaming or adding one
level does not change the effects drawn for the others.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, replace
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    _Semantics = TypeVar("_Semantics", bound=DataclassInstance)
else:
    _Semantics = TypeVar("_Semantics")

#: Columns of the customer feature matrix that readiness is linear in (see the world).
FEATURES = (
    "intercept",
    "need",  # log of (daily data use / 0.25 GB): 0 for a typical smartphone user
    "tenure_years",  # capped at 6
    "prepaid",
    "postpaid",
    "ios",
    "feature_phone",
    "roaming",
    "engagement",
    "log_spend",  # log of (daily spend / 1.0)
)
#: Position of each feature in :data:`FEATURES`.
FEATURE_INDEX = {name: position for position, name in enumerate(FEATURES)}

#: Device classes the world knows, and their column in the channel fit table.
DEVICES = ("android", "ios", "feature_phone")

NIGHT_START, NIGHT_END = 22.0, 7.0


def named_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on the seed and the names (stable across runs)."""
    words = [zlib.crc32(name.encode("utf-8")) for name in names]
    return np.random.default_rng(np.random.SeedSequence([int(seed) % 2**32, 7919, *words]))


def is_night(hour: np.ndarray | float) -> np.ndarray:
    """True for local hours in the night window [22:00, 07:00)."""
    hour = np.asarray(hour, dtype=np.float64) % 24.0
    return (hour >= NIGHT_START) | (hour < NIGHT_END)


def semantics_rows(
    levels: Sequence[str] | None,
    neutral: _Semantics,
    own: Callable[[str], _Semantics],
    overrides: Mapping[str, _Semantics | Mapping[str, float]] | None,
) -> tuple[tuple[str, ...], np.ndarray]:
    """The level names and each level's semantics as a row of floats (its fields in order).

    A level's semantics are ``own(name)`` (built-in or drawn), replaced whole by a semantics
    override or field by field by a mapping override; ``levels`` None (the role's
    factor is missing) is one ``neutral`` level named ``"(neutral)"``.
    """
    rows = [neutral] if levels is None else [own(name) for name in levels]
    for position, name in enumerate(levels or ()):
        override = (overrides or {}).get(name)
        if isinstance(override, Mapping):
            rows[position] = replace(rows[position], **override)
        elif override is not None:
            rows[position] = override
    table = np.array([astuple(row) for row in rows], dtype=np.float64)
    return (tuple(levels) if levels is not None else ("(neutral)",)), table
