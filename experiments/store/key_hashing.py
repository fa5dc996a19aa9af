"""API key text and its salted PBKDF2 hashes: drawing a key, hashing it, checking one.

No database here (the ``api_key`` table's queries are :mod:`experiments.store.api_keys`). A key
reads ``egk_<prefix><secret>``: :data:`API_KEY_PREFIX`, then :data:`KEY_PREFIX_LENGTH`
characters stored in clear to find the row, then :data:`KEY_SECRET_LENGTH` secret ones. Only
``pbkdf2_sha256$<iterations>$<hex digest>`` of the whole key with a per-key salt is stored, and
digests are compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

__all__ = [
    "API_KEY_PREFIX",
    "KEY_PREFIX_LENGTH",
    "KEY_SECRET_LENGTH",
    "PBKDF2_ITERATIONS",
    "hash_api_key",
    "hash_matches",
    "lookup_prefix",
    "new_key",
    "new_salt",
    "spend_a_hash",
]

API_KEY_PREFIX = "egk_"
"""Every API key starts with this, then :data:`KEY_PREFIX_LENGTH` lookup characters."""
KEY_PREFIX_LENGTH = 8
KEY_SECRET_LENGTH = 32
_KEY_ALPHABET = string.ascii_letters + string.digits
# The keys are 40 random alphanumerics (~238 bits), not passwords, so a slow KDF buys nothing
# against guessing; a modest PBKDF2 count keeps each authenticated request cheap.
PBKDF2_ITERATIONS = 2_000
_HASH_SCHEME = "pbkdf2_sha256"
_DUMMY_SALT = "00" * 16


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(length))


def new_key() -> tuple[str, str]:
    """A freshly drawn key: its lookup prefix and the whole plaintext ``egk_<prefix><secret>``."""
    prefix = _random_text(KEY_PREFIX_LENGTH)
    return prefix, API_KEY_PREFIX + prefix + _random_text(KEY_SECRET_LENGTH)


def new_salt() -> str:
    """A fresh salt: 16 random bytes as hex."""
    return secrets.token_hex(16)


def lookup_prefix(key: str) -> str | None:
    """The lookup prefix of a well-formed plaintext ``key``, ``None`` if it cannot be a key."""
    body = key[len(API_KEY_PREFIX) :] if key.startswith(API_KEY_PREFIX) else ""
    if len(body) != KEY_PREFIX_LENGTH + KEY_SECRET_LENGTH:
        return None
    return body[:KEY_PREFIX_LENGTH]


def hash_api_key(key: str, *, salt: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<hex digest>`` of the whole plaintext key with ``salt``."""
    digest = hashlib.pbkdf2_hmac("sha256", key.encode(), bytes.fromhex(salt), iterations)
    return f"{_HASH_SCHEME}${iterations}${digest.hex()}"


def hash_matches(key: str, *, salt: str, stored: str) -> bool:
    """Whether plaintext ``key`` hashed with ``salt`` gives ``stored`` (in constant time)."""
    try:
        scheme, iterations, _ = stored.split("$")
        rounds = int(iterations)
    except ValueError:
        return False
    if scheme != _HASH_SCHEME:
        return False
    return hmac.compare_digest(hash_api_key(key, salt=salt, iterations=rounds), stored)


def spend_a_hash(key: str) -> None:
    """Do the work of one check for a key whose prefix matched no row, so that timing does not
    reveal which prefixes exist."""
    hash_api_key(key, salt=_DUMMY_SALT)
