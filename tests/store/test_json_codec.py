"""The store's JSON text reads back as the standard library's would, value for value.

``json_codec`` uses orjson where it agrees with :mod:`json` and :mod:`json` where it would not
(NaN and infinities, integers beyond 64 bits): these tests compare both ways against :mod:`json`
itself, on values hypothesis draws with those cases in them, and on real databases.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from experiments.store import json_codec
from experiments.store.models import Experiment

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["null", "nullable", "12345678901234567890123"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def same(left: Any, right: Any) -> bool:
    """Equal values, types included, with NaN equal to NaN."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return (math.isnan(left) and math.isnan(right)) or left == right
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    return bool(left == right)


@settings(max_examples=400, deadline=None)
@given(value=values)
def test_what_is_written_reads_back_as_the_standard_librarys_text_would(value: Any) -> None:
    expected = json.loads(json.dumps(value))
    assert same(json.loads(json_codec.dumps(value)), expected)
    assert same(json_codec.loads(json_codec.dumps(value)), expected)


@settings(max_examples=400, deadline=None)
@given(value=values)
def test_text_the_standard_library_wrote_reads_back_the_same(value: Any) -> None:
    text = json.dumps(value)
    assert same(json_codec.loads(text), json.loads(text))
    assert same(json_codec.loads(text.encode()), json.loads(text))


def test_the_cases_orjson_alone_would_change() -> None:
    assert json_codec.dumps({"x": math.nan}) == '{"x": NaN}'
    assert json_codec.dumps({"x": -math.inf}) == '{"x": -Infinity}'
    assert json_codec.loads(json_codec.dumps({"n": 2**70})) == {"n": 2**70}
    assert json_codec.loads('{"n": 18446744073709551616}') == {"n": 2**64}
    assert json_codec.loads('{"n": [-9223372036854775809]}') == {"n": [-(2**63) - 1]}
    assert math.isnan(json_codec.loads("[NaN]")[0])
    assert json_codec.dumps({1: np.float64(0.5), "b": True}) == '{"1":0.5,"b":true}'


def test_a_json_column_round_trips_through_the_database(session: Session) -> None:
    """Both dialects read back what was written; SQLite keeps a non-finite float as the
    standard library wrote it (PostgreSQL's json type refuses those, as it always did)."""
    spec: dict[str, Any] = {"seed": 2**70, "levels": ["a", None], "share": 0.1, "ok": True}
    if session.get_bind().dialect.name == "sqlite":
        spec["max"] = math.inf
    session.add(Experiment(key="exp", spec=spec))
    session.commit()
    session.expire_all()
    stored = session.get(Experiment, "exp")
    assert stored is not None
    assert stored.spec == spec
