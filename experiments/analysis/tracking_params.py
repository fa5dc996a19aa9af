"""MLflow params and values from engage's data, without importing ``mlflow``.

* :func:`flatten_params` - a nested spec as MLflow's flat ``name -> text`` params;
* :func:`plain` - any report value (dataclasses, pydantic models, numpy, enums, tuples) as plain
  JSON data, NaN and infinity as None;
* :func:`clean_key` - a metric or param name as MLflow takes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MAX_KEY_LENGTH", "MAX_PARAM_VALUE_LENGTH", "clean_key", "flatten_params", "plain"]

# mlflow.utils.validation.MAX_PARAM_VAL_LENGTH, copied so that flattening needs no mlflow import;
# a test pins it to MLflow's value.
MAX_PARAM_VALUE_LENGTH = 6000
# mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH, the longest param or metric name; pinned too.
MAX_KEY_LENGTH = 250
_TRUNCATION_MARK = "..."
# What MLflow accepts in metric and param names (mlflow.utils.validation, non-Windows).
_BAD_KEY_CHARACTERS = re.compile(r"[^/\w.\- :]")


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a nested spec into MLflow params: ``{"policy": {"params": {"scale": 0.5}}}``
    becomes ``{"policy.params.scale": "0.5"}``.

    Mappings (and dataclasses, pydantic models) nest with ``.``; lists holding mappings nest by
    index (``rules.0.offer``); other lists become compact JSON (``["email", "sms"]``). Scalars
    are written as in TOML/JSON (``true``, ``null``, ``0.5``), strings as they are. Characters
    MLflow refuses in names become ``_``. Values longer than MLflow's limit
    (:data:`MAX_PARAM_VALUE_LENGTH` characters) are cut to it, ending in ``...``.
    """
    flat: dict[str, str] = {}
    for key, value in _as_mapping(params).items():
        name = f"{prefix}.{key}" if prefix else str(key)
        nested = _as_mapping(value) if _is_mapping_like(value) else None
        if nested:
            flat.update(flatten_params(nested, name))
        elif isinstance(value, list | tuple) and any(_is_mapping_like(item) for item in value):
            flat.update(flatten_params({str(i): item for i, item in enumerate(value)}, name))
        else:
            flat[clean_key(name)] = _truncate(_param_text(value))
    return flat


def _is_mapping_like(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
        or callable(getattr(value, "model_dump", None))
    )


def _as_mapping(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if callable(getattr(value, "model_dump", None)):
        return value.model_dump(mode="json")
    raise TypeError(f"params must be a mapping; got {type(value).__name__}")


def _param_text(value: Any) -> str:
    if isinstance(value, str) and not isinstance(value, enum.Enum):
        return value
    data = plain(value)
    if isinstance(data, str):
        return data
    return json.dumps(data, separators=(", ", ": "), ensure_ascii=False)


def _truncate(text: str) -> str:
    if len(text) <= MAX_PARAM_VALUE_LENGTH:
        return text
    return text[: MAX_PARAM_VALUE_LENGTH - len(_TRUNCATION_MARK)] + _TRUNCATION_MARK


def clean_key(name: str) -> str:
    """``name`` with every character MLflow refuses in metric and param names as ``_``, and
    cut to :data:`MAX_KEY_LENGTH` when longer (MLflow refuses the whole batch otherwise): its
    start, ``~`` and 8 hex digits of its hash, so different long names stay different."""
    cleaned = _BAD_KEY_CHARACTERS.sub("_", name)
    if len(cleaned) <= MAX_KEY_LENGTH:
        return cleaned
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return f"{cleaned[: MAX_KEY_LENGTH - 9]}~{digest.hexdigest()[:8]}"


def plain(value: Any) -> Any:
    """JSON-ready copy of ``value``: numpy to Python, NaN and infinity to None, tuples to lists."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if _is_mapping_like(value):
        return plain(_as_mapping(value))
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((plain(item) for item in value), key=str)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy arrays and scalars, without importing numpy here
        return plain(value.tolist())
    return str(value)
