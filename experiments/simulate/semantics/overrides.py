"""A world's own meaning of its levels: which message, channel or timing level does what.

By default a level means what its name says (the built-in semantics of each role's module).
:class:`LevelSemantics` replaces that per level name, in one of three forms::

    LevelSemantics(
        messages={
            "informational": "urgency",      # informational behaves as urgency does
            "urgency": "informational",      # ... and urgency as informational
            "educational": {"fatigue": 1.5}, # educational tires more; the rest is its own
        },
        channels={"sms": ChannelSemantics(fatigue=0.4)},  # a complete replacement
        timings={"night": {"click": 0.3}},
    )

A string names a built-in level (aliases accepted) whose semantics the level takes; a
mapping sets some fields (of :class:`MessageSemantics`, :class:`ChannelSemantics`,
:class:`TimingSemantics`) over the level's own, built-in or seeded; a semantics value replaces
them all. Values are checked here; that each name is a level of the decision space is checked
when a world is built on one (:func:`~experiments.simulate.semantics.actions.build_semantics`).
Semantics travel with the override, including the wear-out under drift; the drift's random
walks belong to a level's position in its factor, not to its semantics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from experiments.simulate.semantics.channels import ChannelSemantics, known_channel
from experiments.simulate.semantics.messages import MessageSemantics, known_message
from experiments.simulate.semantics.timing import TimingSemantics, known_timing


class FrozenMap(Mapping[str, Any]):
    """A read-only, hashable mapping (sorted by key), so a configuration holding it stays a
    hashable value."""

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items = tuple(sorted((items or {}).items()))
        self._index = dict(self._items)

    def __getitem__(self, key: str) -> Any:
        return self._index[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return repr(dict(self._items))


@dataclass(frozen=True)
class _Role:
    name: str  # the factor role
    plural: str  # the LevelSemantics field
    kind: type  # the semantics value
    known: Callable[[str], Any]  # a built-in level's semantics by name, or None


ROLES = {
    "message": _Role("message", "messages", MessageSemantics, known_message),
    "channel": _Role("channel", "channels", ChannelSemantics, known_channel),
    "timing": _Role("timing", "timings", TimingSemantics, known_timing),
}


@dataclass(frozen=True)
class LevelSemantics:
    """Per level name, semantics that replace the level's own (a value; hashable).

    Attributes:
        messages: message level name -> a built-in message level's name, a
            :class:`MessageSemantics`, or a mapping of its fields to new values.
        channels: the same for channel levels (:class:`ChannelSemantics`).
        timings: the same for timing levels (:class:`TimingSemantics`).

    After construction every value is a semantics value or a :class:`FrozenMap` of field
    values (names resolved to their built-in semantics). ``ValueError`` names the role, the
    level and the field at fault.
    """

    messages: Mapping[str, Any] = field(default_factory=FrozenMap)
    channels: Mapping[str, Any] = field(default_factory=FrozenMap)
    timings: Mapping[str, Any] = field(default_factory=FrozenMap)

    def __post_init__(self) -> None:
        for role in ROLES.values():
            given = getattr(self, role.plural)
            if not isinstance(given, Mapping):
                raise ValueError(
                    f"The '{role.plural}' parameter of LevelSemantics must be a mapping of "
                    f"level names to semantics. Got {given!r}."
                )
            resolved = {name: _resolve(role, name, value) for name, value in given.items()}
            object.__setattr__(self, role.plural, FrozenMap(resolved))

    def for_role(self, role: str) -> Mapping[str, Any]:
        """The overrides of one role (``"message"``, ``"channel"`` or ``"timing"``)."""
        return getattr(self, ROLES[role].plural)

    @classmethod
    def swapped(cls, role: str, first: str, second: str) -> LevelSemantics:
        """Two built-in levels of a role (``"message"``, ``"channel"``, ``"timing"``) trade
        their semantics: ``swapped("message", "informational", "urgency")``."""
        if role not in ROLES:
            raise ValueError(f"'role' must be one of {sorted(ROLES)}; got {role!r}")
        return cls(**{ROLES[role].plural: {first: second, second: first}})


def _resolve(role: _Role, name: object, value: object) -> Any:
    where = f"The '{role.plural}' parameter of LevelSemantics"
    if not isinstance(name, str):
        raise ValueError(f"{where} must have level names as keys. Got {name!r}.")
    if isinstance(value, role.kind):
        return value
    if isinstance(value, str):
        known = role.known(value)
        if known is None:
            raise ValueError(
                f"{where}: level {name!r} is given the semantics of {value!r}, which is not "
                f"a built-in {role.name} level."
            )
        return known
    if isinstance(value, Mapping):
        names = {item.name for item in fields(role.kind)}
        unknown = sorted(str(key) for key in value if key not in names)
        if unknown:
            raise ValueError(
                f"{where}: level {name!r} sets {unknown}, not fields of "
                f"{role.kind.__name__} (expected some of {sorted(names)})."
            )
        try:  # check the values against the fields' ranges on a template
            replace(_template(role), **value)
        except ValueError as error:
            raise ValueError(f"{where}: level {name!r}: {error}") from None
        return FrozenMap(value)
    raise ValueError(
        f"{where}: level {name!r} must map to a built-in level's name, a "
        f"{role.kind.__name__} or a mapping of its fields. Got {value!r}."
    )


def _template(role: _Role) -> Any:
    return role.kind(12.0) if role.kind is TimingSemantics else role.kind()
