"""The worker processes of a parallel ``engage run``: the arms (and the oracles) submitted to
a pool of spawned processes, a signal held while the pool starts, stopping the workers at
once when the run is interrupted or an arm fails, and one BLAS thread per simulating process
(:mod:`experiments._blas`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from experiments._blas import hold_one_blas_thread

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = [
    "WORK_RANK",
    "HeldSignal",
    "heaviest_first",
    "run_in_workers",
    "stop_workers",
]

#: A picklable module-level function and its leading arguments.
Task = tuple[Callable[..., Any], tuple[Any, ...]]


class HeldSignal:
    """Within the block, ``signum`` is recorded instead of handled; :meth:`deliver` sends a
    recorded one again, to the handler the block found. Outside the main thread (where
    handlers cannot be set) it does nothing."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.previous: Any = None
        self.pending = False

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(self.signum, self._record)

    def __exit__(self, *_: object) -> None:
        if self.previous is not None:
            signal.signal(self.signum, self.previous)
            self.previous = None

    def _record(self, signum: int, frame: object) -> None:
        self.pending = True

    def deliver(self) -> None:
        if self.pending:
            self.pending = False
            signal.raise_signal(self.signum)


def stop_workers(pool: Any) -> None:
    """Cancel the tasks not started and terminate the pool's worker processes."""
    # The executor keeps its processes private; there is no public way to stop them early.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    if threading.current_thread() is threading.main_thread():
        # The executor's own thread may still write to a terminated worker's pipe; under
        # engage's SIGPIPE default (cli.main.entry) that would end engage with status 141
        # before the interrupt is reported. Broken pipes are errors from here on.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(timeout=10)


#: Arms by how long they take, heaviest first (engage run examples/engagement.toml, 3,000
#: customers x 20 days, one arm per run, less the start-up: strategy 16 s, interaction 10 s,
#: engagement 6.5 s, uniform 4.8 s, business_as_usual 4 s). Arms not listed are learners
#: named on purpose (lookahead, sequential, surrogate): ranked with the heavy ones.
WORK_RANK = {"strategy": 0, "interaction": 1, "engagement": 2, "uniform": 3, "business_as_usual": 4}


def heaviest_first(arms: Sequence[str]) -> list[int]:
    """Positions of ``arms`` in the order to submit them to the pool: longest first, so the
    last task to start is a short one (longest-processing-time-first scheduling) and no
    worker idles while another runs a long arm it started late."""
    return sorted(range(len(arms)), key=lambda index: WORK_RANK.get(arms[index], 0))


def run_in_workers(
    arms: Sequence[Task],
    extra: Task | None,
    *,
    jobs: int,
    on_day: Callable[[str, int], None] | None,
    order: Sequence[int] | None = None,
) -> tuple[list[Any], Any | None]:
    """Run ``arms`` and ``extra`` (the oracles; None: none) in at most ``jobs`` spawned
    worker processes; return the arms' results in the order of ``arms`` and ``extra``'s.

    ``order``: the positions of ``arms`` in the order they are submitted (default as
    given; :func:`heaviest_first`); ``extra`` goes last. Each arm function gets its
    arguments plus a queue on which it puts ``(arm, day)`` as its days end; they are passed
    to ``on_day`` here, in the parent.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    tasks = len(arms) + int(extra is not None)
    held = HeldSignal(signal.SIGTERM)
    with contextlib.ExitStack() as stack:
        # A SIGTERM while the manager and the pool's workers start would interrupt their
        # handshakes half done (the manager, or a worker reading what the parent sends it,
        # then dies with a traceback): it waits until they are up. The pool starts its
        # workers as tasks are submitted, so the submissions are held too.
        with held:
            manager = stack.enter_context(context.Manager())
            pool = stack.enter_context(
                ProcessPoolExecutor(
                    max_workers=min(jobs, tasks),
                    mp_context=context,
                    initializer=hold_one_blas_thread,
                )
            )
            days_done = manager.Queue()
            futures, other = _submit(
                pool, days_done, arms, extra, range(len(arms)) if order is None else order
            )
        try:
            held.deliver()
            return _wait_for_arms(futures, other, days_done, on_day)
        except BaseException:
            # Ctrl-C, SIGTERM (see cli.common.sigterm_as_interrupt) or a failed arm: stop
            # the workers now rather than wait for their simulations to end; a signal sent
            # to engage alone does not reach them.
            stop_workers(pool)
            raise


def _submit(
    pool: Any,
    days_done: Any,
    arms: Sequence[Task],
    extra: Task | None,
    order: Sequence[int],
) -> tuple[list[Future[Any]], Future[Any] | None]:
    """Submit every arm in ``order`` (then ``extra``) to ``pool``: the arms' futures in the
    order of ``arms``, and ``extra``'s."""
    submitted = {index: pool.submit(arms[index][0], *arms[index][1], days_done) for index in order}
    futures = [submitted[index] for index in range(len(arms))]
    other = pool.submit(extra[0], *extra[1]) if extra is not None else None
    return futures, other


def _wait_for_arms(
    futures: list[Future[Any]],
    other: Future[Any] | None,
    days_done: Any,
    on_day: Callable[[str, int], None] | None,
) -> tuple[list[Any], Any | None]:
    """Wait for the arms and ``other``, reporting days as they end."""
    import queue
    from concurrent.futures import wait

    pending: set[Future[Any]] = {*futures, *([other] if other is not None else [])}
    while pending:
        _, pending = wait(pending, timeout=0.2)
        while True:
            try:
                name, day = days_done.get_nowait()
            except queue.Empty:
                break
            if on_day is not None:
                on_day(name, day)
    return [future.result() for future in futures], (other.result() if other is not None else None)
