"""One place that checks arguments and writes every error message in the same form.

Messages follow scikit-learn's habit: name the parameter, its owner, what was expected and
what was received, e.g. "The 'alpha' parameter of LinUCB must be a float in [0, inf). Got -1."
Every error is a :class:`BanditValueError`, a ``ValueError`` subclass carrying the field name,
so the service and the CLI can translate it at the edge (HTTP 422, exit code 2).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np


class BanditValueError(ValueError):
    """Bad input to the bandit core; ``field`` names the offending argument."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[BanditValueError], tuple[str, str]]:
        """Rebuilt from its own arguments, so it crosses a process boundary (a worker of
        ``engage run``) as itself, not as a broken pool."""
        return type(self), (self.field, str(self))


def _interval_text(low: float, high: float, closed: str) -> str:
    left = "[" if closed in ("both", "left") and low != -math.inf else "("
    right = "]" if closed in ("both", "right") and high != math.inf else ")"
    lo = "-inf" if low == -math.inf else f"{low:g}"
    hi = "inf" if high == math.inf else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


def check_real(
    value: object,
    name: str,
    owner: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    closed: str = "both",
) -> float:
    """Return ``value`` as a float after checking it is a finite real in the interval."""
    text = _interval_text(low, high, closed)
    message = f"The '{name}' parameter of {owner} must be a float in {text}. Got {value!r}."
    if isinstance(value, bool) or not isinstance(value, Real):
        raise BanditValueError(name, message)
    number = float(value)
    if not math.isfinite(number):
        raise BanditValueError(name, message)
    below = number < low or (number == low and closed in ("neither", "right"))
    above = number > high or (number == high and closed in ("neither", "left"))
    if below or above:
        raise BanditValueError(name, message)
    return number


def check_flag(value: object, name: str, owner: str) -> bool:
    """``value`` as a bool; anything but ``True``/``False`` (numpy's too) is refused by name."""
    if not isinstance(value, bool | np.bool_):
        raise BanditValueError(
            name, f"The '{name}' parameter of {owner} must be true or false. Got {value!r}."
        )
    return bool(value)


def check_choice(value: object, name: str, owner: str, choices: tuple[str, ...]) -> str:
    """``value`` when it is one of ``choices``; anything else is refused by name."""
    if not isinstance(value, str) or value not in choices:
        raise BanditValueError(
            name,
            f"The '{name}' parameter of {owner} must be one of "
            f"{', '.join(map(repr, choices))}; got {value!r}.",
        )
    return value


def check_int(value: object, name: str, owner: str, *, low: int = 0, high: float = math.inf) -> int:
    """Return ``value`` as an int after checking it lies in ``[low, high]``."""
    text = _interval_text(low, high, "both")
    message = f"The '{name}' parameter of {owner} must be an int in {text}. Got {value!r}."
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise BanditValueError(name, message)
    if not low <= int(value) <= high:
        raise BanditValueError(name, message)
    return int(value)


def _as_float_array(value: object, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise BanditValueError(name, f"'{name}' must hold numbers.") from None


def check_matrix(value: object, name: str, *, n_columns: int | None = None) -> np.ndarray:
    """Return a finite float64 2-D array, refusing NaN, infinity and wrong widths."""
    array = _as_float_array(value, name)
    if array.ndim != 2:
        raise BanditValueError(name, f"'{name}' must be a 2-D array; got shape {array.shape}.")
    if n_columns is not None and array.shape[1] != n_columns:
        raise BanditValueError(
            name,
            f"'{name}' must have {n_columns} columns; got shape {array.shape}.",
        )
    if not np.isfinite(array).all():
        raise BanditValueError(name, f"'{name}' must be finite; it contains NaN or infinity.")
    return array


def check_vector(
    value: object, name: str, *, length: int, dtype: type = np.float64, finite: bool = True
) -> np.ndarray:
    """Return a 1-D array of exactly ``length`` entries; never broadcast silently."""
    array = np.asarray(value)
    if array.ndim != 1 or array.shape[0] != length:
        raise BanditValueError(
            name, f"'{name}' must be a 1-D array of length {length}; got shape {array.shape}."
        )
    if dtype is np.int64:
        # dtype.kind rather than np.issubdtype: the same test (signed or unsigned integer),
        # without its Python-level cost on every update.
        if array.size and array.dtype.kind not in "iu":
            raise BanditValueError(name, f"'{name}' must hold integers; got {array.dtype}.")
        return array.astype(np.int64)
    array = _as_float_array(array, name) if dtype is np.float64 else array.astype(dtype)
    if finite and not np.isfinite(array).all():
        raise BanditValueError(name, f"'{name}' must be finite; it contains NaN or infinity.")
    return array


def check_mask(
    value: object, n_rows: int, n_actions: int, *, allowed: np.ndarray | None = None
) -> np.ndarray:
    """Validate an eligibility mask of shape ``(n_rows, n_actions)``; every row needs a True.

    With ``allowed`` (n_actions,) the mask returned is ``value & allowed``, and it is that
    combination in which every row needs a True (one check instead of one before and one
    after combining).
    """
    mask = np.asarray(value)
    if mask.dtype != np.bool_:
        raise BanditValueError("mask", f"'mask' must be a boolean array; got {mask.dtype}.")
    if mask.shape != (n_rows, n_actions):
        raise BanditValueError(
            "mask", f"'mask' must have shape ({n_rows}, {n_actions}); got {mask.shape}."
        )
    if allowed is not None:
        mask = mask & allowed
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise BanditValueError(
            "mask",
            f"'mask' row {int(empty[0])} has no eligible action; every row needs at least one.",
        )
    return mask


def check_actions(value: object, n_rows: int, n_actions: int, name: str = "actions") -> np.ndarray:
    """Validate action indices: integers in ``[0, n_actions)``, one per row; errors name the
    field ``name``."""
    actions = check_vector(value, name, length=n_rows, dtype=np.int64)
    if actions.size and (actions.min() < 0 or actions.max() >= n_actions):
        raise BanditValueError(
            name,
            f"'{name}' must be integers in [0, {n_actions}); got {actions.min()}..{actions.max()}.",
        )
    return actions


def check_propensities(value: object | None, n_rows: int) -> np.ndarray | None:
    """Validate logged propensities: finite, in (0, 1], one per row."""
    if value is None:
        return None
    propensities = check_vector(value, "propensities", length=n_rows)
    if propensities.size and (propensities.min() <= 0 or propensities.max() > 1):
        raise BanditValueError("propensities", "'propensities' must lie in (0, 1].")
    return propensities
