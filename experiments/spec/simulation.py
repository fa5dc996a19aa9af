"""The ``[simulation]`` section: the world ``engage run`` simulates an experiment in.

Nothing that serves decisions reads it; ``engage run`` builds its
:class:`~experiments.simulate.WorldConfig` from it, so the same learners can be checked on
worlds where other levels do the harm, with no change but this section::

    [simulation]
    burn_in_days = 28                     # days of business as usual lived before day 0
    learn_from_burn_in = true             # every arm starts from the burn-in's log

    [simulation.levels.message]
    informational = "urgency"             # informational behaves as urgency does ...
    urgency = "informational"             # ... and urgency as informational
    educational = { fatigue = 1.5 }       # educational tires more; the rest is its own

    [simulation.mechanism]
    fatigue_half_life = 10.0              # constants of the customers' behaviour

``levels`` gives message, channel and timing levels (by role, as the simulator reads the
factors: ``message``, ``channel``, ``timing`` or their aliases) the semantics of a built-in
level by name, or new values for some fields
(:class:`~experiments.simulate.LevelSemantics`); ``mechanism`` sets constants of
:class:`~experiments.simulate.Mechanism`. Every value is checked at parse time and a bad one
is refused naming its field, such as ``simulation.levels.message.urgency.fatigue``; a level
the decision space does not have is refused by name (:meth:`SimulationSpec.check_levels`).
With no section the world is today's default world, lived after a burn-in of
:data:`DEFAULT_BURN_IN_DAYS` days.

The simulator is imported only to check a section that overrides something, so serving
experiments never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, StrictBool, StrictStr, model_validator

from experiments.spec.errors import SpecError, names
from experiments.spec.values import FROZEN, Integer

if TYPE_CHECKING:
    from experiments.simulate import LevelSemantics, Mechanism

__all__ = ["DEFAULT_BURN_IN_DAYS", "ROLES", "SimulationSpec"]

#: Burn-in of ``engage run``'s world when the spec does not say: four half-lives of fatigue
#: (7 days), so day 0 starts with fatigue near its steady state under business as usual
#: instead of at zero, which would favour tiring messages early. The simulator's own default
#: stays 0 (a fresh population).
DEFAULT_BURN_IN_DAYS = 28

#: The factor roles whose levels ``levels`` may give other semantics.
ROLES = ("message", "channel", "timing")

_CHECK_MESSAGE = re.compile(r"The '[^']*' parameter of \w+ (must be .*?)\. Got (.*)\.$", re.S)


class SimulationSpec(BaseModel):
    """The simulated world of ``engage run`` (see the module docstring).

    Attributes:
        burn_in_days: days of business as usual (uniform eligible actions under the spec's
            contact rules) lived before day 0; 0 starts every customer fresh.
        learn_from_burn_in: every arm's store starts with the burn-in's log, its contacts
            as decisions with their uniform propensities and the outcomes that followed, so
            learners and contact state start from business as usual, as a deployment starts
            from its predecessor's campaign log (False: arms start with an empty store). The
            world, its oracles and the holdout are the same either way.
        levels: role (``message``, ``channel``, ``timing``) -> level name -> the name of a
            built-in level of that role, or a table of semantics fields and values.
        mechanism: constants of the customers' behaviour by name, and their values.
    """

    model_config = FROZEN

    burn_in_days: Integer = Field(default=DEFAULT_BURN_IN_DAYS, ge=0, le=3650)
    learn_from_burn_in: StrictBool = False
    levels: dict[StrictStr, dict[StrictStr, Any]] = Field(default_factory=dict)
    mechanism: dict[StrictStr, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _values(self) -> SimulationSpec:
        if self.learn_from_burn_in and self.burn_in_days == 0:
            raise SpecError(
                "learn_from_burn_in", "needs a burn-in to learn from; set burn_in_days above 0"
            )
        for role, overrides in self.levels.items():
            if role not in ROLES:
                raise SpecError(f"levels.{role}", f"unknown role; expected one of {names(ROLES)}")
            for level, value in overrides.items():
                _check_level(role, level, value)
        if self.mechanism:
            from experiments.simulate import Mechanism

            known = [item.name for item in fields(Mechanism)]
            for name, value in self.mechanism.items():
                if name not in known:
                    raise SpecError(
                        f"mechanism.{name}", f"unknown constant; expected one of {names(known)}"
                    )
                _check_number(f"mechanism.{name}", value, lambda v, n=name: Mechanism(**{n: v}))
        return self

    def check_levels(self, factors: Mapping[str, Sequence[str]]) -> None:
        """Refuse a level override naming no level of the factor that plays its role in
        ``factors`` (the spec's), as :class:`SpecError` on ``simulation.levels.<role>.<level>``.
        """
        if not any(self.levels.values()):
            return
        from experiments.simulate.semantics.actions import FACTOR_ALIASES

        by_role: dict[str, str] = {}
        for name in factors:
            for role, aliases in FACTOR_ALIASES.items():
                if name.lower() in aliases:
                    by_role.setdefault(role, name)
        for role, overrides in self.levels.items():
            factor = by_role.get(role)
            for level in overrides:
                if factor is None:
                    raise SpecError(
                        f"simulation.levels.{role}.{level}",
                        f"the decision space has no {role} factor (factors {names(list(factors))})",
                    )
                if level not in factors[factor]:
                    raise SpecError(
                        f"simulation.levels.{role}.{level}",
                        f"unknown level; the {role} factor {factor!r} has levels "
                        f"{names(list(factors[factor]))}",
                    )

    def level_semantics(self) -> LevelSemantics:
        """The overrides as the simulator's :class:`~experiments.simulate.LevelSemantics`."""
        from experiments.simulate import LevelSemantics

        plural = {"message": "messages", "channel": "channels", "timing": "timings"}
        return LevelSemantics(
            **{plural[role]: dict(overrides) for role, overrides in self.levels.items()}
        )

    def mechanism_value(self) -> Mechanism:
        """The constants as the simulator's :class:`~experiments.simulate.Mechanism`."""
        from experiments.simulate import Mechanism

        return Mechanism(**self.mechanism)


def _check_level(role: str, level: str, value: object) -> None:
    """One level override: a built-in level's name, or a table of known fields in range."""
    from experiments.simulate import ChannelSemantics, MessageSemantics, TimingSemantics
    from experiments.simulate.semantics.channels import known_channel
    from experiments.simulate.semantics.messages import known_message
    from experiments.simulate.semantics.timing import known_timing

    where = f"levels.{role}.{level}"
    kind, known = {
        "message": (MessageSemantics, known_message),
        "channel": (ChannelSemantics, known_channel),
        "timing": (TimingSemantics, known_timing),
    }[role]
    if isinstance(value, str):
        if known(value) is None:
            raise SpecError(where, f"{value!r} is not a built-in {role} level")
        return
    if not isinstance(value, Mapping) or not value:
        raise SpecError(
            where,
            f"must be a built-in {role} level's name or a table of {kind.__name__} fields; "
            f"got {value!r}",
        )
    template = kind(12.0) if kind is TimingSemantics else kind()
    allowed = [item.name for item in fields(kind)]
    for name, number in value.items():
        if name not in allowed:
            raise SpecError(f"{where}.{name}", f"unknown field; expected one of {names(allowed)}")
        _check_number(f"{where}.{name}", number, lambda v, n=name: replace(template, **{n: v}))


def _check_number(where: str, value: object, build: Any) -> None:
    """``value`` must be a real number (not a bool) that ``build(value)`` accepts."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(where, f"must be a number; got {value!r}")
    try:
        build(float(value))
    except ValueError as error:
        match = _CHECK_MESSAGE.match(str(error))
        text = f"{match.group(1)}; got {match.group(2)}" if match else str(error)
        text = text.replace("must be a float", "must be a number", 1)
        raise SpecError(where, text) from None
