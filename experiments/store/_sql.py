"""What the store's query modules share: chunked ``IN`` lists, idempotent inserts, rows built
without model instances, and the check of status-like arguments.

Private to :mod:`experiments.store`: other packages call the query modules, never this one.

Idempotent inserts use ``INSERT .. ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL, so a
duplicate never aborts the caller's transaction and no SAVEPOINT is needed (they are unreliable on
SQLite with Python's driver; see :mod:`experiments.store.connection`). Other dialects fall back to
one SAVEPOINT per row.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Table
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, SQLModel
from sqlmodel.sql.expression import Select

from experiments.store.models import utcnow

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert
    from sqlalchemy.sql.dml import ReturningInsert

__all__ = [
    "CHUNK",
    "attach",
    "check_choice",
    "chunks",
    "dialect",
    "dialect_insert",
    "fill_defaults",
    "insert_ignoring_conflicts",
    "now_or",
    "row_of",
    "rows_of",
    "select_columns",
    "table_of",
]

# Ids per IN (...): well under SQLite's 32766 and PostgreSQL's 65535 bound parameters.
CHUNK = 500

_T = TypeVar("_T")
_M = TypeVar("_M", bound=SQLModel)


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dialect(session: Session) -> str:
    """The name of the dialect ``session`` is bound to (``"sqlite"``, ``"postgresql"``)."""
    return session.get_bind().dialect.name


def rows_of(session: Session, stmt: Any, params: Mapping[str, Any]) -> Sequence[Any]:
    """The rows of a prebuilt Core ``stmt`` run with ``params`` on ``session``'s connection.

    For hot queries built once (with ``bindparam``, ``expanding=True`` for ``IN`` lists):
    building a statement per call, and the ORM's execution path, cost more than a key look-up
    itself. Flushed first, as the session's own execute would.
    """
    session.flush()
    return session.connection().execute(stmt, dict(params)).all()


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table of a table model."""
    # SQLModel sets ``__table__`` on table models without declaring it.
    table = getattr(model, "__table__", None)
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def select_columns(*columns: Any) -> Select[*tuple[Any, ...]]:
    """A ``SELECT`` of any number of columns, each row a plain tuple. sqlmodel's ``select`` is
    typed for at most four; for two or more it builds this same ``Select`` at runtime."""
    return Select(*columns)


def dialect_insert(name: str, table: Table) -> SQLiteInsert | PostgresInsert:
    """An ``INSERT`` into ``table`` in the form of the dialect ``name`` (``"sqlite"`` or
    ``"postgresql"``), the two that have ``ON CONFLICT``. The dialects are imported on first use.
    """
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    from sqlalchemy.dialects import postgresql

    return postgresql.insert(table)


@functools.lru_cache(maxsize=64)
def _insert_ignoring(
    name: str, table: Table, conflict: tuple[str, ...], returning: str
) -> ReturningInsert[Any]:
    """The ``INSERT .. ON CONFLICT (conflict) DO NOTHING RETURNING returning`` statement, built
    once per table: statements are immutable, and building one costs as much as running it."""
    return (
        dialect_insert(name, table)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c[returning])
    )


def insert_ignoring_conflicts(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str],
    returning: str,
) -> list[Any]:
    """Insert ``rows``, skipping those that violate the unique key ``conflict``; return the
    ``returning`` column of the rows actually inserted.

    One cached statement runs as an executemany, which SQLAlchemy turns into batched multi-row
    ``INSERT .. VALUES .. RETURNING`` ("insertmanyvalues"). Rows go in key order so that
    PostgreSQL transactions inserting overlapping batches take the key locks in the same order
    instead of deadlocking on each other.
    """
    if not rows:
        return []
    table = table_of(model)
    ordered = sorted(rows, key=lambda row: tuple(str(row[c]) for c in conflict))
    name = dialect(session)
    if name in ("sqlite", "postgresql"):
        stmt = _insert_ignoring(name, table, tuple(conflict), returning)
        # Core, on the session's connection: the ORM's execution path costs more than the
        # insert itself for the decision path's batches of a few rows. Flushed first, as the
        # session's own execute would, so pending objects the rows refer to exist.
        session.flush()
        result = session.connection().execute(stmt, [dict(row) for row in ordered])
        return list(result.scalars())
    # Any other dialect: one savepoint per row.
    inserted = []
    for row in ordered:
        try:
            with session.begin_nested():
                session.exec(sa_insert(table), params=dict(row))
        except IntegrityError:
            continue
        inserted.append(row[returning])
    return inserted


def fill_defaults(
    model: type[SQLModel], values: Mapping[str, Any], *, exclude: Collection[str] = ()
) -> dict[str, Any]:
    """A full row for ``model`` from ``values`` plus the fields' defaults, without building a
    model instance (much cheaper per row for large batches)."""
    fields = model.model_fields
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no field(s) {sorted(unknown)}")
    row: dict[str, Any] = {}
    for name, field in fields.items():
        if name in exclude:
            continue
        if name in values:
            row[name] = values[name]
        elif field.is_required():
            raise ValueError(f"The {name!r} field of {model.__name__} is required.")
        else:
            row[name] = field.get_default(call_default_factory=True)
    return row


def row_of(instance: SQLModel, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """The fields of a model instance as an insertable row."""
    return instance.model_dump(exclude=set(exclude))


def attach(session: Session, instance: _M) -> _M:
    """Make a just-inserted transient instance persistent in ``session`` without a SELECT."""
    make_transient_to_detached(instance)
    session.add(instance)
    return instance


def now_or(now: datetime | None) -> datetime:
    """``now``, or the current UTC time when it is ``None``."""
    return utcnow() if now is None else now


def check_choice(value: str, choices: type[StrEnum], field: str) -> str:
    """``value`` if it is one of ``choices``' values, else ``ValueError`` naming ``field``."""
    allowed = [c.value for c in choices]
    if value not in allowed:
        raise ValueError(f"The {field!r} must be one of {'|'.join(allowed)}. Got {value!r}.")
    return str(value)
