"""Errors the engine raises, each mapped to one HTTP status and one CLI line at the edges.

EngineError (ValueError)            .field names the offending input
 ├── InvalidInputError   -> 422     bad context, bad outcome, bad spec
 ├── NotFoundError       -> 404     unknown experiment or decision
 └── ConflictError       -> 409     experiment not running, duplicate key, bad state change
"""

from __future__ import annotations


class EngineError(ValueError):
    """Base of the engine's errors; ``field`` names the input at fault ('' when none)."""

    status_code = 400

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class InvalidInputError(EngineError):
    status_code = 422


class NotFoundError(EngineError):
    status_code = 404


class ConflictError(EngineError):
    status_code = 409
