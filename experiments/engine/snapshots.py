"""Policy state <-> bytes for the snapshot table: a plain ``.npz`` archive, no pickle."""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np


def pack_state(state: Mapping[str, np.ndarray]) -> bytes:
    """Serialise a policy state (name -> array) to ``.npz`` bytes."""
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(value) for name, value in state.items()})
    return buffer.getvalue()


def unpack_state(blob: bytes) -> dict[str, np.ndarray]:
    """Read ``.npz`` bytes back; object arrays are refused (``allow_pickle=False``)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
