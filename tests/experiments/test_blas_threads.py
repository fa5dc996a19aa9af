"""The processes that simulate or serve run numpy's BLAS on one thread (experiments._blas): in
process, where the limit ends with the run, in the worker processes of a parallel run, and in
each worker of ``engage serve``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_info

from experiments._blas import single_blas_thread
from experiments.runs import simulation
from experiments.runs.workers import run_in_workers
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


def test_a_service_worker_runs_blas_on_one_thread(tmp_path: Path) -> None:
    """What each uvicorn worker of ``engage serve`` builds its app with, in a fresh process (the
    limit lasts for the process's life)."""
    probe = (
        "from threadpoolctl import threadpool_info\n"
        "from experiments.service.factory import app_from_environment\n"
        "app_from_environment()\n"
        "print(sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'}))\n"
    )
    environment = {**os.environ, "ENGAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'engage.db'}"}
    environment.pop("OPENBLAS_NUM_THREADS", None)
    done = subprocess.run(  # noqa: S603 (our own interpreter and a fixed script)
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1]"
