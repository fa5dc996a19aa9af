"""``engage export``: an experiment's decisions, outcomes and rewards to CSV or Parquet."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    DatabaseUrl,
    JsonFlag,
    checked_engine,
    console,
    print_json,
    readable_errors,
    shown,
)


class Format(StrEnum):
    csv = "csv"
    parquet = "parquet"


def export(
    experiment: Annotated[str, typer.Argument(help="Experiment key.")],
    out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("export"),
    fmt: Annotated[Format, typer.Option("--format", help="File format.")] = Format.csv,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the files of an earlier export.")
    ] = False,
    url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Write decisions, outcomes and the evaluation log (read by engage evaluate), and the
    strategy assignments of an experiment with strategies.

    Example: engage export promo --out export --format parquet
    """
    from experiments.analysis.export import export_experiment

    with readable_errors():
        database = checked_engine(url)
        result = export_experiment(database, experiment, out, fmt=fmt.value, force=force)
    if as_json:
        print_json(
            {
                name: {"file": str(path), "rows": result.rows[name]}
                for name, path in result.files.items()
            }
        )
        return
    for name, path in result.files.items():
        console.print(shown(f"{name}: {result.rows[name]:,} rows -> {path}"))
