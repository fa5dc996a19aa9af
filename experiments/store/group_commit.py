"""Group commit: concurrent writers of one process share one transaction and one commit.

A request that must not be answered before its row is durable pays for a commit (an fsync on
SQLite and on PostgreSQL). Paid once per request, that commit is most of the request's cost
and serialises the requests on the database's write lock. :class:`GroupCommit` lets the
requests waiting at the same moment share it (the classic leader/follower group commit of
database logs, e.g. Helland et al., "Group Commit Timers and High Volume Transaction
Systems", HPTS 1987):

1. a request appends its item to the pending list;
2. it takes the commit lock; if a committer before it has already written its item, it is
   done; otherwise it becomes the committer: it takes every pending item (its own and those
   that arrived while the last commit ran), writes them in one transaction, commits, and
   hands each waiting request its result (or the batch's error);
3. the request returns its item's result only once that commit has returned.

No thread of its own: the committer is always one of the waiting requests, so nothing is
started, stopped or left behind when engines come and go (tests build many). Batches size
themselves: the longer a commit takes, the more requests gather for the next one. Under no
concurrency a batch is the request alone, at the cost of one uncontended lock.

A batch that fails (the database is down, a deadline passed) fails every request in it with
the same exception, which none of them has seen acknowledged: nothing was committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlmodel import Session

from experiments.store.database import Database

__all__ = ["GroupCommit"]

_T = TypeVar("_T")
_R = TypeVar("_R")


class _Pending(Generic[_T, _R]):
    """One request's item and, once its batch has committed, its result or error."""

    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: _T) -> None:
        self.item = item
        self.done = False
        self.result: _R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[_T, _R]):
    """Write items of concurrent callers in shared transactions; each caller returns after
    the commit that made its item durable.

    Args:
        database: where to write.
        write: writes a batch in the session it is given (without committing) and returns one
            result per item, in order.
        max_batch: at most this many items per transaction (bounds a transaction's size and
            its statement's bound parameters).
    """

    def __init__(
        self,
        database: Database,
        write: Callable[[Session, Sequence[_T]], Sequence[_R]],
        *,
        max_batch: int = 256,
    ) -> None:
        if max_batch < 1:
            raise ValueError(
                f"The 'max_batch' parameter of GroupCommit must be >= 1. Got {max_batch}."
            )
        self._database = database
        self._write = write
        self._max_batch = max_batch
        self._pending: list[_Pending[_T, _R]] = []
        self._pending_lock = threading.Lock()
        self._commit_lock = threading.Lock()

    def submit(self, item: _T) -> _R:
        """Write ``item`` (with whatever else is pending) and return its result once committed;
        raises the batch's exception if its transaction failed."""
        pending: _Pending[_T, _R] = _Pending(item)
        with self._pending_lock:
            self._pending.append(pending)
        while not pending.done:
            with self._commit_lock:
                if not pending.done:
                    self._commit_pending()
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]  # set with done, error unset

    def _commit_pending(self) -> None:
        """As the committer: write and commit up to ``max_batch`` pending items (the oldest
        first), then hand each its result."""
        with self._pending_lock:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
        if not batch:
            return
        try:
            with self._database.session() as session:
                results = self._write(session, [entry.item for entry in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for {len(batch)} items")
                session.commit()
        except BaseException as error:  # every waiter gets it, the committer included
            for entry in batch:
                entry.error = error
                entry.done = True
            return
        for entry, result in zip(batch, results, strict=True):
            entry.result = result
            entry.done = True
