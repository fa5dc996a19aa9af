"""The context schema of a spec, and the encoding of a customer's context to a vector.

A spec's ``[context]`` table names each field a decision request carries and its kind:
numeric (optionally bounded), categorical (one of a list of levels) or boolean; a field is
required, or optional with a default. :class:`ContextEncoder` turns one context (a mapping
of field values) into the numeric vector the policies learn from: numeric and boolean fields
take one column each, categorical fields one column per level (one-hot), in the schema's
order. Every bad value raises :class:`SpecError` on ``context.<name>``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, cast

import numpy as np
from pydantic import BaseModel, Field, StrictBool, StrictStr, model_validator

from experiments.spec.errors import SpecError, names
from experiments.spec.values import FROZEN, Number

#: Largest magnitude of a numeric context value. Larger ones are unit errors, and the linear
#: policies square their features: a value near 1e308 would overflow the model update to inf
#: and stall learning of the whole experiment.
MAX_CONTEXT_MAGNITUDE = 1e12

_CONTEXT_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class _ContextFieldBase(BaseModel):
    """What the three kinds of context field share: required, or optional with a default."""

    model_config = FROZEN

    if TYPE_CHECKING:
        # Each kind declares these fields itself, after its ``type`` tag, so that a dumped
        # field keeps the order its kind writes; here they are only names for the checks below.
        required: bool
        default: Any

    @model_validator(mode="before")
    @classmethod
    def _default_makes_optional(cls, data: Any) -> Any:
        # A field given a default but no 'required' is optional: writing both is redundant.
        if isinstance(data, Mapping) and data.get("default") is not None and "required" not in data:
            return {**data, "required": False}
        return data

    @model_validator(mode="after")
    def _required_xor_default(self) -> _ContextFieldBase:
        default = self.default
        if self.required and default is not None:
            raise SpecError(
                "default", "a required field takes no default; set required = false or drop it"
            )
        if not self.required and default is None:
            raise SpecError("default", "an optional field (required = false) needs a default")
        return self


class NumericField(_ContextFieldBase):
    """A real-valued feature, optionally bounded to ``[min, max]`` (inclusive)."""

    type: Literal["numeric"]
    required: StrictBool = True
    default: Number | None = None
    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _bounds(self) -> NumericField:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SpecError("max", f"must be >= min ({self.min:g}); got {self.max:g}")
        if self.default is not None:
            problem = self.bound_problem(self.default)
            if problem:
                raise SpecError("default", problem)
        return self

    def bound_problem(self, value: float) -> str | None:
        """Why ``value`` is outside ``[min, max]``, or None when it is inside."""
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            low = "-inf" if self.min is None else f"{self.min:g}"
            high = "inf" if self.max is None else f"{self.max:g}"
            return f"must be a number in [{low}, {high}]; got {value:g}"
        return None


class CategoricalField(_ContextFieldBase):
    """One level out of a fixed list, encoded one-hot (one column per level)."""

    type: Literal["categorical"]
    levels: list[StrictStr] = Field(min_length=1)
    required: StrictBool = True
    default: StrictStr | None = None

    @model_validator(mode="after")
    def _levels(self) -> CategoricalField:
        seen: set[str] = set()
        for position, level in enumerate(self.levels):
            if not level:
                raise SpecError(f"levels[{position}]", "must be a non-empty string; got ''")
            if level in seen:
                raise SpecError(f"levels[{position}]", f"must be unique; {level!r} repeats")
            seen.add(level)
        if self.default is not None and self.default not in seen:
            raise SpecError(
                "default", f"must be one of the levels {names(self.levels)}; got {self.default!r}"
            )
        return self


class BooleanField(_ContextFieldBase):
    """A true/false feature, encoded as 1.0/0.0."""

    type: Literal["boolean"]
    required: StrictBool = True
    default: StrictBool | None = None


ContextField = Annotated[
    NumericField | CategoricalField | BooleanField, Field(discriminator="type")
]
#: Each kind of context field by its ``type`` tag, in the order messages list them.
CONTEXT_KINDS: dict[str, type[BaseModel]] = {
    "numeric": NumericField,
    "categorical": CategoricalField,
    "boolean": BooleanField,
}


def check_context_names(schema: Mapping[str, Any]) -> None:
    """Raise :class:`SpecError` on the first field name that is not an identifier of 1 to 64
    characters (the names become feature names and JSON keys)."""
    for name in schema:
        if not _CONTEXT_NAME_PATTERN.fullmatch(name):
            raise SpecError(
                name,
                "context field names must be 1 to 64 letters, digits or '_', not starting "
                f"with a digit; got {name!r}",
            )


def require_numeric_field(
    schema: Mapping[str, ContextField], where: str, name: str | None, *, required: bool = False
) -> None:
    """Raise :class:`SpecError` on ``where`` unless ``name`` is a numeric field of ``schema``
    (and a required one, when ``required``)."""
    field = schema.get(name or "")
    if field is None:
        numeric = [key for key, item in schema.items() if item.type == "numeric"]
        raise SpecError(
            where,
            f"must name a numeric field of the context schema, one of {names(numeric)}; "
            f"got {name!r}",
        )
    if field.type != "numeric":
        raise SpecError(where, f"must name a numeric context field; {name!r} is {field.type}")
    if required and not field.required:
        raise SpecError(
            where, f"must name a required context field; {name!r} is optional (has a default)"
        )


class Column(NamedTuple):
    """Where one context field lands in the encoded vector."""

    name: str
    field: NumericField | CategoricalField | BooleanField
    offset: int
    #: The levels of a categorical field, one column each; empty for one-column fields.
    levels: tuple[str, ...]


@dataclass(frozen=True)
class ContextEncoder:
    """Validates contexts against a schema and encodes them, ``width`` columns each."""

    schema: Mapping[str, ContextField]
    columns: tuple[Column, ...]
    width: int

    @classmethod
    def from_schema(cls, schema: Mapping[str, ContextField]) -> ContextEncoder:
        """The columns of ``schema``, in its order: one per numeric or boolean field, one
        per level of a categorical field."""
        columns: list[Column] = []
        width = 0
        for name, field in schema.items():
            levels = tuple(field.levels) if isinstance(field, CategoricalField) else ()
            columns.append(Column(name, field, width, levels))
            width += len(levels) if levels else 1
        return cls(schema=schema, columns=tuple(columns), width=width)

    @property
    def feature_names(self) -> list[str]:
        """Name of every column: the field name for numeric and boolean fields,
        ``"name=level"`` for each level of a categorical field."""
        feature_names: list[str] = []
        for column in self.columns:
            if column.levels:
                feature_names.extend(f"{column.name}={level}" for level in column.levels)
            else:
                feature_names.append(column.name)
        return feature_names

    def encode(self, context: Mapping[str, Any]) -> np.ndarray:
        """One context as a vector, shape ``(width,)`` float64; errors name ``context.<name>``."""
        row = np.zeros(self.width, dtype=np.float64)
        self._encode_into(row, context, "context")
        return row

    def encode_batch(self, contexts: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Contexts stacked as rows, shape ``(n, width)``; errors name ``contexts[i].<name>``."""
        if isinstance(contexts, Mapping | str) or not isinstance(contexts, Sequence):
            raise SpecError(
                "contexts", f"must be a list of context objects; got {type(contexts).__name__}"
            )
        rows = np.zeros((len(contexts), self.width), dtype=np.float64)
        if self._encode_columns(rows, contexts):
            return rows
        rows[:] = 0.0
        for position, context in enumerate(contexts):
            self._encode_into(rows[position], context, f"contexts[{position}]")
        return rows

    def _encode_columns(self, rows: np.ndarray, contexts: Sequence[object]) -> bool:
        """Encode a batch column by column (the same values :meth:`_encode_into` gives, several
        times faster on large batches); False, leaving ``rows`` partly written, at the first
        value that is not plainly valid, so the row-by-row path finds it and names it."""
        if not all(isinstance(context, dict) for context in contexts):
            return False
        batch = cast("Sequence[dict[str, Any]]", contexts)
        if not set().union(*batch) <= self.schema.keys():
            return False
        for name, field, offset, levels in self.columns:
            values = [context.get(name) for context in batch]
            if any(value is None for value in values):
                if field.required:
                    return False
                values = [field.default if value is None else value for value in values]
            if isinstance(field, NumericField):
                if any(isinstance(value, bool | np.bool_ | str) for value in values):
                    return False
                try:
                    column = np.array(values, dtype=np.float64)
                except (TypeError, ValueError):
                    return False
                low = -MAX_CONTEXT_MAGNITUDE if field.min is None else field.min
                high = MAX_CONTEXT_MAGNITUDE if field.max is None else field.max
                inside = np.isfinite(column) & (np.abs(column) <= MAX_CONTEXT_MAGNITUDE)
                if column.ndim != 1 or not (inside & (column >= low) & (column <= high)).all():
                    return False
                rows[:, offset] = column
            elif isinstance(field, BooleanField):
                if not all(isinstance(value, bool | np.bool_) for value in values):
                    return False
                rows[:, offset] = np.array(values, dtype=np.float64)
            else:
                index = {level: position for position, level in enumerate(levels)}
                positions = [
                    index.get(value, -1) if isinstance(value, str) else -1 for value in values
                ]
                found = np.array(positions, dtype=np.int64)
                if (found < 0).any():
                    return False
                rows[np.arange(len(batch)), offset + found] = 1.0
        return True

    def _encode_into(self, row: np.ndarray, context: object, where: str) -> None:
        if not isinstance(context, Mapping):
            raise SpecError(
                where, f"must be an object of context fields; got {type(context).__name__}"
            )
        for key in context:
            if key not in self.schema:
                raise SpecError(
                    f"{where}.{key}",
                    f"unknown context field; expected one of {names(list(self.schema))}",
                )
        for name, field, offset, levels in self.columns:
            value = context.get(name)
            if value is None:
                if field.required:
                    raise SpecError(f"{where}.{name}", f"required {field.type} field is missing")
                value = field.default
            if isinstance(field, NumericField):
                row[offset] = _numeric_value(field, value, f"{where}.{name}")
            elif isinstance(field, BooleanField):
                if not isinstance(value, bool | np.bool_):
                    raise SpecError(f"{where}.{name}", f"must be true or false; got {value!r}")
                row[offset] = 1.0 if value else 0.0
            else:
                if not isinstance(value, str) or value not in levels:
                    raise SpecError(
                        f"{where}.{name}", f"must be one of {names(levels)}; got {value!r}"
                    )
                row[offset + levels.index(value)] = 1.0


def _numeric_value(field: NumericField, value: object, where: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
        raise SpecError(where, f"must be a number; got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise SpecError(where, f"must be a finite number; got {value!r}")
    if abs(number) > MAX_CONTEXT_MAGNITUDE:
        raise SpecError(
            where, f"must be a number within +-{MAX_CONTEXT_MAGNITUDE:g}; got {value!r}"
        )
    problem = field.bound_problem(number)
    if problem:
        raise SpecError(where, problem)
    return number
