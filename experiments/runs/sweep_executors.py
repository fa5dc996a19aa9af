"""Where a sweep's cells run: Ray (local or an existing cluster) or local worker processes.

Both run :func:`~experiments.runs.sweep.run_cell`, one cell per task, and hand each result to
``on_done`` as it finishes; the results come back in cell order, so the executor changes how
long a sweep takes, never what it finds (a cell's randomness is its own seed).

Ray is an optional extra (``pip install 'engage[ray]'``). With ``address`` the cells run on an
existing Ray cluster, whose workers must have engage installed; without it a local Ray is
started with ``jobs`` CPUs and shut down afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.util
import signal
from collections.abc import Callable, Sequence
from typing import Any, Literal

from experiments.runs.simulation import RunOptions, RunResult
from experiments.runs.sweep import SweepCell, run_cell
from experiments.runs.workers import HeldSignal, stop_workers

__all__ = ["ExecutorChoice", "ray_available", "run_cells", "select_executor"]

ExecutorChoice = Literal["auto", "ray", "local"]
OnDone = Callable[[SweepCell, RunResult], None]
#: Ray's shared-memory object store for a local Ray: results are a few MB per cell.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2


def ray_available() -> bool:
    """Whether the optional ``ray`` package can be imported (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def select_executor(choice: ExecutorChoice, address: str | None) -> Literal["ray", "local"]:
    """The executor a sweep uses: ``auto`` is Ray when installed, else local processes.

    Raises ValueError when Ray is asked for (``--executor ray`` or an ``--address``) and is not
    installed, or when an address is given with ``--executor local``.
    """
    if address is not None and choice == "local":
        raise ValueError("--address names a Ray cluster; it cannot be used with --executor local")
    wants_ray = choice == "ray" or address is not None
    if wants_ray and not ray_available():
        raise ValueError(
            "Ray is not installed: pip install 'engage[ray]' (or use --executor local)"
        )
    if choice == "auto" and not wants_ray:
        return "ray" if ray_available() else "local"
    return "ray" if wants_ray else "local"


def run_cells(
    executor: Literal["ray", "local"],
    spec_data: dict[str, Any],
    cells: Sequence[SweepCell],
    options: RunOptions,
    *,
    jobs: int,
    address: str | None = None,
    on_done: OnDone | None = None,
) -> list[RunResult]:
    """Run every cell on ``executor``; return the results in cell order."""
    if executor == "ray":
        return _run_on_ray(spec_data, cells, options, jobs=jobs, address=address, on_done=on_done)
    if jobs <= 1 or len(cells) == 1:
        results = []
        for cell in cells:
            results.append(run_cell(spec_data, cell, options))
            if on_done is not None:
                on_done(cell, results[-1])
        return results
    return _run_in_processes(spec_data, cells, options, jobs=jobs, on_done=on_done)


def _run_in_processes(
    spec_data: dict[str, Any],
    cells: Sequence[SweepCell],
    options: RunOptions,
    *,
    jobs: int,
    on_done: OnDone | None,
) -> list[RunResult]:
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    held = HeldSignal(signal.SIGTERM)
    with contextlib.ExitStack() as stack:
        with held:  # a SIGTERM while the pool starts waits until it is up (as engage run does)
            pool = stack.enter_context(
                ProcessPoolExecutor(max_workers=min(jobs, len(cells)), mp_context=context)
            )
        try:
            held.deliver()
            futures: dict[Future[RunResult], SweepCell] = {
                pool.submit(run_cell, spec_data, cell, options): cell for cell in cells
            }
            results: dict[int, RunResult] = {}
            for future in as_completed(futures):
                cell = futures[future]
                results[cell.index] = future.result()
                if on_done is not None:
                    on_done(cell, results[cell.index])
            return [results[cell.index] for cell in cells]
        except BaseException:
            stop_workers(pool)  # Ctrl-C, SIGTERM or a failed cell: stop the others now
            raise


def _run_on_ray(
    spec_data: dict[str, Any],
    cells: Sequence[SweepCell],
    options: RunOptions,
    *,
    jobs: int,
    address: str | None,
    on_done: OnDone | None,
) -> list[RunResult]:
    """Each cell a Ray task of one CPU; a local Ray (``jobs`` CPUs) unless ``address``."""
    import logging

    import ray

    started = not ray.is_initialized()
    # ray.init installs its own SIGTERM/SIGINT handlers and shutdown leaves them: put back
    # the caller's (engage's Ctrl-C and SIGTERM handling) once the local Ray is gone.
    handlers = _signal_handlers() if started else {}
    if started:
        if address is None:
            ray.init(
                num_cpus=jobs,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            )
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        pending = {task.remote(spec_data, cell, options): cell for cell in cells}
        results: dict[int, RunResult] = {}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(done[0])
                results[cell.index] = ray.get(done[0])
                if on_done is not None:
                    on_done(cell, results[cell.index])
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        return [results[cell.index] for cell in cells]
    finally:
        if started:
            ray.shutdown()
            for signum, handler in handlers.items():
                signal.signal(signum, handler)


def _signal_handlers() -> dict[int, Any]:
    """The SIGTERM and SIGINT handlers now (none outside the main thread, where they cannot be
    set)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
