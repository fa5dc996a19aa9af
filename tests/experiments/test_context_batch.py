"""A batch of contexts encodes column by column exactly as row by row, and a batch with any bad
value is refused with the error the row-by-row path gives (the field and the row named)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.spec import SpecError
from experiments.spec.context import (
    MAX_CONTEXT_MAGNITUDE,
    BooleanField,
    CategoricalField,
    ContextEncoder,
    NumericField,
)

ENCODER = ContextEncoder.from_schema(
    {
        "spend": NumericField(type="numeric", required=True, min=0.0, max=500.0),
        "days": NumericField(type="numeric", required=False, default=30.0),
        "plan": CategoricalField(type="categorical", levels=["prepaid", "postpaid"], required=True),
        "roaming": BooleanField(type="boolean", required=False, default=False),
    }
)

GOOD = {
    "spend": st.one_of(st.integers(0, 500), st.floats(0.0, 500.0)),
    "days": st.one_of(st.integers(-5, 90), st.floats(-1e3, 1e3), st.just(np.float64(7.5))),
    "plan": st.sampled_from(["prepaid", "postpaid"]),
    "roaming": st.one_of(st.booleans(), st.just(np.bool_(True))),
}
#: Values each field refuses: wrong types, out of bounds, unknown levels, missing required.
BAD = {
    "spend": st.sampled_from([-1, 501.0, "3", True, float("nan"), None, [1.0]]),
    "days": st.sampled_from([float("inf"), 2 * MAX_CONTEXT_MAGNITUDE, "x", False]),
    "plan": st.sampled_from(["gold", 1, None, ["prepaid"]]),
    "roaming": st.sampled_from([1, "yes", 0.0]),
}


@st.composite
def contexts(draw: st.DrawFn, bad_rate: float) -> list[dict[str, Any]]:
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        row: dict[str, Any] = {}
        for name, good in GOOD.items():
            choice = draw(st.floats(0, 1))
            if choice < bad_rate:
                value = draw(BAD[name])
                if value is not None:
                    row[name] = value
            elif name in ("days", "roaming") and choice > 0.85:
                continue  # optional and missing: the default
            else:
                row[name] = draw(good)
        if draw(st.floats(0, 1)) < bad_rate / 4:
            row["unknown"] = 1
        rows.append(row)
    return rows


def row_by_row(batch: list[dict[str, Any]]) -> np.ndarray:
    rows = np.zeros((len(batch), ENCODER.width))
    for position, context in enumerate(batch):
        ENCODER._encode_into(rows[position], context, f"contexts[{position}]")
    return rows


@settings(max_examples=300)
@given(contexts(bad_rate=0.0))
def test_a_valid_batch_encodes_as_row_by_row(batch: list[dict[str, Any]]) -> None:
    np.testing.assert_array_equal(ENCODER.encode_batch(batch), row_by_row(batch))


@settings(max_examples=300)
@given(contexts(bad_rate=0.15))
def test_a_bad_value_is_refused_as_row_by_row(batch: list[dict[str, Any]]) -> None:
    expected: np.ndarray | str
    try:
        expected = row_by_row(batch)
    except SpecError as error:
        expected = str(error)
    if isinstance(expected, str):
        with pytest.raises(SpecError) as raised:
            ENCODER.encode_batch(batch)
        assert str(raised.value) == expected
    else:
        np.testing.assert_array_equal(ENCODER.encode_batch(batch), expected)


def test_the_columns_by_hand() -> None:
    batch = [
        {"spend": 10, "plan": "postpaid"},
        {"spend": 2.5, "days": 3, "plan": "prepaid", "roaming": True},
    ]
    np.testing.assert_array_equal(
        ENCODER.encode_batch(batch),
        [[10.0, 30.0, 0.0, 1.0, 0.0], [2.5, 3.0, 1.0, 0.0, 1.0]],
    )
