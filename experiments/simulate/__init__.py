"""A customer-lifetime simulator: customers with hidden state that drifts and reacts to what
we send them (response, fatigue, nurturing, churn, revenue), so policies can be tested
before they touch customers. Pure numpy; see :mod:`experiments.simulate.world`."""

from experiments.simulate.config import WorldConfig
from experiments.simulate.events import EVENT_NAMES, Events
from experiments.simulate.fields import ContextFieldLike
from experiments.simulate.oracle import RolloutResult, greedy_rollout
from experiments.simulate.world import CustomerWorld

__all__ = [
    "EVENT_NAMES",
    "ContextFieldLike",
    "CustomerWorld",
    "Events",
    "RolloutResult",
    "WorldConfig",
    "greedy_rollout",
]
