"""SQLite's write shortcuts store exactly what SQLAlchemy's own path stores.

The store writes batches on SQLite through the driver (``_sql.insert_ignoring_conflicts``) and
formats its timestamps in one step (``UTCDateTime`` on SQLite). Both are checked here against
SQLAlchemy's own statement and type processors, byte for byte, on real SQLite files. PostgreSQL
keeps SQLAlchemy's statement (the store's query tests run there).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import DateTime, Engine, text
from sqlalchemy.dialects import sqlite
from sqlmodel import Session

from experiments.store import _sql
from experiments.store.connection import make_engine
from experiments.store.models import Decision, Experiment, UTCDateTime, new_decision_ids
from experiments.store.schema import upgrade

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SQLITE = sqlite.dialect()


def sqlalchemy_datetime_text(value: datetime) -> str:
    """The text SQLAlchemy's SQLite ``DATETIME`` stores for ``value`` at UTC."""
    process = DateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert process is not None
    return str(process(value.astimezone(UTC).replace(tzinfo=None)))


aware_datetimes = st.builds(
    lambda naive, minutes: naive.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-14 * 60, 14 * 60),
)


@settings(max_examples=300, deadline=None)
@given(value=aware_datetimes)
def test_timestamps_are_stored_as_sqlalchemy_would_and_read_back_as_the_same_instant(
    value: datetime,
) -> None:
    column = UTCDateTime().dialect_impl(SQLITE)
    to_text = column.bind_processor(SQLITE)
    to_value = column.result_processor(SQLITE, None)
    assert to_text is not None
    assert to_value is not None
    stored = to_text(value)
    assert stored == sqlalchemy_datetime_text(value)
    back = to_value(stored)
    assert back == value
    assert back.tzinfo is UTC


def test_naive_and_non_datetime_timestamps_are_refused_on_sqlite() -> None:
    to_text = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert to_text is not None
    with pytest.raises(ValueError, match="naive datetime"):
        to_text(datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="expected a datetime, got str"):
        to_text("2026-01-01 00:00:00")
    assert to_text(None) is None


def test_decision_ids_are_random_version_4_uuids() -> None:
    ids = new_decision_ids(2_000)
    assert len(set(ids)) == 2_000
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.hex == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert new_decision_ids(0) == []


def decision_rows(count: int, *, start: int = 0) -> list[dict[str, Any]]:
    """Decision rows with every kind of column: JSON objects and lists, SQL NULL JSON, aware
    timestamps at several offsets, booleans, floats and missing optional values."""
    rows = []
    offsets = [
        UTC,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(-timedelta(hours=8)),
    ]
    for index in range(start, start + count):
        at = (T0 + timedelta(seconds=37 * index, microseconds=index)).astimezone(offsets[index % 3])
        served = index % 4 != 0
        rows.append(
            _sql.fill_defaults(
                Decision,
                {
                    "id": f"{index:032x}",
                    "experiment_key": "exp",
                    "customer_id": f"c{index % 17}",
                    "request_id": None if index % 5 else f"r{index}",
                    "created_at": at,
                    "context": {"plan": "prepaid", "usage": index / 7, "roaming": index % 2 == 0},
                    "eligible_count": 40 - index % 3,
                    "excluded": [{"channel": "sms"}] if index % 6 == 0 else [],
                    "action_index": index % 40 if served else None,
                    "action": {"offer": "o", "channel": "push"} if served else None,
                    "propensity": 1 / (1 + index % 9) if served else None,
                    "deferred": index % 3 == 0,
                    "activated_at": None if index % 3 == 0 else at,
                    "window_closes_at": at + timedelta(days=14) if served else None,
                    "status": "open" if served else "suppressed",
                    "suppressed_reason": None if served else "quiet_hours",
                },
            )
        )
    return rows


def migrated_engine(path: str) -> Engine:
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.add(Experiment(key="exp", spec={"key": "exp"}, status="running"))
        session.commit()
    return engine


def stored_text(engine: Engine) -> list[tuple[Any, ...]]:
    """Every decision as SQLite holds it: raw column values, no type processing."""
    with engine.connect() as connection:
        return [
            tuple(row) for row in connection.execute(text("SELECT * FROM decision ORDER BY id"))
        ]


def core_insert(session: Session, rows: list[dict[str, Any]]) -> list[Any]:
    """SQLAlchemy's own ``INSERT .. ON CONFLICT DO NOTHING RETURNING`` of the same rows."""
    statement = _sql._insert_ignoring("sqlite", _sql.table_of(Decision), ("id",), "id")
    return list(session.connection().execute(statement, rows).scalars())


def test_driver_insert_stores_what_sqlalchemys_statement_stores(tmp_path: Any) -> None:
    # 1,800 rows x 19 columns is over SQLite's 32,766 parameters: two statements.
    rows = decision_rows(1_800)
    assert len(rows) * len(rows[0]) > _sql._SQLITE_MAX_PARAMETERS
    driver, core = (
        migrated_engine(str(tmp_path / "driver.db")),
        migrated_engine(str(tmp_path / "core.db")),
    )
    with Session(driver) as session:
        inserted = _sql.insert_ignoring_conflicts(
            session, Decision, rows, conflict=["id"], returning="id"
        )
        session.commit()
    with Session(core) as session:
        expected = core_insert(session, sorted(rows, key=lambda row: row["id"]))
        session.commit()
    assert sorted(inserted) == sorted(expected) == sorted(row["id"] for row in rows)
    assert stored_text(driver) == stored_text(core)
    with Session(driver) as session:
        read = session.get(Decision, rows[1]["id"])
        assert read is not None
        assert read.created_at == rows[1]["created_at"]
        assert read.context == rows[1]["context"]
        assert read.action is not None


def test_driver_insert_skips_conflicts_and_returns_only_new_rows(tmp_path: Any) -> None:
    engine = migrated_engine(str(tmp_path / "engage.db"))
    first, overlapping = decision_rows(30), decision_rows(30, start=20)
    with Session(engine) as session:
        _sql.insert_ignoring_conflicts(session, Decision, first, conflict=["id"], returning="id")
        again = _sql.insert_ignoring_conflicts(
            session, Decision, overlapping, conflict=["id"], returning="id"
        )
        session.commit()
    assert sorted(again) == [f"{index:032x}" for index in range(30, 50)]
    assert len(stored_text(engine)) == 50


def test_rows_that_leave_out_defaulted_columns_take_sqlalchemys_path(tmp_path: Any) -> None:
    """A row without a column that has a default (``status``) is filled in by SQLAlchemy's
    statement, as before; a batch of rows with different keys goes there too."""
    engine = migrated_engine(str(tmp_path / "engage.db"))
    short = {key: value for key, value in decision_rows(1)[0].items() if key != "status"}
    table = _sql.table_of(Decision)
    assert _sql._uniform_columns(table, [short]) is None
    assert _sql._uniform_columns(table, [decision_rows(1)[0], short]) is None
    assert _sql._uniform_columns(table, decision_rows(3)) == tuple(decision_rows(1)[0])
    with Session(engine) as session:
        inserted = _sql.insert_ignoring_conflicts(
            session, Decision, [short], conflict=["id"], returning="id"
        )
        session.commit()
    assert inserted == [short["id"]]
    with Session(engine) as session:
        filled = session.get(Decision, short["id"])
        assert filled is not None
        assert filled.status == "open"
