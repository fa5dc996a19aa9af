"""What the level names of a decision space mean to the simulated customers, one module per
factor role.

The world reads four factors by name: ``offer``, ``message``, ``channel`` and ``timing``
(aliases in :data:`~experiments.simulate.semantics.actions.FACTOR_ALIASES`). Known level
names get the semantics documented in each role's module; any other level, and every level of
any other factor, gets effects drawn from a generator seeded by ``(seed, factor name, level
name)``, so renaming or adding one level does not change the others. A missing factor behaves
as one neutral level.

Modules:
    common    features readiness is linear in, device classes, the night window, seeded names
    offers    offer levels: price, duration, renewals, spend and usage, retention, readiness
    messages  message levels: click and accept shifts, relevance, nurture, fatigue, wear-out
    channels  channel levels: device fit, engagement weight, fatigue, trend
    timing    timing levels: the local delivery hour (and optional click shift, fatigue)
    overrides LevelSemantics: a world's own semantics for some levels, by name
    actions   roles of factors, per-action level indices, other factors' seeded effects
"""

from experiments.simulate.semantics.actions import ActionTable, Semantics, build_semantics
from experiments.simulate.semantics.channels import ChannelSemantics, ChannelTable, channel_table
from experiments.simulate.semantics.common import DEVICES, FEATURES, is_night
from experiments.simulate.semantics.messages import MessageSemantics, MessageTable, message_table
from experiments.simulate.semantics.offers import OfferTable, offer_kind, offer_table
from experiments.simulate.semantics.overrides import LevelSemantics
from experiments.simulate.semantics.timing import TimingSemantics, TimingTable, timing_table

__all__ = [
    "DEVICES",
    "FEATURES",
    "ActionTable",
    "ChannelSemantics",
    "ChannelTable",
    "LevelSemantics",
    "MessageSemantics",
    "MessageTable",
    "OfferTable",
    "Semantics",
    "TimingSemantics",
    "TimingTable",
    "build_semantics",
    "channel_table",
    "is_night",
    "message_table",
    "offer_kind",
    "offer_table",
    "timing_table",
]
