"""What every factor role's semantics share: the customer features readiness is linear in,
the device classes, the night window and the seeded generator that gives unknown level
names stable effects.

A generator seeded by ``(seed, factor name, level name)`` means renaming or adding one
level does not change the effects drawn for the others.
"""

from __future__ import annotations

import zlib

import numpy as np

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
