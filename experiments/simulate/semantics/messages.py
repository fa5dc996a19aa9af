"""What message level names mean to the simulated customers.

``informational`` and ``educational`` earn fewer clicks and accepts now but nurture (raise
readiness for the offer they carry, some for its kind and a little for every offer; with
offer ``none``, some for every offer) and, with nurturing on, raise engagement;
``promotional`` and ``urgency`` earn more clicks and slightly more accepts now but cost the
most fatigue (x1.3 and x2.2, against x0.5-0.8 for the others) and nurture nothing;
``personalised`` earns more where the offer fits the customer (``relevance x tanh(readiness
+ 1.5)``). Under drift urgency and promotional framing wear out (lose click appeal daily).
A few aliases are accepted (``promo``, ``urgent``, ``personalized``, ...); any other name gets
effects drawn by a generator seeded by the factor and level names. A world may give any
level other semantics (:class:`~experiments.simulate.semantics.overrides.LevelSemantics`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from experiments.simulate.checks import check_fields
from experiments.simulate.semantics.common import named_rng, semantics_rows


@dataclass(frozen=True)
class MessageSemantics:
    """What one message level does (a value; the defaults are a neutral level).

    Attributes:
        click: click logit shift (its appeal), in [-10, 10].
        accept: accept-given-click logit shift, in [-10, 10].
        relevance: weight of ``tanh(readiness + relevance_centre)`` in both logits, [0, 10].
        nurture: readiness gain per read message, times ``Mechanism.nurture_gain``, [0, 10].
        fatigue: fatigue multiplier of a contact, in [0, 100].
        engagement: engagement gain per read message (nurturing only), in [-1, 1].
        wear_out: click appeal lost per day under drift, in [0, 1].
    """

    click: float = 0.0
    accept: float = 0.0
    relevance: float = 0.0
    nurture: float = 0.0
    fatigue: float = 1.0
    engagement: float = 0.0
    wear_out: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self, MESSAGE_LIMITS)


MESSAGE_LIMITS: dict[str, tuple[float, float]] = {
    "click": (-10.0, 10.0),
    "accept": (-10.0, 10.0),
    "relevance": (0.0, 10.0),
    "nurture": (0.0, 10.0),
    "fatigue": (0.0, 100.0),
    "engagement": (-1.0, 1.0),
    "wear_out": (0.0, 1.0),
}


@dataclass(frozen=True)
class MessageTable:
    """Per message level (shape ``(M,)``); the fields of :class:`MessageSemantics`."""

    names: tuple[str, ...]
    click: np.ndarray
    accept: np.ndarray
    relevance: np.ndarray
    nurture: np.ndarray
    fatigue: np.ndarray
    engagement: np.ndarray
    wear_out: np.ndarray


KNOWN_MESSAGES = {
    "informational": MessageSemantics(0.0, -0.5, 0.0, 0.6, 0.7, 0.03, 0.0),
    "educational": MessageSemantics(-0.3, -0.8, 0.0, 1.0, 0.5, 0.06, 0.0),
    "promotional": MessageSemantics(0.4, 0.25, 0.0, 0.0, 1.3, 0.0, 0.003),
    "urgency": MessageSemantics(0.8, 0.35, 0.0, 0.0, 2.2, 0.0, 0.006),
    "personalised": MessageSemantics(0.15, 0.1, 0.6, 0.3, 0.8, 0.02, 0.0),
}
_MESSAGE_ALIASES = {
    "info": "informational",
    "information": "informational",
    "education": "educational",
    "tutorial": "educational",
    "how_to": "educational",
    "promo": "promotional",
    "promotion": "promotional",
    "urgent": "urgency",
    "scarcity": "urgency",
    "personalized": "personalised",
    "personal": "personalised",
}
_NEUTRAL_MESSAGE = MessageSemantics()


def known_message(name: str) -> MessageSemantics | None:
    """The built-in semantics of a message level name (aliases accepted), else None."""
    return KNOWN_MESSAGES.get(_MESSAGE_ALIASES.get(name.lower(), name.lower()))


def _drawn(seed: int, factor: str, name: str) -> MessageSemantics:
    rng = named_rng(seed, factor, name)
    return MessageSemantics(
        rng.normal(0.0, 0.3),
        rng.normal(0.0, 0.3),
        rng.uniform(0.0, 0.3),
        rng.uniform(0.0, 0.5),
        rng.uniform(0.6, 1.6),
        abs(rng.normal(0.0, 0.02)),
        abs(rng.normal(0.0, 0.002)),
    )


def message_table(
    levels: Sequence[str] | None,
    seed: int,
    factor: str = "message",
    overrides: Mapping[str, MessageSemantics | Mapping[str, float]] | None = None,
) -> MessageTable:
    """Semantics of every message level; ``None`` (no message factor) is one neutral level.

    ``overrides`` maps a level name to its complete semantics or to the fields that replace
    its own (built-in or drawn) ones.
    """
    names, table = semantics_rows(
        levels,
        _NEUTRAL_MESSAGE,
        lambda name: known_message(name) or _drawn(seed, factor, name),
        overrides,
    )
    return MessageTable(names, *(table[:, column].copy() for column in range(7)))
