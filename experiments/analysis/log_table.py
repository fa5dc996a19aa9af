"""Reading and validating a decision log for ``engage evaluate``.

A log is a CSV or Parquet table with columns ``action``, ``reward`` and ``propensity`` (the
logging policy's probability of the logged action), an optional ``timestamp``, an optional row
key (``id`` or ``decision_id``) and context columns. Every refusal names the column and, where
one row is at fault, the row (counted from 1, as a spreadsheet shows it), because a silently
"repaired" log gives a wrong estimate with exit code 0:

- a missing or empty action is refused, never turned into an action named ``"None"`` or ``""``;
- a numeric column (as the file types it) with a missing or infinite value is refused, never
  re-read as categories;
- ``timestamp`` is ordered as numbers or as ISO-8601 instants, never as text (``"10" < "2"``);
- a categorical context column with too many levels is refused with the flag that drops it,
  since its one-hot encoding grows with rows x levels.

The rows are put in time order for replay; :attr:`LoggedData.order` keeps where each came from,
so a table of target probabilities can be joined to the rows as they were read.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from experiments._files import file_problem
from experiments.errors import InvalidInputError

__all__ = [
    "KEY_COLUMNS",
    "MAX_CATEGORY_LEVELS",
    "MAX_CONTEXT_CELLS",
    "REQUIRED",
    "LoggedData",
    "load_log",
    "numeric_column",
    "read_table",
]

REQUIRED = ("action", "reward", "propensity")
#: Columns that name a row (for joining target probabilities), never context.
KEY_COLUMNS = ("id", "decision_id")
#: Distinct values a categorical context column may have before it must be dropped by name.
MAX_CATEGORY_LEVELS = 256
#: Cells of the encoded context matrix (rows x features): 8 bytes each, 400 MB at most.
MAX_CONTEXT_CELLS = 50_000_000


@dataclass(frozen=True)
class LoggedData:
    """A validated log in time order.

    ``order[i]`` is the position, as read, of the ``i``-th row in time order; ``keys`` holds
    the row key column (``id`` or ``decision_id``) in time order when the log has one.
    """

    action_names: tuple[str, ...]
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    contexts: np.ndarray
    feature_names: tuple[str, ...]
    order: np.ndarray
    key_name: str | None = None
    keys: np.ndarray | None = None


#: Largest log read: the table is read whole into memory.
MAX_LOG_BYTES = 2**30


def read_table(path: Path, *, field: str = "log") -> Any:
    """A CSV or Parquet file as a ``pyarrow.Table``; ``field`` names the option in errors."""
    problem = file_problem(path, max_bytes=MAX_LOG_BYTES)
    if problem is not None:
        raise InvalidInputError(problem, field=field)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InvalidInputError(f"{path.name}: expected a .csv or .parquet file", field=field)
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)
    except Exception as error:  # pyarrow raises its own error types for malformed files
        raise InvalidInputError(
            f"{path.name}: cannot read the table ({error})", field=field
        ) from None


def _is_numeric(column: Any) -> bool:
    import pyarrow.types as pat

    kind = column.type
    return bool(pat.is_integer(kind) or pat.is_floating(kind) or pat.is_boolean(kind))


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0]) + 1


def numeric_column(column: Any, name: str) -> np.ndarray:
    """A numeric column as float64; missing, infinite or non-numeric values refused by name."""
    if not _is_numeric(column):
        raise InvalidInputError(f"column '{name}' must be numeric", field=name)
    missing = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    numbers = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    bad = missing | ~np.isfinite(numbers)
    if bad.any():
        raise InvalidInputError(
            f"column '{name}' has a missing or infinite value at row {_first_row(bad)}",
            field=name,
        )
    return numbers


def _action_names(column: Any) -> np.ndarray:
    missing = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if missing.any():
        raise InvalidInputError(
            f"column 'action' has a missing value at row {_first_row(missing)}", field="action"
        )
    names = np.asarray(column.to_numpy(zero_copy_only=False)).astype(str)
    empty = np.char.strip(names) == ""
    if empty.any():
        raise InvalidInputError(
            f"column 'action' has an empty value at row {_first_row(empty)}", field="action"
        )
    return names


def _instant(text: str, row: int) -> float:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"column 'timestamp' must hold numbers or ISO-8601 times; row {row} is {text[:40]!r}",
            field="timestamp",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _time_order(column: Any) -> np.ndarray:
    """Positions in time order (stable): numbers as numbers, instants as instants."""
    import pyarrow.types as pat

    if _is_numeric(column):
        when = numeric_column(column, "timestamp")
    elif pat.is_timestamp(column.type) or pat.is_date(column.type):
        missing = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if missing.any():
            raise InvalidInputError(
                f"column 'timestamp' has a missing value at row {_first_row(missing)}",
                field="timestamp",
            )
        when = np.asarray(column.cast("int64").to_numpy(zero_copy_only=False), dtype=np.float64)
    else:
        values = column.to_pylist()
        when = np.array(
            [
                _instant("" if value is None else str(value), row + 1)
                for row, value in enumerate(values)
            ]
        )
    return np.argsort(when, kind="stable")


def _one_hot(column: Any, name: str) -> tuple[np.ndarray, list[str]]:
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    text = np.array(["" if value is None else str(value) for value in values], dtype=str)
    levels, codes = np.unique(text, return_inverse=True)
    if levels.size > MAX_CATEGORY_LEVELS:
        raise InvalidInputError(
            f"context column '{name}' has {levels.size:,} distinct values (at most "
            f"{MAX_CATEGORY_LEVELS} are one-hot encoded); leave it out with --drop-column {name}",
            field=name,
        )
    encoded = np.zeros((text.size, levels.size))
    encoded[np.arange(text.size), codes] = 1.0
    return encoded, [f"{name}={level}" for level in levels]


def _contexts(table: Any, names: list[str], rows: int) -> tuple[np.ndarray, tuple[str, ...]]:
    features: list[np.ndarray] = []
    feature_names: list[str] = []
    for name in names:
        column = table.column(name)
        if _is_numeric(column):
            features.append(numeric_column(column, name)[:, None])
            feature_names.append(name)
        else:
            encoded, labels = _one_hot(column, name)
            features.append(encoded)
            feature_names.extend(labels)
        if rows * len(feature_names) > MAX_CONTEXT_CELLS:
            raise InvalidInputError(
                f"the context would have {rows:,} rows x {len(feature_names):,} features, over "
                f"{MAX_CONTEXT_CELLS:,} cells; leave wide columns out with --drop-column "
                f"(the last one read was '{name}')",
                field=name,
            )
    matrix = np.concatenate(features, axis=1) if features else np.zeros((rows, 0))
    return matrix, tuple(feature_names)


def load_log(path: Path, *, drop_columns: Collection[str] = ()) -> LoggedData:
    """Read and validate a logged-decision table; ``drop_columns`` are left out of the context."""
    table = read_table(path)
    columns = list(table.column_names)
    unknown = sorted(set(drop_columns) - set(columns))
    if unknown:
        raise InvalidInputError(
            f"--drop-column names no column of {path.name}: {', '.join(unknown)}",
            field="drop_column",
        )
    missing = [name for name in REQUIRED if name not in columns]
    if "propensity" in missing:
        raise InvalidInputError(
            f"{path.name} has no 'propensity' column: off-policy evaluation needs the logging "
            "policy's probability of each logged action",
            field="propensity",
        )
    if missing:
        raise InvalidInputError(f"{path.name} lacks column(s) {missing}", field=missing[0])
    if table.num_rows < 2:
        raise InvalidInputError("the log needs at least 2 rows", field="log")
    actions_raw = _action_names(table.column("action"))
    rewards = numeric_column(table.column("reward"), "reward")
    propensities = numeric_column(table.column("propensity"), "propensity")
    if propensities.min() <= 0 or propensities.max() > 1:
        raise InvalidInputError("column 'propensity' must lie in (0, 1]", field="propensity")
    order = np.arange(table.num_rows)
    if "timestamp" in columns:
        order = _time_order(table.column("timestamp"))
    key_name = next((name for name in KEY_COLUMNS if name in columns), None)
    keys = None
    if key_name is not None:
        keys = np.asarray(table.column(key_name).to_numpy(zero_copy_only=False)).astype(str)
    skip = {*REQUIRED, "timestamp", *KEY_COLUMNS, *drop_columns}
    contexts, feature_names = _contexts(
        table, [name for name in columns if name not in skip], table.num_rows
    )
    names, actions = np.unique(actions_raw, return_inverse=True)
    return LoggedData(
        action_names=tuple(str(name) for name in names),
        actions=actions[order].astype(np.int64),
        rewards=rewards[order],
        propensities=propensities[order],
        contexts=contexts[order],
        feature_names=feature_names,
        order=order,
        key_name=key_name,
        keys=None if keys is None else keys[order],
    )
