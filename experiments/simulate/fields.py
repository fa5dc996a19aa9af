"""Which context fields the world can fill in, and how a spec's context schema maps onto them.

Known fields (the name decides; the declared type must match):

- categorical: ``device`` (android, ios, feature_phone), ``plan`` (prepaid, postpaid, hybrid),
  ``region`` (north, south, east, west, central; each region has a time-zone offset);
- numeric: ``tenure_months``, ``usage_Nd`` (GB) / ``spend_Nd`` (revenue) / ``contacts_Nd`` for
  1 <= N <= 30 (sums over the last N days of the simulated daily series, today excluded),
  ``local_hour`` (integer hour of the visit in the customer's time zone), ``days_since_contact``,
  ``age``, ``day_of_week`` (0 = Monday), ``engagement_score`` (0-100, a noisy view of the
  hidden engagement, as a CRM score would be), ``active_offers``;
- boolean: ``is_roaming``/``roaming``, ``is_weekend``/``weekend``.

A categorical field whose levels lack some of the world's values maps each missing value to
a declared level that no value maps to yet, or else to one chosen by a generator seeded by
the field name (the field stays informative, only coarser). Any other field is filled with
noise that is fixed per customer and carries no signal: numeric uniform in ``[min, max]``
(or ``min + Exp(1)``, ``max - Exp(1)``, ``N(0, 1)`` when a bound is missing), boolean true
with probability 0.3, categorical uniform over its levels. Numeric values are clipped to the
declared bounds.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from experiments.simulate.semantics import DEVICES

PLANS = ("prepaid", "postpaid", "hybrid")
REGIONS = ("north", "south", "east", "west", "central")
#: Local time minus world time, hours, per region.
REGION_OFFSETS = (0.0, 0.0, 1.0, -1.0, 0.0)

KNOWN_CATEGORICAL: dict[str, tuple[str, ...]] = {
    "device": DEVICES,
    "plan": PLANS,
    "region": REGIONS,
}
KNOWN_NUMERIC = frozenset(
    {
        "tenure_months",
        "local_hour",
        "days_since_contact",
        "age",
        "day_of_week",
        "engagement_score",
        "active_offers",
    }
)
KNOWN_BOOLEAN = {
    "is_roaming": "roaming",
    "roaming": "roaming",
    "is_weekend": "weekend",
    "weekend": "weekend",
}
_WINDOW = re.compile(r"(usage|spend|contacts)_(\d+)d")
HISTORY_DAYS = 30


class ContextFieldLike(Protocol):
    """What the world reads from a context field: ``type`` ('numeric', 'boolean' or
    'categorical'), ``levels`` for categorical fields and optional ``min``/``max``."""

    @property
    def type(self) -> str: ...


@dataclass(frozen=True)
class FieldPlan:
    """How one context field is produced.

    ``source`` is the known quantity's name (``"usage"`` with ``window`` days for windowed
    sums) or ``"noise"``; ``code_map`` maps the world's category codes to the field's level
    positions; ``noise`` holds the fixed per-customer fallback values.
    """

    name: str
    kind: str
    source: str
    levels: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    window: int = 0
    code_map: np.ndarray | None = None
    noise: np.ndarray | None = None


def _field_rng(seed: int, name: str) -> np.random.Generator:
    word = zlib.crc32(name.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([int(seed) % 2**32, 104_729, word]))


def _bound(spec: object, name: str) -> float | None:
    value = getattr(spec, name, None)
    return None if value is None else float(value)


def _level_map(name: str, levels: tuple[str, ...], seed: int) -> np.ndarray:
    """Position in ``levels`` of each of the world's values of a known categorical field:
    its own name when declared; else the first declared level no value maps to yet; else a
    level drawn by a generator seeded by the field name."""
    own = KNOWN_CATEGORICAL[name]
    unclaimed = [level for level in levels if level not in own]
    rng = _field_rng(seed, name)
    codes = []
    for value in own:
        if value in levels:
            codes.append(levels.index(value))
        elif unclaimed:
            codes.append(levels.index(unclaimed.pop(0)))
        else:
            codes.append(int(rng.integers(len(levels))))
    return np.array(codes, dtype=np.int64)


def _mismatch(name: str, provided: str, declared: str) -> ValueError:
    return ValueError(
        f"context field {name!r}: the simulated world provides it as {provided}; "
        f"the spec declares it {declared}"
    )


def plan_fields(
    context_fields: Mapping[str, ContextFieldLike], n_customers: int, seed: int
) -> tuple[FieldPlan, ...]:
    """A production plan per field of the schema; ``ValueError`` names a field the world
    cannot provide (unknown type, or a known name declared with another type)."""
    plans: list[FieldPlan] = []
    for name, spec in context_fields.items():
        kind = getattr(spec, "type", None)
        if kind not in ("numeric", "boolean", "categorical"):
            raise ValueError(
                f"context field {name!r}: unsupported type {kind!r}; "
                "expected 'numeric', 'boolean' or 'categorical'"
            )
        levels: tuple[str, ...] = ()
        if kind == "categorical":
            raw: Sequence[str] | None = getattr(spec, "levels", None)
            if not raw:
                raise ValueError(f"context field {name!r}: a categorical field needs levels")
            levels = tuple(str(level) for level in raw)
        low, high = _bound(spec, "min"), _bound(spec, "max")
        window = _WINDOW.fullmatch(name)
        if name in KNOWN_CATEGORICAL:
            if kind != "categorical":
                raise _mismatch(name, "categorical", kind)
            code_map = _level_map(name, levels, seed)
            plans.append(FieldPlan(name, kind, name, levels, code_map=code_map))
        elif name in KNOWN_NUMERIC or window is not None:
            if kind != "numeric":
                raise _mismatch(name, "numeric", kind)
            days = int(window.group(2)) if window is not None else 0
            if window is not None and not 1 <= days <= HISTORY_DAYS:
                raise ValueError(
                    f"context field {name!r}: the world keeps {HISTORY_DAYS} days of history; "
                    f"got a {days}-day window"
                )
            source = window.group(1) if window is not None else name
            plans.append(FieldPlan(name, kind, source, low=low, high=high, window=days))
        elif name in KNOWN_BOOLEAN:
            if kind != "boolean":
                raise _mismatch(name, "boolean", kind)
            plans.append(FieldPlan(name, kind, KNOWN_BOOLEAN[name]))
        else:
            rng = _field_rng(seed, name)
            noise: np.ndarray
            if kind == "numeric":
                if low is not None and high is not None:
                    noise = rng.uniform(low, high, n_customers)
                elif low is not None:
                    noise = low + rng.exponential(1.0, n_customers)
                elif high is not None:
                    noise = high - rng.exponential(1.0, n_customers)
                else:
                    noise = rng.standard_normal(n_customers)
            elif kind == "boolean":
                noise = rng.random(n_customers) < 0.3
            else:
                noise = rng.integers(len(levels), size=n_customers)
            plans.append(FieldPlan(name, kind, "noise", levels, low, high, noise=noise))
    return tuple(plans)


def to_python_rows(names: Sequence[str], columns: Sequence[list[Any]]) -> list[dict[str, Any]]:
    """Columns of plain Python values (``ndarray.tolist()``) to one dict per row."""
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
