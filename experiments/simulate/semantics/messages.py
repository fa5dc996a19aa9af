"""What message level names mean to the simulated customers.

``informational`` and ``educational`` earn fewer clicks and accepts now but nurture (raise
readiness for the offer they carry, some for its kind and a little for every offer; with
offer ``none``, some for every offer) and, with nurturing on, raise engagement;
``promotional`` and ``urgency`` earn more clicks and slightly more accepts now but cost the
most fatigue (x1.3 and x2.2, against x0.5-0.8 for the others) and nurture nothing;
``personalised`` earns more where the offer fits the customer (``relevance x tanh(readiness
+ 1.5)``). Under drift urgency and promotional framing wear out (lose click appeal daily).
A few aliases are accepted (``promo``, ``urgent``, ``personalized``, ...); any other name gets
effects drawn by a generator seeded by the factor and level names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from experiments.simulate.semantics.common import named_rng


@dataclass(frozen=True)
class MessageTable:
    """Per message level (shape ``(M,)``)."""

    names: tuple[str, ...]
    click: np.ndarray  # click logit shift
    accept: np.ndarray  # accept-given-click logit shift
    relevance: np.ndarray  # weight of tanh(readiness + 1.5) in both logits
    nurture: np.ndarray  # readiness gain per read message (x WorldConfig.nurture_gain)
    fatigue: np.ndarray  # fatigue multiplier
    engagement: np.ndarray  # engagement gain per read message (nurturing only)
    wear_out: np.ndarray  # click appeal lost per day under drift


_MESSAGES = {
    #               click accept relev nurture fatigue engage wear_out
    "informational": (0.0, -0.5, 0.0, 0.6, 0.7, 0.03, 0.0),
    "educational": (-0.3, -0.8, 0.0, 1.0, 0.5, 0.06, 0.0),
    "promotional": (0.4, 0.25, 0.0, 0.0, 1.3, 0.0, 0.003),
    "urgency": (0.8, 0.35, 0.0, 0.0, 2.2, 0.0, 0.006),
    "personalised": (0.15, 0.1, 0.6, 0.3, 0.8, 0.02, 0.0),
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
_NEUTRAL_MESSAGE = (0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def message_table(levels: Sequence[str] | None, seed: int, factor: str = "message") -> MessageTable:
    """Semantics of every message level; ``None`` (no message factor) is one neutral level."""
    rows = []
    names = tuple(levels) if levels is not None else ("(neutral)",)
    for name in names:
        if levels is None:
            rows.append(_NEUTRAL_MESSAGE)
            continue
        key = _MESSAGE_ALIASES.get(name.lower(), name.lower())
        if key in _MESSAGES:
            rows.append(_MESSAGES[key])
            continue
        rng = named_rng(seed, factor, name)
        rows.append(
            (
                rng.normal(0.0, 0.3),
                rng.normal(0.0, 0.3),
                rng.uniform(0.0, 0.3),
                rng.uniform(0.0, 0.5),
                rng.uniform(0.6, 1.6),
                abs(rng.normal(0.0, 0.02)),
                abs(rng.normal(0.0, 0.002)),
            )
        )
    table = np.array(rows, dtype=np.float64)
    return MessageTable(names, *(table[:, column].copy() for column in range(7)))
