"""The value types a spec's fields are written in: durations, strict numbers, hours.

A duration is read from '14d', '36h', '90m', '30s' (or compounds such as '1d12h'), from
ISO-8601 ('P14D', 'PT36H') or from a number of seconds, and written to JSON as seconds, so a
spec round-trips through JSON. Numbers are strict: ``true``/``false`` and numeric strings are
refused rather than coerced, so a typo in a TOML file is an error and not a silent 1.0.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from numbers import Real
from typing import Annotated

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    TypeAdapter,
    ValidationError,
)

_DURATION_PATTERN = re.compile(r"(?:\d+(?:\.\d+)?[wdhms])+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT_SECONDS = {"w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}
_DURATION_HELP = (
    "must be a duration such as '14d', '36h', '90m', '30s', ISO-8601 'P14D' or a number of seconds"
)
_TIMEDELTA = TypeAdapter(timedelta)

#: Every spec model is frozen and rejects unknown fields, so a typo never falls back to a default.
FROZEN = ConfigDict(frozen=True, extra="forbid")


def parse_duration(value: object) -> object:
    """Accept '14d' / '36h' / '90m' / '30s' (also compounds like '1d12h'), ISO-8601
    ('P14D', 'PT36H') and plain seconds; return a ``timedelta``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{_DURATION_HELP}; got {value!r}")
    if isinstance(value, Real):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(f"{_DURATION_HELP}; got {value!r}")
        try:
            return timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f"{_DURATION_HELP} that fits in a timedelta; got {value!r}") from None
    if isinstance(value, str):
        text = value.strip()
        if _DURATION_PATTERN.fullmatch(text):
            seconds = sum(
                float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text)
            )
            try:
                return timedelta(seconds=seconds)
            except OverflowError:
                raise ValueError(
                    f"{_DURATION_HELP} that fits in a timedelta; got {value!r}"
                ) from None
        if text[:1] in ("P", "-"):
            try:
                return _TIMEDELTA.validate_python(text)
            except ValidationError:
                pass
    raise ValueError(f"{_DURATION_HELP}; got {value!r}")


def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"must be a positive duration; got {value.total_seconds():g} seconds")
    return value


#: A length of time; serialised to JSON as seconds (a float).
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_positive_duration),
    PlainSerializer(lambda value: value.total_seconds(), return_type=float, when_used="json"),
]
#: A finite real number; ``true``/``false`` and numeric strings are refused.
Number = Annotated[float, Strict(), AllowInfNan(False)]
#: An integer; ``true``/``false``, floats and numeric strings are refused.
Integer = Annotated[int, Strict()]
#: An hour of the day, 0 to 23.
Hour = Annotated[int, Strict(), Field(ge=0, le=23)]
