"""The worker processes of a parallel ``engage run``: a signal held while the pool starts, and
stopping the workers at once when the run is interrupted or an arm fails."""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["HeldSignal", "stop_workers"]


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
