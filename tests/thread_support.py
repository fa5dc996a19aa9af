"""Work started in several threads at once, for tests of concurrent callers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: Threads a concurrency test starts together.
THREADS = 8


def run_threads(
    work: Callable[[int], Any], *, threads: int = THREADS, timeout: float = 120.0
) -> tuple[list[Any], list[BaseException]]:
    """``work(i)`` in ``threads`` threads released together by a barrier; the results by
    thread and the errors raised. Fails if a thread is still running after ``timeout``."""
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = work(index)
        except BaseException as error:
            errors.append(error)

    started = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in started)
    return results, errors
