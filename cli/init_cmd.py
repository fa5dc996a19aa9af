"""``engage init``: write an example experiment spec to start from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, fail, shown


def init(
    path: Annotated[Path, typer.Argument(help="Where to write the spec.")] = Path(
        "experiment.toml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write an example experiment spec (TOML). Example: engage init my-experiment.toml"""
    from experiments.spec import example_spec_text

    if path.is_dir():
        raise fail(f"{path} is a directory; name the spec file to write, e.g. {path / 'x.toml'}")
    if path.exists() and not force:
        raise fail(f"{path} exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        raise fail(f"cannot write {path}: the folder {path.parent} does not exist")
    try:
        path.write_text(example_spec_text())
    except OSError as error:
        raise fail(f"cannot write {path}: {error.strerror or error}") from None
    console.print(shown(f"wrote {path}; run it with: engage run {path}"))
