"""Tables rendered twice (rich on the terminal, markdown in the results file) and the
description of the machine a result was measured on.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table as RichTable


@dataclass
class Table:
    """A titled table of already formatted cells, with optional notes printed under it."""

    title: str
    columns: Sequence[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(cell) for cell in cells])

    def rich(self) -> RichTable:
        table = RichTable(title=self.title, title_justify="left", header_style="bold")
        for position, column in enumerate(self.columns):
            table.add_column(column, justify="left" if position == 0 else "right")
        for row in self.rows:
            table.add_row(*[_colour(cell) for cell in row])
        if self.notes:
            table.caption = "\n".join(self.notes)
            table.caption_justify = "left"
        return table

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))))
        lines[-1] += "|"
        lines.extend(
            "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in self.rows
        )
        if self.notes:
            lines.append("")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines) + "\n"


def _colour(cell: str) -> str:
    if cell.startswith("PASS"):
        return f"[green]{cell}[/green]"
    if cell.startswith("MISS"):
        return f"[red]{cell}[/red]"
    return cell


def verdict(ok: bool | None) -> str:
    """``PASS`` / ``MISS`` / ``-`` (not applicable)."""
    if ok is None:
        return "-"
    return "PASS" if ok else "MISS"


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def fmt_ms(value: float | None) -> str:
    """Milliseconds: two decimals below 10, one above."""
    return fmt(value, 1 if value is not None and value >= 10 else 2)


def fmt_rate(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:.2f}x" if value < 100 else f"{value:,.0f}x"


def print_tables(console: Console, tables: Sequence[Table]) -> None:
    for table in tables:
        console.print(table.rich())
        console.print()


def git_commit(root: Path) -> dict[str, str | bool | None]:
    """The checked-out commit and whether the work tree has uncommitted changes."""
    git = shutil.which("git")
    if git is None:
        return {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(  # noqa: S603 - fixed arguments, resolved git binary
            [git, "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(  # noqa: S603 - fixed arguments, resolved git binary
            [git, "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def machine(root: Path) -> dict[str, object]:
    """Python, numpy, BLAS (threadpoolctl when installed), CPU count, load, git commit."""
    try:
        from threadpoolctl import threadpool_info

        blas: object = [
            {
                key: info.get(key)
                for key in ("prefix", "internal_api", "version", "num_threads", "architecture")
            }
            for info in threadpool_info()
        ]
    except ImportError:
        blas = "threadpoolctl not installed"
    versions: dict[str, str | None] = {"numpy": np.__version__}
    for package in ("scipy", "vowpalwabbit", "mabwiser", "threadpoolctl"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "packages": versions,
        "blas": blas,
        "git": git_commit(root),
    }


def write_results(
    directory: Path, payload: dict[str, object], tables: Sequence[Table], header: str
) -> tuple[Path, Path]:
    """Write ``policies.json`` and ``policies.md``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "policies.json"
    md_path = directory / "policies.md"
    json_path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    md_path.write_text(header + "\n" + "\n".join(table.markdown() for table in tables))
    return json_path, md_path


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
