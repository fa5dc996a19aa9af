"""Bearer API keys with scopes: ``decide`` (decisions, outcomes), ``read`` (reports),
``admin`` (experiments and keys; implies the other two).

Missing, malformed, unknown or revoked key: 401. Known key without the scope: 403. A key over
its rate limit (when one is configured): 429 with Retry-After. The scheme is case-insensitive
and the spaces between it and the token are any run (RFC 7235); the token is taken without
surrounding whitespace, and whitespace inside it is never part of a key. Keys are
looked up by their public prefix and checked against a salted hash in constant time by the
store; the key itself is never logged.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from experiments.service.ratelimit import retry_after_header
from experiments.store.api_keys import verify_api_key

SCOPES = ("admin", "decide", "read")


class VerifiedKeyCache:
    """Keys verified in the last ``ttl`` seconds, by a SHA-256 of the token.

    The salted key-derivation check costs about a third of a decision; callers repeat the
    same key many times a second. A revoked key therefore keeps working for at most ``ttl``
    seconds in each process. Only digests are held, never tokens.
    """

    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[float, int, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> tuple[int, frozenset[str]] | None:
        digest = self._digest(token)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None or entry[0] < time.monotonic():
                self._entries.pop(digest, None)
                return None
            return entry[1], entry[2]

    def put(self, token: str, key_id: int, scopes: frozenset[str]) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[self._digest(token)] = (time.monotonic() + self.ttl, key_id, scopes)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status_code=401,
        detail={"field": "authorization", "message": message},
        headers={"WWW-Authenticate": "Bearer"},
    )


def _verify(request: Request, token: str) -> tuple[int, frozenset[str]] | None:
    """The key's id and scopes from the store (the salted hash check), or None."""
    with request.app.state.engine.database.session() as session:
        key = verify_api_key(session, key=token)
    if key is None or key.id is None:
        return None
    return key.id, frozenset(key.scopes.split(","))


def require_scope(scope: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that admits requests whose bearer key grants ``scope``.

    Asynchronous on purpose: FastAPI runs a synchronous dependency in its thread pool, a hop
    that costs more than the check itself when the key is cached, as it nearly always is. Only
    a key missing from the cache goes to the store, in the thread pool.
    """

    async def check(request: Request) -> None:
        header = request.headers.get("authorization", "")
        kind, _, token = header.strip().partition(" ")
        token = token.strip()
        if kind.lower() != "bearer" or not token:
            raise _unauthorized("missing bearer API key")
        cache: VerifiedKeyCache = request.app.state.key_cache
        cached = cache.get(token)
        if cached is None:
            cached = await run_in_threadpool(_verify, request, token)
            if cached is None:
                raise _unauthorized("invalid or revoked API key")
            cache.put(token, *cached)
        key_id, granted = cached
        if scope not in granted and "admin" not in granted:
            raise HTTPException(
                status_code=403,
                detail={"field": "authorization", "message": f"API key lacks the '{scope}' scope"},
            )
        wait = request.app.state.rate_limiter.acquire(key_id)
        if wait > 0:
            raise HTTPException(
                status_code=429,
                detail={"field": "authorization", "message": "rate limit exceeded for this key"},
                headers={"Retry-After": retry_after_header(wait)},
            )
        request.state.api_key_id = key_id

    return check
