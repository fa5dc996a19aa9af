"""``engage init``: write an example experiment spec to start from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, fail


def init(
    path: Annotated[Path, typer.Argument(help="Where to write the spec.")] = Path(
        "experiment.toml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write an example experiment spec (TOML). Example: engage init my-experiment.toml"""
    from experiments.spec import example_spec_text

    if path.exists() and not force:
        raise fail(f"{path} exists; pass --force to overwrite it")
    path.write_text(example_spec_text())
    console.print(f"wrote {path}; run it with: engage run {path}")
