"""``engage sweep``: the grid, the overrides, and cells that give what ``engage run`` gives,
on local worker processes and on a real local Ray."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app
from experiments.runs.report import result_json
from experiments.runs.simulation import RunOptions, RunResult, run_simulation
from experiments.runs.sweep import (
    MAX_CELLS,
    Override,
    SweepCell,
    cell_spec,
    parse_override,
    sweep_cells,
)
from experiments.runs.sweep_executors import ray_available, run_cells, select_executor
from experiments.runs.sweep_report import pooled_rows, sweep_rows
from experiments.spec import ExperimentSpec, load_spec

FLAGSHIP = Path(__file__).resolve().parents[2] / "examples" / "engagement.toml"
#: A 2 x 3 grid small enough to run three times: seeds x exploration floors.
SEEDS = (0, 1)
FLOORS = Override("exploration_floor", (0.01, 0.05, 0.2))
TINY = RunOptions(customers=120, days=2, arms=("interaction", "engagement"), oracles=False)


@pytest.fixture(scope="module")
def spec() -> ExperimentSpec:
    return load_spec(FLAGSHIP)


@pytest.fixture(scope="module")
def cells() -> list[SweepCell]:
    return sweep_cells(SEEDS, [FLOORS])


@pytest.fixture(scope="module")
def references(spec: ExperimentSpec, cells: list[SweepCell]) -> list[RunResult]:
    """Each cell as ``engage run`` runs it: the overridden spec, the cell's seed."""
    return [run_simulation(cell_spec(spec, cell), replace(TINY, seed=cell.seed)) for cell in cells]


@pytest.fixture(scope="module")
def one_by_one(references: list[RunResult]) -> list[dict[str, Any]]:
    return [result_json(result) for result in references]


