"""One validator for every configuration value of the simulator, so that every refusal has
the same form and names the field and the range it must lie in, as in "The 'visit_rate'
parameter of WorldConfig must be a float in [0, 1]. Got 1.5."
"""

from __future__ import annotations

import math

import numpy as np


def check_value(
    owner: str,
    name: str,
    value: object,
    kind: type,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    high_open: bool = False,
) -> None:
    """Raise ``ValueError`` unless ``value`` is a ``kind`` (``int``, ``float`` or ``bool``)
    in ``[low, high]`` (``[low, high)`` with ``high_open``); a float must be finite, and an
    int is accepted where a float is expected (a bool never is)."""
    upper = "inf" if math.isinf(high) else f"{high:g}"
    text = f"[{low:g}, {upper}{')' if high_open else ']'}"
    what = "an int" if kind is int else "a bool" if kind is bool else "a float"
    message = f"The '{name}' parameter of {owner} must be {what}"
    if kind is bool:
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{message}. Got {value!r}.")
        return
    message += f" in {text}. Got {value!r}."
    if isinstance(value, bool) or not isinstance(value, int if kind is int else int | float):
        raise ValueError(message)
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high or (high_open and number == high):
        raise ValueError(message)


def check_fields(value: object, limits: dict[str, tuple[float, float]]) -> None:
    """Check every float field of a dataclass ``value`` against its ``(low, high)`` in
    ``limits`` (``high`` is open when it is 24, the hours of a day)."""
    owner = type(value).__name__
    for name, (low, high) in limits.items():
        check_value(owner, name, getattr(value, name), float, low, high, high_open=high == 24.0)
