"""What channel level names mean to the simulated customers.

Fit depends on the device (feature phones cannot see push or in-app; they read SMS), on a
personal preference and, for in-app and push, on engagement; SMS tires the most and in-app
the least. Under drift, push and in-app gain and SMS and email lose over time. Any other name
gets effects drawn by a generator seeded by the factor and level names. A world may give any
level other semantics (:class:`~experiments.simulate.semantics.overrides.LevelSemantics`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from experiments.simulate.checks import check_fields
from experiments.simulate.semantics.common import named_rng, semantics_rows


@dataclass(frozen=True)
class ChannelSemantics:
    """What one channel level does (a value; the defaults are a neutral level).

    Attributes:
        android, ios, feature_phone: click logit shift on each device class (the order of
            :data:`~experiments.simulate.semantics.common.DEVICES`), in [-10, 10].
        engaged: weight of engagement in the fit, in [-5, 5].
        fatigue: fatigue multiplier of a contact, in [0, 100].
        trend: fit gained per day under drift (negative: lost), in [-1, 1].
    """

    android: float = 0.0
    ios: float = 0.0
    feature_phone: float = 0.0
    engaged: float = 0.0
    fatigue: float = 0.6
    trend: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self, CHANNEL_LIMITS)


CHANNEL_LIMITS: dict[str, tuple[float, float]] = {
    "android": (-10.0, 10.0),
    "ios": (-10.0, 10.0),
    "feature_phone": (-10.0, 10.0),
    "engaged": (-5.0, 5.0),
    "fatigue": (0.0, 100.0),
    "trend": (-1.0, 1.0),
}


@dataclass(frozen=True)
class ChannelTable:
    """Per channel level (shape ``(C,)``)."""

    names: tuple[str, ...]
    device_fit: np.ndarray  # (C, len(DEVICES)) click logit shift by device class
    engaged: np.ndarray  # weight of engagement in the fit
    fatigue: np.ndarray  # fatigue per contact
    trend: np.ndarray  # fit gained per day under drift


KNOWN_CHANNELS = {
    #                           android ios  feature engaged fatigue trend
    "sms": ChannelSemantics(0.0, -0.1, 0.6, 0.0, 1.0, -0.006),
    "email": ChannelSemantics(-0.3, -0.2, -1.0, 0.1, 0.4, -0.004),
    "push": ChannelSemantics(0.2, 0.3, -4.0, 0.3, 0.8, 0.006),
    "in_app": ChannelSemantics(0.0, 0.1, -4.0, 0.6, 0.25, 0.004),
}
_CHANNEL_ALIASES = {"text": "sms", "e-mail": "email", "inapp": "in_app", "app": "in_app"}
_NEUTRAL_CHANNEL = ChannelSemantics()


def known_channel(name: str) -> ChannelSemantics | None:
    """The built-in semantics of a channel level name (aliases accepted), else None."""
    return KNOWN_CHANNELS.get(_CHANNEL_ALIASES.get(name.lower(), name.lower()))


def _drawn(seed: int, factor: str, name: str) -> ChannelSemantics:
    rng = named_rng(seed, factor, name)
    android, ios, feature_phone = rng.normal(0.0, 0.4, 3)
    return ChannelSemantics(
        android,
        ios,
        feature_phone,
        rng.normal(0.2, 0.2),
        rng.uniform(0.3, 1.0),
        rng.normal(0.0, 0.003),
    )


def channel_table(
    levels: Sequence[str] | None,
    seed: int,
    factor: str = "channel",
    overrides: Mapping[str, ChannelSemantics | Mapping[str, float]] | None = None,
) -> ChannelTable:
    """Semantics of every channel level; ``None`` (no channel factor) is one neutral level.

    ``overrides`` maps a level name to its complete semantics or to the fields that replace
    its own (built-in or drawn) ones.
    """
    names, table = semantics_rows(
        levels,
        _NEUTRAL_CHANNEL,
        lambda name: known_channel(name) or _drawn(seed, factor, name),
        overrides,
    )
    return ChannelTable(names, table[:, 0:3].copy(), table[:, 3], table[:, 4], table[:, 5])
