"""Group commit for requests on the event loop: one thread-pool hop per batch, not per request.

A decision planned on the event loop (:meth:`DecisionEngine.plan_in_memory`) still has to be
stored and committed before it is answered, and that blocks, so it goes to a worker thread.
Sent one by one, each request pays the hop to the thread pool and back (two thread wake-ups,
costlier than the insert on a busy machine) and the threads then fight the event loop for
the GIL. :class:`LoopBatcher` applies :mod:`experiments.store.group_commit`'s idea on the loop
instead: requests append their item and wait on a future; one task writes everything pending
in one call in the thread pool (one transaction, one commit), hands each waiter its result,
and takes the next batch, which gathered while that commit ran. The answer therefore still
goes out only after the commit that made its item durable.

A batch whose write raises fails each of its waiters with that exception (nothing of it was
committed, as with :class:`~experiments.store.group_commit.GroupCommit`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

__all__ = ["LoopBatcher"]

_T = TypeVar("_T")
_R = TypeVar("_R")


class LoopBatcher(Generic[_T, _R]):
    """Write items of concurrent coroutines in shared batches, off the event loop.

    Args:
        write: writes and commits a batch (in a worker thread) and returns one result per
            item, in order.
        max_batch: at most this many items per call of ``write``.
    """

    def __init__(self, write: Callable[[Sequence[_T]], Sequence[_R]], *, max_batch: int = 256):
        if max_batch < 1:
            raise ValueError(
                f"The 'max_batch' parameter of LoopBatcher must be >= 1. Got {max_batch}."
            )
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[_T, asyncio.Future[_R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: _T) -> _R:
        """Write ``item`` with whatever else is pending; its result once committed."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[_R] = loop.create_future()
        self._pending.append((item, result))
        if self._writer is None or self._writer.done():
            # Its own task, not the first waiter's: a waiter may be cancelled (its client
            # went away) while a batch with others' items is being written.
            self._writer = loop.create_task(self._write_pending())
        return await result

    async def _write_pending(self) -> None:
        """Write batches until nothing is pending."""
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results = await run_in_threadpool(self._write, [item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for {len(batch)} items")
            except Exception as error:  # every waiter of the batch gets it
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(error)
                continue
            except BaseException:  # cancelled (shutdown): nothing more is written
                for _, waiter in batch + self._pending:
                    waiter.cancel()
                self._pending.clear()
                raise
            for (_, waiter), outcome in zip(batch, results, strict=True):
                if not waiter.done():
                    waiter.set_result(outcome)
