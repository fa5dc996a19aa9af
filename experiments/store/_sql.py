"""What the store's query modules share: chunked ``IN`` lists, idempotent inserts, rows built
without model instances, and the check of status-like arguments.

Private to :mod:`experiments.store`: other packages call the query modules, never this one.

Idempotent inserts use ``INSERT .. ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL, so a
duplicate never aborts the caller's transaction and no SAVEPOINT is needed (they are unreliable on
SQLite with Python's driver; see :mod:`experiments.store.connection`). Other dialects fall back to
one SAVEPOINT per row. On SQLite the batch goes to the driver as one multi-row statement with the
columns' own conversions (:class:`_SQLiteInsert`): same rows, a fraction of SQLAlchemy's cost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Dialect, Table
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
    if name == "sqlite":
        statement = _sqlite_statement_for(session, table, ordered, tuple(conflict), returning)
        if statement is not None:
            session.flush()
            return statement.run(session, ordered)
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


# SQLite's bound on the parameters of one statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
_SQLITE_MAX_PARAMETERS = 32766


@dataclass(frozen=True)
class _SQLiteInsert:
    """``INSERT .. VALUES (..), (..) ON CONFLICT (..) DO NOTHING RETURNING ..`` for one table
    and one set of columns, in SQLite's own text, with each column's bind conversion.

    Run on the driver directly: SQLAlchemy's executemany of the same statement spends several
    times the insert's own cost per row building and processing parameter dictionaries (about a
    quarter of a simulation's CPU went there). The conversions are the columns' own bind
    processors, so what is stored is byte for byte what the Core statement stores.
    """

    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    head: str
    values: str
    tail: str

    @property
    def rows_per_statement(self) -> int:
        return max(1, _SQLITE_MAX_PARAMETERS // len(self.columns))

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The rows' values, converted, in column order, flattened."""
        flat: list[Any] = []
        converters = [
            (column, processor)
            for column, processor in zip(self.columns, self.processors, strict=True)
        ]
        for row in rows:
            flat.extend(
                row[column] if processor is None else processor(row[column])
                for column, processor in converters
            )
        return flat

    def run(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Insert ``rows`` (in statements of at most SQLite's parameter bound); the returned
        column of those inserted."""
        connection = session.connection()
        inserted: list[Any] = []
        for batch in chunks(rows, self.rows_per_statement):
            sql = self.head + ", ".join([self.values] * len(batch)) + self.tail
            result = connection.exec_driver_sql(sql, tuple(self.parameters(batch)))
            inserted.extend(result.scalars())
        return inserted


def _sqlite_statement_for(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    conflict: tuple[str, ...],
    returning: str,
) -> _SQLiteInsert | None:
    """The driver-level insert for ``rows``, or None where only SQLAlchemy's Core insert does
    the right thing (see :func:`_uniform_columns`)."""
    columns = _uniform_columns(table, rows)
    if columns is None:
        return None
    return _sqlite_insert(session.get_bind().dialect, table, columns, conflict, returning)


def _uniform_columns(table: Table, rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...] | None:
    """The columns every row of ``rows`` gives, or None when the rows differ in their keys,
    name a key that is not a column, or leave out a column with a default (which SQLAlchemy's
    statement fills in)."""
    columns = tuple(rows[0])
    keys = set(columns)
    if any(len(row) != len(keys) or row.keys() != keys for row in rows[1:]):
        return None
    if not keys <= _column_names(table) or not _defaulted_columns(table) <= keys:
        return None
    return columns


@functools.lru_cache(maxsize=64)
def _column_names(table: Table) -> frozenset[str]:
    return frozenset(column.name for column in table.columns)


@functools.lru_cache(maxsize=64)
def _defaulted_columns(table: Table) -> frozenset[str]:
    """Columns whose Python-side default an insert that leaves them out would fill in."""
    return frozenset(column.name for column in table.columns if column.default is not None)


@functools.lru_cache(maxsize=64)
def _sqlite_insert(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    returning: str,
) -> _SQLiteInsert:
    """The statement's text and conversions, built once per table and column set."""
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(column) for column in columns)
    return _SQLiteInsert(
        columns=columns,
        processors=tuple(
            table.c[column].type.dialect_impl(dialect).bind_processor(dialect) for column in columns
        ),
        # Names from the table's schema, quoted by the dialect; values are bound parameters.
        head=f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) VALUES ",  # noqa: S608
        values="(" + ", ".join("?" * len(columns)) + ")",
        tail=(
            f" ON CONFLICT ({', '.join(quote(column) for column in conflict)}) DO NOTHING"
            f" RETURNING {quote(returning)}"
        ),
    )


def fill_defaults(
    model: type[SQLModel], values: Mapping[str, Any], *, exclude: Collection[str] = ()
) -> dict[str, Any]:
    """A full row for ``model`` from ``values`` plus the fields' defaults, without building a
    model instance (much cheaper per row for large batches)."""
    fields = _field_defaults(model)
    unknown = set(values) - fields.keys()
    if unknown:
        raise ValueError(f"{model.__name__} has no field(s) {sorted(unknown)}")
    row: dict[str, Any] = {}
    for name, default in fields.items():
        if name in exclude:
            continue
        if name in values:
            row[name] = values[name]
        elif default is None:
            raise ValueError(f"The {name!r} field of {model.__name__} is required.")
        else:
            row[name] = default()
    return row


@functools.lru_cache(maxsize=64)
def _field_defaults(model: type[SQLModel]) -> dict[str, Callable[[], Any] | None]:
    """Per field of ``model``, what makes its default (None: the field is required).

    Read once per model: pydantic's ``FieldInfo.get_default`` inspects a default factory's
    signature on every call, which took 300 microseconds a row for the decision table's
    ``dict`` and ``list`` factories. A plain default is copied as pydantic copies it.
    """
    defaults: dict[str, Callable[[], Any] | None] = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            defaults[name] = None
        elif field.default_factory is not None:
            if field.default_factory_takes_validated_data:
                raise TypeError(f"{model.__name__}.{name}: a factory of validated data")
            defaults[name] = cast("Callable[[], Any]", field.default_factory)
        else:
            defaults[name] = functools.partial(field.get_default, call_default_factory=False)
    return defaults


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
