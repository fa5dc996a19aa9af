"""The processes that simulate run numpy's BLAS on one thread (experiments.runs.workers): in
process, where the limit ends with the run, and in the worker processes of a parallel run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_info

from experiments.runs import simulation
from experiments.runs.workers import run_in_workers, single_blas_thread
from experiments.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def blas_threads() -> list[int]:
    """The thread count of every BLAS library loaded in this process."""
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def _arm_threads(days_done: Any) -> list[int]:
    return blas_threads()


def _extra_threads() -> list[int]:
    return blas_threads()


def test_the_limit_holds_within_its_block_and_is_restored_after() -> None:
    before = blas_threads()
    assert before, "numpy's BLAS is loaded"
    with single_blas_thread():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before


def test_worker_processes_run_blas_on_one_thread() -> None:
    arms, extra = run_in_workers(
        [(_arm_threads, ()), (_arm_threads, ())], (_extra_threads, ()), jobs=2, on_day=None
    )
    assert [set(threads) for threads in arms] == [{1}, {1}]
    assert set(extra) == {1}


def test_an_in_process_run_holds_the_limit_while_its_arms_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[int]] = []

    class Arm:
        def __init__(self, *args: object) -> None:
            pass

        def run(self) -> None:
            seen.append(blas_threads())
            raise RuntimeError("stop after the first arm")

    monkeypatch.setattr(simulation, "_ArmRunner", Arm)
    monkeypatch.setattr(simulation, "upgrade", lambda url: None)
    before = blas_threads()
    options = simulation.RunOptions(customers=100, days=2, oracles=False)
    with pytest.raises(RuntimeError, match="stop after the first arm"):
        simulation.run_simulation(load_spec(EXAMPLES / "mechanism.toml"), options, jobs=1)
    assert seen
    assert set(seen[0]) == {1}
    assert blas_threads() == before
