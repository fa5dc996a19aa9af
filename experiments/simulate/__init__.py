"""A customer-lifetime simulator: customers with hidden state that drifts and reacts to what
we send them (response, fatigue, nurturing, churn, revenue), so policies can be tested
before they touch customers. Pure numpy; see :mod:`experiments.simulate.world`.

A world is configured by one value, :class:`WorldConfig`: its size and seed, its mechanisms,
what its levels mean (:class:`LevelSemantics` of :class:`MessageSemantics`,
:class:`ChannelSemantics`, :class:`TimingSemantics`), the constants of the customers'
behaviour (:class:`Mechanism`) and a burn-in of business as usual under
:class:`ContactRules`. :func:`greedy_rollout` runs the oracles, optionally under contact rules.
"""

from experiments.simulate.config import WorldConfig
from experiments.simulate.events import EVENT_NAMES, Events
from experiments.simulate.fields import ContextFieldLike
from experiments.simulate.model import Mechanism
from experiments.simulate.oracle import RolloutResult, greedy_rollout
from experiments.simulate.rules import ContactRules
from experiments.simulate.semantics import (
    ChannelSemantics,
    LevelSemantics,
    MessageSemantics,
    TimingSemantics,
)
from experiments.simulate.world import CustomerWorld

__all__ = [
    "EVENT_NAMES",
    "ChannelSemantics",
    "ContactRules",
    "ContextFieldLike",
    "CustomerWorld",
    "Events",
    "LevelSemantics",
    "Mechanism",
    "MessageSemantics",
    "RolloutResult",
    "TimingSemantics",
    "WorldConfig",
    "greedy_rollout",
]
