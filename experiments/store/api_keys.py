"""Queries on the ``api_key`` table: create, verify, revoke and list the service's API keys.

A key's plaintext is shown once, when it is created; the table keeps only its lookup prefix, its
salt and its salted hash (:mod:`experiments.store.key_hashing`). Plain functions taking a
``Session`` and keyword-only arguments; none commits (the caller owns the transaction).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from experiments.store._sql import attach, check_choice, insert_ignoring_conflicts, now_or, row_of
from experiments.store.errors import StoreError
from experiments.store.key_hashing import (
    hash_api_key,
    hash_matches,
    lookup_prefix,
    new_key,
    new_salt,
    spend_a_hash,
)
from experiments.store.models import ApiKey
from experiments.vocabulary import Scope

__all__ = [
    "create_api_key",
    "list_api_keys",
    "normalize_scopes",
    "revoke_api_key",
    "verify_api_key",
]


def normalize_scopes(scopes: Iterable[str] | str) -> str:
    """Validate scopes (``admin``, ``decide``, ``read``) and join them, sorted, with commas."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    cleaned = {str(s).strip() for s in items if str(s).strip()}
    if not cleaned:
        raise ValueError("The 'scopes' must name at least one of admin|decide|read. Got none.")
    for scope in cleaned:
        check_choice(scope, Scope, "scopes")
    return ",".join(sorted(cleaned))


def create_api_key(
    session: Session,
    *,
    scopes: Iterable[str] | str,
    name: str = "",
    now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the stored row and the plaintext ``egk_<prefix><secret>``, which is
    shown once and never stored (only its salted hash is)."""
    joined = normalize_scopes(scopes)
    for _attempt in range(5):
        prefix, plaintext = new_key()
        salt = new_salt()
        key = ApiKey(
            prefix=prefix,
            key_hash=hash_api_key(plaintext, salt=salt),
            salt=salt,
            scopes=joined,
            name=name,
            created_at=now_or(now),
        )
        inserted = insert_ignoring_conflicts(
            session, ApiKey, [row_of(key, exclude=("id",))], conflict=["prefix"], returning="id"
        )
        if inserted:
            key.id = inserted[0]
            return attach(session, key), plaintext
    raise StoreError("could not draw an unused API key prefix")  # pragma: no cover


def verify_api_key(session: Session, *, key: str) -> ApiKey | None:
    """The active (not revoked) key row matching plaintext ``key``, else ``None``."""
    prefix = lookup_prefix(key)
    if prefix is None:
        return None
    row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if row is None:
        spend_a_hash(key)
        return None
    if not hash_matches(key, salt=row.salt, stored=row.key_hash) or row.revoked_at is not None:
        return None
    return row


def revoke_api_key(
    session: Session,
    *,
    key_id: int | None = None,
    prefix: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Revoke the key with ``key_id`` or ``prefix``; ``False`` if none or already revoked."""
    if (key_id is None) == (prefix is None):
        raise ValueError("revoke_api_key needs exactly one of 'key_id' and 'prefix'")
    condition = col(ApiKey.id) == key_id if key_id is not None else col(ApiKey.prefix) == prefix
    stmt = (
        update(ApiKey)
        .where(condition, col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=now_or(now))
        .execution_options(synchronize_session="fetch")
    )
    return session.exec(stmt).rowcount == 1


def list_api_keys(session: Session, *, include_revoked: bool = False) -> list[ApiKey]:
    """API keys by id (hashes only, of course)."""
    stmt = select(ApiKey).order_by(col(ApiKey.id))
    if not include_revoked:
        stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
    return list(session.exec(stmt))
