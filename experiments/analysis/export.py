"""``engage export``: an experiment's decisions, outcomes and rewards as CSV or Parquet.

Three files, written while reading the database in batches so logs larger than memory fit:

- ``decisions``: every decision with its group, action, propensity, status and context;
- ``outcomes``: every outcome event with its attribution;
- ``log``: rewarded decisions in the format ``engage evaluate`` reads (``timestamp``,
  ``action``, ``reward``, ``propensity``, then one column per context field).

An experiment with strategies also gets a ``strategy`` column in ``decisions`` and a fourth
file, ``strategies``: every strategy assignment (customer, epoch and its bounds, group,
strategy, propensity, strategy policy version, the epoch KPI once measured, the snapshot that
learned it), then one column per context field at assignment.

An export never overwrites a file unless asked (``force``): ``export`` files have the same
names for every experiment, so a second export into the same folder would silently replace
the first. Tables are written to hidden ``.partial`` files and renamed into place only once
all of them are complete; a failed export leaves neither partial files nor a folder it made.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from experiments.errors import InvalidInputError
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store import models
from experiments.store.experiments import require_experiment

__all__ = ["FORMATS", "ExportResult", "export_experiment"]

BATCH = 5_000
FORMATS = ("csv", "parquet")
DECISION_COLUMNS = (
    "decision_id",
    "timestamp",
    "customer_id",
    "group",
    "status",
    "action",
    "propensity",
    "policy_version",
    "suppressed_reason",
)
OUTCOME_COLUMNS = (
    "outcome_id",
    "decision_id",
    "customer_id",
    "event",
    "value",
    "occurred_at",
    "attribution",
)
#: The columns ``engage evaluate`` reads; every context field follows them.
LOG_COLUMNS = ("timestamp", "action", "reward", "propensity")
#: The columns of the strategy assignments (experiments with strategies); context follows.
STRATEGY_COLUMNS = (
    "customer_id",
    "epoch",
    "epoch_start",
    "epoch_end",
    "group",
    "strategy",
    "propensity",
    "policy_version",
    "assigned_at",
    "kpi",
    "measured_at",
    "learned_version",
)


@dataclass(frozen=True)
class ExportResult:
    """Where each table went and how many rows it holds."""

    files: dict[str, Path]
    rows: dict[str, int]


class _TableWriter:
    """Append rows to a CSV or Parquet file batch by batch; :meth:`close` leaves them in a
    hidden partial file beside ``path``, :meth:`publish` renames it to ``path``."""

    def __init__(self, path: Path, columns: Sequence[str], fmt: str) -> None:
        self.final = path
        self.path = path.with_name(f".{path.name}.partial")
        self.columns, self.fmt = list(columns), fmt
        self.rows = 0
        self._handle: Any = None
        self._writer: Any = None

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self.fmt == "csv":
            if self._writer is None:
                self._handle = self.path.open("w", newline="")
                self._writer = csv.DictWriter(self._handle, fieldnames=self.columns)
                self._writer.writeheader()
            self._writer.writerows(rows)
        elif rows:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist(rows)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, table.schema)
            self._writer.write_table(table.cast(self._writer.schema))
        self.rows += len(rows)

    def close(self) -> None:
        if self.fmt == "csv":
            if self._writer is None:
                self.write([])
            self._handle.close()
        elif self._writer is not None:
            self._writer.close()
        else:  # no rows at all: still leave a readable, empty file with the header
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(
                pa.table({name: pa.array([], pa.string()) for name in self.columns}), self.path
            )

    def publish(self) -> None:
        self.path.replace(self.final)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            if self._handle is not None:
                self._handle.close()
        self.path.unlink(missing_ok=True)


def _batches(session: Session, statement: Any) -> Iterator[list[Any]]:
    result = session.exec(statement.execution_options(yield_per=BATCH))
    while rows := result.fetchmany(BATCH):
        yield rows


def _check_out(out_dir: Path, names: Sequence[str], *, force: bool) -> None:
    """Refuse an ``out_dir`` that is a file, and files of an earlier export unless ``force``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"{out_dir} is a file, not a folder", field="out")
    if force:
        return
    for name in names:
        if (out_dir / name).exists():
            raise InvalidInputError(
                f"{out_dir / name} already exists (an earlier export); pass --force to "
                "overwrite it, or choose another --out",
                field="out",
            )


