"""How the store writes and reads its JSON columns: orjson where it gives exactly what the
standard library gives, the standard library where it would not.

Every decision stores three JSON values (its context, action and exclusions) and the reward
join reads them back, so encoding them was a few percent of a simulation's CPU; orjson does it
about five times faster. Its text is compact (``{"a":1}`` rather than ``{"a": 1}``), which
parses to the same values. Where orjson would change a value, the standard library's ``json``
takes over, so what is read back is what ``json`` would read:

- writing: orjson turns NaN and infinities into ``null`` (``json`` writes ``NaN`` and
  ``Infinity``) and refuses integers beyond 64 bits; text holding ``null`` and every refusal go
  to ``json``.
- reading: orjson refuses ``NaN`` and ``Infinity`` and reads integers beyond 64 bits as floats
  (of magnitude 2**63 or more); refusals, and values holding such a float, go to ``json``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
# orjson reads an integer beyond 64 bits (below -2**63 or above 2**64 - 1) as a float at least
# this large in magnitude; json reads it exactly.
_BEYOND_64_BITS = float(2**63)


def dumps(value: Any) -> str:
    """``value`` as JSON text that :func:`json.loads` reads back as ``json.dumps``'s would."""
    try:
        text = orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: a type or an integer orjson does not write
        return json.dumps(value)
    if b"null" in text:  # a None, or a NaN or infinity orjson wrote as null
        return json.dumps(value)
    return text.decode()


def loads(text: str | bytes) -> Any:
    """JSON ``text`` as :func:`json.loads` reads it."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, Infinity, or text json may still read
        return json.loads(text)
    if _holds_huge_float(value):  # maybe an integer orjson could not keep: json reads it
        return json.loads(text)
    return value


def _holds_huge_float(value: Any) -> bool:
    """Whether ``value`` holds a float of magnitude ``2**63`` or more, at any depth."""
    kind = type(value)
    if kind is float:
        return not -_BEYOND_64_BITS < value < _BEYOND_64_BITS
    if kind is not dict and kind is not list:
        return False
    # A plain loop: most values are flat objects, and a generator per value cost more than
    # the parse.
    for item in value.values() if kind is dict else value:
        kind = type(item)
        if kind is float:
            if not -_BEYOND_64_BITS < item < _BEYOND_64_BITS:
                return True
        elif (kind is dict or kind is list) and _holds_huge_float(item):
            return True
    return False