def _same(left: Any, right: Any) -> bool:
    """Equal reports: numbers equal to 1e-9 relative (numpy's SIMD sums may round the last
    bit differently with the arrays' alignment), an undefined number (NaN) equal to another."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, float) and isinstance(right, float):
        return (math.isnan(left) and math.isnan(right)) or math.isclose(left, right, rel_tol=1e-9)
    return bool(left == right)


def test_overrides_read_toml_values_and_bare_words() -> None:
    assert parse_override("policy.name=linear_ts,kalman_ts") == Override(
        "policy.name", ("linear_ts", "kalman_ts")
    )
    assert parse_override("exploration_floor=0.05, 0.1") == Override(
        "exploration_floor", (0.05, 0.1)
    )
    assert parse_override('context=["a", "b"],[]') == Override("context", (["a", "b"], []))
    assert parse_override('key="x,y",z') == Override("key", ("x,y", "z"))
    assert parse_override("learner.batch_size=10") == Override("learner.batch_size", (10,))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policy.name", "expected PATH=VALUE"),
        ("=1", "expected PATH=VALUE"),
        ("policy..name=x", "has an empty part"),
        ("policy.name=a,,b", "a value is empty"),
        ("exploration_floor=0.1,0.1", "a value is repeated"),
    ],
)
def test_bad_overrides_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_override(text)
    assert text in str(raised.value)


@given(
    seeds=st.lists(st.integers(0, 99), min_size=1, max_size=3, unique=True),
    sizes=st.lists(st.integers(1, 3), max_size=3),
)
def test_the_grid_holds_every_combination_once(seeds: list[int], sizes: list[int]) -> None:
    overrides = [Override(f"f{i}", tuple(range(size))) for i, size in enumerate(sizes)]
    cells = sweep_cells(seeds, overrides)
    assert len(cells) == len(seeds) * math.prod(sizes)
    combos = [(cell.seed, *(value for _, value in cell.settings)) for cell in cells]
    assert len(set(combos)) == len(combos)
    assert [cell.index for cell in cells] == list(range(len(cells)))
    assert [cell.seed for cell in cells] == sorted(
        (cell.seed for cell in cells), key=seeds.index
    )  # seeds outermost, in the order given


@given(
    seeds=st.lists(st.integers(0, 99), min_size=1, max_size=3, unique=True),
    policy_seeds=st.lists(st.integers(0, 99), min_size=1, max_size=3, unique=True),
    size=st.integers(1, 3),
)
def test_policy_seeds_cross_every_seed_and_setting(
    seeds: list[int], policy_seeds: list[int], size: int
) -> None:
    cells = sweep_cells(seeds, [Override("f", tuple(range(size)))], policy_seeds)
    combos = [(cell.seed, cell.policy_seed, cell.settings) for cell in cells]
    assert sorted(combos) == sorted(
        (seed, policy_seed, (("f", value),))
        for seed in seeds
        for policy_seed in policy_seeds
        for value in range(size)
    )
    assert [(cell.seed, cell.policy_seed) for cell in cells[::size]] == [
        (seed, policy_seed) for seed in seeds for policy_seed in policy_seeds
    ]  # seeds outermost, then policy seeds
    assert all(f"policy_seed={cell.policy_seed} " in cell.label for cell in cells)
    assert all(cell.policy_seed is None for cell in sweep_cells(seeds, []))


def test_grids_that_cannot_be_meant_are_refused() -> None:
    with pytest.raises(ValueError, match="--seeds: expected at least one seed"):
        sweep_cells([], [])
    with pytest.raises(ValueError, match="a seed is repeated"):
        sweep_cells([1, 1], [])
    with pytest.raises(ValueError, match="--policy-seeds: expected at least one seed"):
        sweep_cells([0], [], [])
    with pytest.raises(ValueError, match=r"--policy-seeds: a seed is repeated in \[2, 2\]"):
        sweep_cells([0], [], [2, 2])
    with pytest.raises(ValueError, match="names exploration_floor more than once"):
        sweep_cells([0], [FLOORS, FLOORS])
    big = Override("x", tuple(range(MAX_CELLS)))
    with pytest.raises(ValueError, match=f"the sweep has {2 * MAX_CELLS:,} cells"):
        sweep_cells([0, 1], [big])


def test_a_cell_spec_is_the_base_spec_with_its_overrides(spec: ExperimentSpec) -> None:
    cell = SweepCell(0, 3, (("policy.name", "linucb"), ("policy.params", {"alpha": 0.5})))
    changed = cell_spec(spec, cell)
    assert changed.policy.name == "linucb"
    assert changed.to_json_dict()["policy"]["params"] == {"alpha": 0.5}
    rest = {key: value for key, value in changed.to_json_dict().items() if key != "policy"}
    assert rest == {key: value for key, value in spec.to_json_dict().items() if key != "policy"}
    with pytest.raises(ValueError, match=r"sweep cell 'seed=3 policy.bogus=1': policy.bogus"):
        cell_spec(spec, SweepCell(0, 3, (("policy.bogus", 1),)))
    with pytest.raises(ValueError, match="exploration_floor is a value, not a table"):
        cell_spec(spec, SweepCell(0, 3, (("exploration_floor.x", 1),)))


def test_local_cells_give_what_engage_run_gives(
    spec: ExperimentSpec, cells: list[SweepCell], one_by_one: list[dict[str, Any]]
) -> None:
    finished: list[int] = []
    results = run_cells(
        "local",
        spec.to_json_dict(),
        cells,
        TINY,
        jobs=2,
        on_done=lambda cell, _: finished.append(cell.index),
    )
    assert sorted(finished) == [cell.index for cell in cells]
    assert _same([result_json(result) for result in results], one_by_one)
    # the cells differ: the overrides and seeds reached the runs
    floors = [result.spec.exploration_floor for result in results]
    assert floors == [dict(cell.settings)["exploration_floor"] for cell in cells]
    assert [result.options.seed for result in results] == [cell.seed for cell in cells]


@pytest.mark.skipif(
    not ray_available() and not os.environ.get("CI"),
    reason="Ray is not installed (pip install 'engage[ray]'); required under CI",
)
def test_ray_cells_give_what_engage_run_gives(
    spec: ExperimentSpec, cells: list[SweepCell], one_by_one: list[dict[str, Any]]
) -> None:
    assert select_executor("auto", None) == "ray"
    results = run_cells("ray", spec.to_json_dict(), cells, TINY, jobs=2)
    assert _same([result_json(result) for result in results], one_by_one)


def _rows_from(one_by_one: list[dict[str, Any]]) -> dict[tuple[int, str, str], dict[str, Any]]:
    return {
        (index, row["arm"], row["kpi"]): row
        for index, report in enumerate(one_by_one)
        for row in report["comparisons"]
    }


def test_pooled_differences_are_the_t_interval_over_seeds(
    cells: list[SweepCell], references: list[RunResult], one_by_one: list[dict[str, Any]]
) -> None:
    rows = sweep_rows(cells, references)
    assert len(rows) == len(cells) * len(TINY.arms)
    comparisons = _rows_from(one_by_one)
    for floor in FLOORS.values:
        values = [
            comparisons[(cell.index, "engagement", "revenue")]["difference"]
            for cell in cells
            if dict(cell.settings)["exploration_floor"] == floor
        ]
        pooled = [
            row
            for row in pooled_rows(rows)
            if row.settings == {"exploration_floor": floor} and row.kpi == "revenue"
        ]
        assert len(pooled) == 1
        assert pooled[0].seeds == 2
        mean = (values[0] + values[1]) / 2
        # two seeds: t_{0.975, 1} = 12.7062; sd / sqrt(2) = |a - b| / 2
        half = 12.706204736 * abs(values[0] - values[1]) / 2
        assert pooled[0].mean_difference == pytest.approx(mean, abs=1e-12)
        assert pooled[0].low == pytest.approx(mean - half, rel=1e-6, abs=1e-12)
        assert pooled[0].high == pytest.approx(mean + half, rel=1e-6, abs=1e-12)


def test_the_command_runs_the_grid_and_refuses_bad_input_by_name() -> None:
    runner = CliRunner()
    args = ["sweep", str(FLAGSHIP), "--customers", "60", "--days", "1", "--no-oracles"]
    args += ["--arms", "interaction,engagement", "--no-track", "--executor", "local"]
    done = runner.invoke(app, [*args, "--seeds", "0,1", "--set", "exploration_floor=0.02,0.1"])
    assert done.exit_code == 0, done.output
    output = " ".join(done.output.split())
    assert "cell 3: seed=1 exploration_floor=0.1" in output
    assert "setting 1: exploration_floor=0.1" in output
    linucb = 'policy={name = "linucb", params = {alpha = 0.5}}'
    as_json = runner.invoke(app, [*args, "--json", "--set", linucb])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert [cell["settings"] for cell in data["cells"]] == [
        {"policy": {"name": "linucb", "params": {"alpha": 0.5}}}
    ]
    assert data["cells"][0]["report"]["arms"][1]["policy"] == "linucb"
    for extra, message in (
        (["--set", "policy.bogus=1"], "policy.bogus: unknown field"),
        (["--set", "nonsense"], "--set 'nonsense': expected PATH=VALUE"),
        (["--seeds", "0,x"], "--seeds: expected whole numbers"),
        (["--policy-seeds", "-1"], "--policy-seeds: expected whole numbers"),
        (["--seeds", f"0,{2**63}"], f"--seeds: expected whole numbers from 0 to {2**63 - 1}"),
        (["--policy-seeds", "\u00b2"], "--policy-seeds: expected whole numbers"),
        (["--executor", "gpu"], "--executor: expected auto, ray or local"),
    ):
        bad = runner.invoke(app, [*args, *extra])
        assert bad.exit_code == 2, (extra, bad.output)
        assert message in " ".join(bad.output.split()), (extra, bad.output)


def test_a_policy_seed_cell_gives_what_engage_run_gives_with_that_policy_seed() -> None:
    """``engage sweep --seeds 1 --policy-seeds 0,5`` holds the world of seed 1 and runs the
    learners of each policy seed: each cell's report is ``engage run --seed 1 --policy-seed
    P``'s, and the two cells share their oracles but not their learners' paths."""
    runner = CliRunner()
    common = ["--customers", "80", "--days", "2", "--arms", "interaction,engagement"]
    common += ["--no-track", "--json"]
    grid = ["--seeds", "1", "--policy-seeds", "0,5", "--executor", "local"]
    swept = runner.invoke(app, ["sweep", str(FLAGSHIP), *common, *grid])
    assert swept.exit_code == 0, swept.output
    data = json.loads(swept.output)
    assert data["policy_seeds"] == [0, 5]
    reports = [cell["report"] for cell in data["cells"]]
    for report, policy_seed in zip(reports, (0, 5), strict=True):
        alone = runner.invoke(
            app,
            ["run", str(FLAGSHIP), *common, "--seed", "1", "--policy-seed", str(policy_seed)],
        )
        assert alone.exit_code == 0, alone.output
        expected = {k: v for k, v in json.loads(alone.output).items() if k != "mlflow_run_id"}
        for one in (report, expected):  # the oracles' wall time is the only thing that differs
            del one["oracles"]["seconds"]
        assert _same(report, expected)
        assert report["options"] == {**report["options"], "seed": 1, "policy_seed": policy_seed}
    assert _same(reports[0]["oracles"], reports[1]["oracles"])
    assert not _same(reports[0]["arms"], reports[1]["arms"])


def test_the_sweep_is_one_parent_run_with_a_run_per_cell(
    spec: ExperimentSpec,
    cells: list[SweepCell],
    references: list[RunResult],
    one_by_one: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow import MlflowClient

    from experiments.runs.sweep_report import SweepPlan, track_sweep

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    plan = SweepPlan(seeds=SEEDS, overrides={FLOORS.path: list(FLOORS.values)}, executor="local")
    parent_id = track_sweep(spec, FLAGSHIP.read_text(), TINY, plan, cells, references)
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(parent_id)
    assert parent.data.params["seeds"] == "0,1"
    assert parent.data.params["sweep.exploration_floor"] == "0.01,0.05,0.2"
    assert (
        "| seed=1 exploration_floor=0.2 | engagement |" in parent.data.tags["mlflow.note.content"]
    )
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(child.info.run_name for child in children) == sorted(c.label for c in cells)
    for child in children:
        cell = next(c for c in cells if c.label == child.info.run_name)
        assert child.data.params["exploration_floor"] == str(
            dict(cell.settings)["exploration_floor"]
        )
        differences = [
            row
            for row in one_by_one[cell.index]["comparisons"]
            if row["arm"] == "engagement" and row["kpi"] == "revenue"
        ]
        assert child.data.metrics["engagement_minus_interaction_revenue"] == pytest.approx(
            differences[0]["difference"]
        )
        expected = one_by_one[cell.index]["arms"][1]["revenue_per_customer"]
        assert child.data.metrics["engagement_revenue_per_customer"] == pytest.approx(expected)


@pytest.mark.skipif(
    not ray_available() and not os.environ.get("CI"),
    reason="Ray is not installed (pip install 'engage[ray]'); required under CI",
)
def test_a_local_ray_leaves_the_signal_handlers_as_it_found_them(spec: ExperimentSpec) -> None:
    import signal

    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    run_cells("ray", spec.to_json_dict(), sweep_cells([0], []), replace(TINY, days=1), jobs=1)
    assert {signum: signal.getsignal(signum) for signum in before} == before
