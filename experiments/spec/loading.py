"""Reading a spec: from a mapping (parsed TOML or JSON), from a TOML file, or the quickstart.

:func:`parse_spec` and :func:`load_spec` are the entry points; both raise :class:`SpecError`
and nothing else for bad input. The quickstart spec that ``engage init`` writes is package
data (``quickstart.toml`` next to this module), the same text as ``examples/quickstart.toml``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from experiments._files import file_problem
from experiments.spec.context import CONTEXT_KINDS
from experiments.spec.errors import SpecError, spec_error
from experiments.spec.model import ExperimentSpec, model_at
from experiments.spec.text import first_text_problem

_QUICKSTART = "quickstart.toml"
#: Largest spec file read: specs are a few kilobytes; the bounds on a spec's sizes
#: (:mod:`experiments.spec.limits`) fit in far less.
MAX_SPEC_BYTES = 10_000_000


def parse_spec(data: Mapping[str, Any]) -> ExperimentSpec:
    """Validate a spec given as a mapping (parsed TOML or JSON).

    Raises :class:`SpecError` named after the first bad field; ``errors`` lists them all.
    Text must be storable as is on every database (:mod:`experiments.spec.text`): no NUL, no
    lone surrogate, in keys or values.
    """
    if not isinstance(data, Mapping):
        raise SpecError("spec", f"must be a table of spec fields; got {type(data).__name__}")
    unstorable = first_text_problem(data)
    if unstorable is not None:
        raise SpecError(*unstorable)
    try:
        return ExperimentSpec.model_validate(dict(data))
    except ValidationError as error:
        raise spec_error(error, model_at=model_at, context_kinds=list(CONTEXT_KINDS)) from None


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate a TOML spec file; unreadable files and TOML syntax errors raise
    :class:`SpecError` on the field ``file``."""
    source = Path(path)
    if not source.exists():
        raise SpecError("file", f"no spec file at {str(source)!r}")
    problem = file_problem(source, max_bytes=MAX_SPEC_BYTES)
    if problem is not None:
        raise SpecError("file", problem)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file", f"no spec file at {str(source)!r}") from None
    except UnicodeDecodeError as error:
        raise SpecError("file", f"{str(source)!r} is not UTF-8 text: {error}") from None
    except OSError as error:
        raise SpecError("file", f"cannot read {str(source)!r}: {error.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError("file", f"{str(source)!r} is not valid TOML: {error}") from None
    return parse_spec(data)


def example_spec_text() -> str:
    """A small, valid spec to start from (what ``engage init`` writes); the same text as
    ``examples/quickstart.toml``."""
    return files("experiments.spec").joinpath(_QUICKSTART).read_text(encoding="utf-8")