def export_experiment(
    database: Engine, key: str, out_dir: Path, *, fmt: str = "csv", force: bool = False
) -> ExportResult:
    """Write ``decisions``, ``outcomes`` and ``log`` for experiment ``key`` into ``out_dir``
    (and ``strategies`` for an experiment with strategies); existing files are refused
    unless ``force`` (see the module docstring)."""
    if fmt not in FORMATS:
        raise InvalidInputError(
            f"format must be one of {list(FORMATS)}; got {fmt!r}", field="format"
        )
    with Session(database) as session:
        experiment = require_experiment(session, key=key)
        spec = parse_spec(experiment.spec)
        tables = ["decisions", "outcomes", "log"]
        if spec.strategies is not None:
            tables.append("strategies")
        _check_out(out_dir, [f"{name}.{fmt}" for name in tables], force=force)
        made = not out_dir.exists()
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            writers = _write_tables(session, key, spec, out_dir, fmt)
        except BaseException:
            if made:
                with contextlib.suppress(OSError):
                    out_dir.rmdir()  # only if empty: never remove what someone else put there
            raise
    for writer in writers.values():
        writer.publish()
    return ExportResult(
        files={name: writer.final for name, writer in writers.items()},
        rows={name: writer.rows for name, writer in writers.items()},
    )


def _write_tables(
    session: Session, key: str, spec: ExperimentSpec, out_dir: Path, fmt: str
) -> dict[str, _TableWriter]:
    """Every table of experiment ``key`` into partial files of ``out_dir``; on failure the
    partial files are removed."""
    fields = list(spec.context)
    space = spec.decision_space()
    strategic = spec.strategies is not None
    decision_columns = [*DECISION_COLUMNS, *(["strategy"] if strategic else []), *fields]
    writers = {
        "decisions": _TableWriter(out_dir / f"decisions.{fmt}", decision_columns, fmt),
        "outcomes": _TableWriter(out_dir / f"outcomes.{fmt}", OUTCOME_COLUMNS, fmt),
        "log": _TableWriter(out_dir / f"log.{fmt}", [*LOG_COLUMNS, *fields], fmt),
    }
    if strategic:
        writers["strategies"] = _TableWriter(
            out_dir / f"strategies.{fmt}", [*STRATEGY_COLUMNS, *fields], fmt
        )
    try:
        decisions = (
            select(models.Decision, models.Reward.value)
            .join(
                models.Reward,
                col(models.Reward.decision_id) == col(models.Decision.id),
                isouter=True,
            )
            .where(models.Decision.experiment_key == key)
            .order_by(col(models.Decision.created_at), col(models.Decision.id))
        )
        for batch in _batches(session, decisions):
            rows, log = [], []
            for decision, reward in batch:
                action = (
                    None
                    if decision.action_index is None
                    else space.action_name(decision.action_index)
                )
                context = {name: decision.context.get(name) for name in fields}
                rows.append(
                    {
                        "decision_id": decision.id,
                        "timestamp": decision.created_at.isoformat(),
                        "customer_id": decision.customer_id,
                        "group": decision.group,
                        "status": decision.status,
                        "action": action,
                        "propensity": decision.propensity,
                        "policy_version": decision.policy_version,
                        "suppressed_reason": decision.suppressed_reason,
                        **({"strategy": decision.strategy} if strategic else {}),
                        **context,
                    }
                )
                if reward is not None and action is not None:
                    log.append(
                        {
                            "timestamp": decision.created_at.isoformat(),
                            "action": action,
                            "reward": reward,
                            "propensity": decision.propensity,
                            **context,
                        }
                    )
                session.expunge(decision)
            writers["decisions"].write(rows)
            writers["log"].write(log)
        outcomes = (
            select(models.Outcome)
            .where(models.Outcome.experiment_key == key)
            .order_by(col(models.Outcome.occurred_at), col(models.Outcome.id))
        )
        for batch in _batches(session, outcomes):
            writers["outcomes"].write(
                [
                    {
                        "outcome_id": outcome.outcome_id,
                        "decision_id": outcome.decision_id,
                        "customer_id": outcome.customer_id,
                        "event": outcome.event,
                        "value": outcome.value,
                        "occurred_at": outcome.occurred_at.isoformat(),
                        "attribution": outcome.attribution,
                    }
                    for outcome in batch
                ]
            )
        if strategic:
            _write_assignments(session, key, fields, writers["strategies"])
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.discard()
        raise
    return writers


def _write_assignments(
    session: Session, key: str, fields: Sequence[str], writer: _TableWriter
) -> None:
    """Every strategy assignment of ``key``, by epoch then customer, with its context."""
    statement = (
        select(models.StrategyAssignment)
        .where(models.StrategyAssignment.experiment_key == key)
        .order_by(col(models.StrategyAssignment.epoch), col(models.StrategyAssignment.customer_id))
    )

    def moment(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    for batch in _batches(session, statement):
        writer.write(
            [
                {
                    "customer_id": row.customer_id,
                    "epoch": row.epoch,
                    "epoch_start": moment(row.epoch_start),
                    "epoch_end": moment(row.epoch_end),
                    "group": row.group,
                    "strategy": row.strategy,
                    "propensity": row.propensity,
                    "policy_version": row.policy_version,
                    "assigned_at": moment(row.assigned_at),
                    "kpi": row.kpi,
                    "measured_at": moment(row.measured_at),
                    "learned_version": row.learned_version,
                    **{name: row.context.get(name) for name in fields},
                }
                for row in batch
            ]
        )
