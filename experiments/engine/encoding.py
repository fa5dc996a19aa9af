"""Encode logged decisions' contexts for learning, leaving out the erased ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from experiments.spec import ExperimentSpec, SpecError

__all__ = ["encode_usable"]


class _Logged(Protocol):
    @property
    def context(self) -> dict[str, Any]: ...


Row = TypeVar("Row", bound=_Logged)


def encode_usable(spec: ExperimentSpec, rows: Sequence[Row]) -> tuple[np.ndarray, list[Row]]:
    """Encoded contexts ``(n, d)`` of the rows that can be learned, and those rows.

    A row whose context was erased (right to erasure: stored as ``{}``) and no longer
    encodes is not learned from; it still counts in reports. Any other bad context is an
    error.
    """
    try:
        return spec.encode_logged([row.context for row in rows]), list(rows)
    except SpecError:
        pass  # find the rows at fault, one by one
    encoded, usable = [], []
    for row in rows:
        try:
            encoded.append(spec.encode_logged([row.context])[0])
        except SpecError:
            if row.context:
                raise
            continue
        usable.append(row)
    X = np.array(encoded) if encoded else np.zeros((0, spec.n_features))
    return X, usable
