"""The errors engage's store raises, in one tree so that callers can catch what they mean.

The store imports nothing of ``experiments`` outside itself (but :mod:`experiments.vocabulary`),
so it has its own errors; the edges translate them (the CLI prints one line and exits with code
2 for :class:`StoreError` and every ``ValueError``)::

    StoreError
    ├── DuplicateError             a row with this key exists
    │   ├── DuplicateRequestError  a decision for this request id exists (.existing)
    │   └── SnapshotVersionError   a snapshot version not above the newest
    ├── NotFoundError              (also a LookupError) no row with this key
    ├── InvalidFieldError          (also a ValueError) an argument is unusable (.field names it)
    └── SchemaMismatchError        (also a RuntimeError) the database is not at this engage's head
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experiments.store.models import Decision

__all__ = [
    "DuplicateError",
    "DuplicateRequestError",
    "InvalidFieldError",
    "NotFoundError",
    "SchemaMismatchError",
    "SnapshotVersionError",
    "StoreError",
]


class StoreError(Exception):
    """Base of the store's errors (the tree is drawn in this module's docstring)."""


class DuplicateError(StoreError):
    """A row with the same unique key already exists."""


class SnapshotVersionError(DuplicateError):
    """A policy snapshot's version must be strictly greater than the newest stored one."""


class DuplicateRequestError(DuplicateError):
    """A decision with this ``request_id`` already exists in the experiment; it is ``existing``.
    Nothing was written and the session's transaction is still usable."""

    def __init__(self, existing: Decision) -> None:
        super().__init__(
            f"request {existing.request_id!r} of experiment {existing.experiment_key!r} already "
            f"has decision {existing.id!r}"
        )
        self.existing = existing

    def __reduce__(self) -> tuple[type[DuplicateRequestError], tuple[Decision]]:
        """Rebuilt from the decision, so it crosses a process boundary as itself."""
        return type(self), (self.existing,)


class NotFoundError(StoreError, LookupError):
    """No row with this key."""


class InvalidFieldError(StoreError, ValueError):
    """An argument the store cannot use; ``field`` names it (a ``ValueError``, so every edge
    that reports bad input reports this one too)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        """Rebuilt from its own arguments, so it crosses a process boundary as itself."""
        return _invalid_field, (str(self), self.field)


def _invalid_field(message: str, field: str) -> InvalidFieldError:
    """:class:`InvalidFieldError` from positional arguments (what unpickling can pass)."""
    return InvalidFieldError(message, field=field)


class SchemaMismatchError(StoreError, RuntimeError):
    """The database's schema revision is not the one this engage was built for."""
