"""The base of every typed report value: frozen pydantic models whose numbers are finite or None.

Reports cross three boundaries (the HTTP API, ``engage report --json``, MLflow's ``report.json``)
and JSON has no spelling for NaN or infinity: Starlette refuses them and Python's ``json`` writes
tokens other parsers reject. So an undefined statistic (a relative lift over a holdout mean of 0,
the mean of an empty group) is stored as None from the start, by the :data:`Number` type, and
:meth:`ReportModel.to_json` is the one conversion to JSON data every boundary uses.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

__all__ = ["Number", "ReportModel", "finite_or_none"]


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float, or None when it is None, NaN or infinite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


#: A statistic that may be undefined: a finite float, or None (NaN and infinity become None).
Number = Annotated[float | None, BeforeValidator(finite_or_none)]


class ReportModel(BaseModel):
    """Frozen, no extra fields; :meth:`to_json` gives the JSON data every boundary sends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (enums as their values, tuples as lists, undefined numbers as None)."""
        return self.model_dump(mode="json")
