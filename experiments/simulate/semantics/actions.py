"""A decision space read into effect tables: which factor plays which role, each action's
level of the four known factors, and the seeded effects of every other factor.

The world reads four factors by name: ``offer``, ``message``, ``channel`` and ``timing`` (a
few aliases are accepted, see ``FACTOR_ALIASES``). Every level of any other factor gets a
click shift, an accept shift and a fatigue multiplier drawn by a generator seeded by
``(seed, factor name, level name)``. A missing factor behaves as one neutral level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bandit import DecisionSpace
from experiments.simulate.semantics.channels import ChannelTable, channel_table
from experiments.simulate.semantics.common import named_rng
from experiments.simulate.semantics.messages import MessageTable, message_table
from experiments.simulate.semantics.offers import OfferTable, offer_table
from experiments.simulate.semantics.overrides import LevelSemantics
from experiments.simulate.semantics.timing import TimingTable, timing_table

FACTOR_ALIASES = {
    "offer": ("offer", "offers", "product"),
    "message": ("message", "messages", "creative", "framing", "copy"),
    "channel": ("channel", "channels"),
    "timing": ("timing", "time", "send_time", "slot"),
}


@dataclass(frozen=True)
class ActionTable:
    """Each action's level of the four known factors, and the summed effects of the others.

    All arrays have shape ``(A,)``.
    """

    offer: np.ndarray
    message: np.ndarray
    channel: np.ndarray
    timing: np.ndarray
    extra_click: np.ndarray
    extra_accept: np.ndarray
    extra_fatigue: np.ndarray  # multiplier


@dataclass(frozen=True)
class Semantics:
    """Everything the world reads from a decision space: one table per factor role and the
    per-action view that joins them."""

    offers: OfferTable
    messages: MessageTable
    channels: ChannelTable
    timings: TimingTable
    actions: ActionTable
    factor_roles: dict[str, str]  # factor name -> role ("offer", ..., or "other")


def _role_of(name: str) -> str:
    for role, aliases in FACTOR_ALIASES.items():
        if name.lower() in aliases:
            return role
    return "other"


def _checked(
    levels: LevelSemantics, role: str, factor: str | None, names: Sequence[str] | None
) -> Mapping[str, Any]:
    """The overrides of ``role``, each naming a level of the space's factor in that role."""
    overrides = levels.for_role(role)
    unknown = sorted(set(overrides) - set(names or ()))
    if unknown:
        has = (
            f"the {role} factor {factor!r} has levels {list(names or ())}"
            if factor
            else (f"the decision space has no {role} factor")
        )
        raise ValueError(f"LevelSemantics gives semantics to {role} levels {unknown}, but {has}")
    return overrides


def build_semantics(
    space: DecisionSpace, seed: int, levels: LevelSemantics | None = None
) -> Semantics:
    """Read a decision space's factors and levels into effect tables; ``levels`` gives some
    message, channel or timing levels other semantics than their names'."""
    roles: dict[str, str] = {}
    taken: set[str] = set()
    for name in space.factor_names:
        role = _role_of(name)
        if role != "other" and role in taken:
            role = "other"
        taken.add(role)
        roles[name] = role
    by_role = {role: name for name, role in roles.items() if role != "other"}
    index = space.level_index
    n_actions = space.n_actions
    zeros = np.zeros(n_actions, dtype=np.int64)

    def column(role: str) -> np.ndarray:
        if role not in by_role:
            return zeros
        return index[:, space.factor_names.index(by_role[role])].copy()

    if "offer" in by_role:
        offers = offer_table(space.factors[by_role["offer"]], seed, by_role["offer"])
    else:  # every action carries one generic product
        offers = offer_table(("(generic)",), seed, "offer")
    levels = levels if levels is not None else LevelSemantics()
    own = {
        role: space.factors.get(by_role.get(role, "")) for role in ("message", "channel", "timing")
    }
    overrides = {role: _checked(levels, role, by_role.get(role), own[role]) for role in own}
    messages = message_table(own["message"], seed, overrides=overrides["message"])
    channels = channel_table(own["channel"], seed, overrides=overrides["channel"])
    timings = timing_table(own["timing"], seed, overrides=overrides["timing"])

    extra_click = np.zeros(n_actions)
    extra_accept = np.zeros(n_actions)
    extra_fatigue = np.ones(n_actions)
    for position, name in enumerate(space.factor_names):
        if roles[name] != "other":
            continue
        effects = np.array(
            [
                (
                    (rng := named_rng(seed, name, level)).normal(0.0, 0.25),
                    rng.normal(0.0, 0.25),
                    rng.lognormal(0.0, 0.2),
                )
                for level in space.factors[name]
            ]
        )
        codes = index[:, position]
        extra_click += effects[codes, 0]
        extra_accept += effects[codes, 1]
        extra_fatigue *= effects[codes, 2]
    actions = ActionTable(
        offer=column("offer"),
        message=column("message"),
        channel=column("channel"),
        timing=column("timing"),
        extra_click=extra_click,
        extra_accept=extra_accept,
        extra_fatigue=extra_fatigue,
    )
    return Semantics(offers, messages, channels, timings, actions, roles)
