"""``engage sweep``: a grid of ``engage run`` cells (seeds x spec overrides), run in parallel.

A sweep is the Cartesian product of seeds and of every override's values. An override names a
field of the spec by its dotted path in the spec's JSON form (``policy.name``,
``policy.params.ridge``, ``exploration_floor``, ``strategies.panel``) and the values to try; each
cell is the base spec with its overrides applied, validated as any spec is (an unknown field or a
bad value is refused by its path), and simulated exactly as ``engage run`` would with the same
options and seed (:func:`~experiments.runs.simulation.run_simulation`, one worker per cell): a
cell's results are those of ``engage run`` on the same settings.

Cells run on Ray when it is installed (a local Ray started here, or an existing cluster at
``address``), otherwise in local worker processes (:mod:`experiments.runs.sweep_executors`).
"""

from __future__ import annotations

import copy
import itertools
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from experiments.runs.simulation import RunOptions, RunResult, run_simulation
from experiments.spec import ExperimentSpec, parse_spec

__all__ = [
    "MAX_CELLS",
    "Override",
    "SweepCell",
    "cell_spec",
    "parse_override",
    "run_cell",
    "sweep_cells",
]

#: The most cells one sweep may hold: a grid past it is a typo more often than a plan.
MAX_CELLS = 1_000


@dataclass(frozen=True)
class Override:
    """One swept field: its dotted path in the spec's JSON form and the values to try."""

    path: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SweepCell:
    """One cell of the grid: its position, seed, the value of each override and the learners'
    own seed (None: the world's ``seed``, as in ``engage run``)."""

    index: int
    seed: int
    settings: tuple[tuple[str, Any], ...]
    policy_seed: int | None = None

    @property
    def label(self) -> str:
        """``seed=1 policy_seed=4 policy.name=kalman_ts``: the cell's MLflow run name and table
        row (``policy_seed`` only where it is set)."""
        seeds = [f"seed={self.seed}"]
        if self.policy_seed is not None:
            seeds.append(f"policy_seed={self.policy_seed}")
        return " ".join([*seeds, *(f"{path}={value}" for path, value in self.settings)])


def _value(text: str) -> Any:
    """A TOML value (``0.1``, ``true``, ``"x"``, ``[1, 2]``), or the bare text as a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _split_top_level(text: str) -> list[str]:
    """``a,[1, 2],"b,c"`` -> ``['a', '[1, 2]', '"b,c"']``: commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for position, character in enumerate(text):
        if quote:
            quote = "" if character == quote else quote
        elif character in "\"'":
            quote = character
        elif character in "[{":
            depth += 1
        elif character in "]}":
            depth -= 1
        elif character == "," and depth == 0:
            parts.append(text[start:position])
            start = position + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def parse_override(text: str) -> Override:
    """``policy.name=linear_ts,kalman_ts`` -> the path and its values.

    Values are separated by commas outside brackets and quotes; each is read as a TOML value
    (numbers, booleans, quoted strings, arrays), a bare word as a string. Raises ValueError
    naming the override when it has no ``=``, no path or an empty value.
    """
    path, equals, values_text = text.partition("=")
    path = path.strip()
    if not equals or not path:
        raise ValueError(f"--set {text!r}: expected PATH=VALUE[,VALUE...], e.g. policy.name=linucb")
    if any(not part for part in path.split(".")):
        raise ValueError(f"--set {text!r}: the path {path!r} has an empty part")
    parts = _split_top_level(values_text)
    if any(not part for part in parts):
        raise ValueError(f"--set {text!r}: a value is empty; separate values by single commas")
    values = tuple(_value(part) for part in parts)
    if len(set(map(repr, values))) != len(values):
        raise ValueError(f"--set {text!r}: a value is repeated")
    return Override(path=path, values=values)


def sweep_cells(
    seeds: Sequence[int],
    overrides: Sequence[Override],
    policy_seeds: Sequence[int] | None = None,
) -> list[SweepCell]:
    """Every combination of a seed, a policy seed (when given) and one value of each override;
    seeds outermost, then policy seeds.

    Policy seeds vary the learners' paths in each seeded world (``engage run --policy-seed``);
    without them a cell's learners take the world's seed.

    Raises ValueError when no seed is given, a seed or a policy seed is repeated, a path is
    swept twice, or the grid holds more than :data:`MAX_CELLS` cells.
    """
    for option, values in (("--seeds", seeds), ("--policy-seeds", policy_seeds)):
        if values is None:
            continue
        if not values:
            raise ValueError(f"{option}: expected at least one seed")
        if len(set(values)) != len(values):
            raise ValueError(f"{option}: a seed is repeated in {list(values)}")
    learner_seeds: Sequence[int | None] = [None] if policy_seeds is None else policy_seeds
    paths = [override.path for override in overrides]
    repeated = sorted({path for path in paths if paths.count(path) > 1})
    if repeated:
        raise ValueError(f"--set names {', '.join(repeated)} more than once; give its values once")
    size = len(seeds) * len(learner_seeds)
    for override in overrides:
        size *= len(override.values)
    if size > MAX_CELLS:
        raise ValueError(f"the sweep has {size:,} cells; at most {MAX_CELLS:,} are allowed")
    grid = itertools.product(seeds, learner_seeds, *(override.values for override in overrides))
    return [
        SweepCell(
            index=index,
            seed=int(combo[0]),
            settings=tuple(zip(paths, combo[2:], strict=True)),
            policy_seed=None if combo[1] is None else int(combo[1]),
        )
        for index, combo in enumerate(grid)
    ]


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``a.b.c``, creating missing tables on the way."""
    *parents, last = path.split(".")
    node = data
    for depth, part in enumerate(parents):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parents[: depth + 1])
            raise ValueError(f"--set {path}: {where} is a value, not a table of fields")
        node = child
    node[last] = copy.deepcopy(value)


def cell_spec(spec: ExperimentSpec, cell: SweepCell) -> ExperimentSpec:
    """The base spec with the cell's overrides applied, validated like any spec (an unknown
    field or a bad value raises the spec's own error, which names the field)."""
    data = spec.to_json_dict()
    for path, value in cell.settings:
        _set_path(data, path, value)
    try:
        return parse_spec(data)
    except ValueError as error:
        raise ValueError(f"sweep cell '{cell.label}': {error}") from error


def run_cell(
    spec_data: dict[str, Any],
    cell: SweepCell,
    options: RunOptions,
    on_day: Callable[[str, int], None] | None = None,
) -> RunResult:
    """One cell, as ``engage run`` with ``options`` and the cell's seeds would run it.

    A module-level function of plain arguments, so a worker process or a Ray task can run it.
    The run's database is the run's own temporary one (``options.database_url`` is ignored: a
    sweep's cells would collide on their experiment keys in one database).
    """
    spec = cell_spec(parse_spec(spec_data), cell)
    cell_options = replace(options, seed=cell.seed, policy_seed=cell.policy_seed, database_url=None)
    return run_simulation(spec, cell_options, on_day=on_day, jobs=1)
