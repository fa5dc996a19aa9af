"""Bearer API keys with scopes: ``decide`` (decisions, outcomes), ``read`` (reports),
``admin`` (experiments and keys; implies the other two).

Missing, malformed, unknown or revoked key: 401. Known key without the scope: 403. Keys are
looked up by their public prefix and checked against a salted hash in constant time by the
store; the key itself is never logged.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request
from sqlmodel import Session

from experiments.store import queries

SCOPES = ("admin", "decide", "read")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status_code=401,
        detail={"field": "authorization", "message": message},
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_scope(scope: str) -> Callable[[Request], None]:
    """A dependency that admits requests whose bearer key grants ``scope``."""

    def check(request: Request) -> None:
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token:
            raise _unauthorized("missing bearer API key")
        with Session(request.app.state.engine.engine) as session:
            key = queries.verify_api_key(session, key=token)
        if key is None:
            raise _unauthorized("invalid or revoked API key")
        granted = set(key.scopes.split(","))
        if scope not in granted and "admin" not in granted:
            raise HTTPException(
                status_code=403,
                detail={"field": "authorization", "message": f"API key lacks the '{scope}' scope"},
            )
        request.state.api_key_id = key.id

    return check
