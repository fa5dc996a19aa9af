"""Authentication against a real server: who gets in, how keys are kept, what is logged.

Policy tested here:

- no key, a malformed or unknown key, a revoked key, a non-Bearer scheme: 401 with
  ``WWW-Authenticate: Bearer``; a valid key without the operation's scope: 403;
- the scheme is case-insensitive and the whitespace around the token is ignored, as
  RFC 7235 allows (``Bearer`` 1*SP token); whitespace inside a token makes it another,
  unknown key: keys are letters and digits only, so no padded spelling is a second key;
- keys are stored as salted PBKDF2 hashes, compared with ``hmac.compare_digest``; an unknown
  prefix costs the same hash as a known one;
- neither a key nor a context value ever reaches the server's log, whatever fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import inspect
import json
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from e2e_support import Server, engage
from psycopg import sql
from sqlalchemy import inspect as sql_inspect
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from experiments.service import auth
from experiments.service.errors import JsonServerErrors
from experiments.store import key_hashing
from experiments.store.api_keys import revoke_api_key, verify_api_key
from experiments.store.connection import make_engine
from experiments.store.key_hashing import (
    API_KEY_PREFIX,
    KEY_PREFIX_LENGTH,
    hash_api_key,
    hash_matches,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def quick_spec() -> dict:
    return tomllib.loads((EXAMPLES / "quickstart.toml").read_text())


CONTEXT = {"tenure_months": 3, "plan": "prepaid"}


@dataclass(frozen=True)
class RawResponse:
    status_code: int
    headers: dict[str, str]
    body: dict


def raw_post(server: Server, path: str, body: dict, authorization: str | None) -> RawResponse:
    """POST with the Authorization header exactly as given: httpx refuses values with
    surrounding whitespace, which is what some of these tests send."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        headers = {"content-type": "application/json"}
        if authorization is not None:
            headers["authorization"] = authorization
        connection.request("POST", path, body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        return RawResponse(
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            json.loads(response.read()),
        )
    finally:
        connection.close()


def unauthorized(response: RawResponse) -> bool:
    return (
        response.status_code == 401
        and response.headers["content-type"] == "application/json"
        and response.headers.get("www-authenticate") == "Bearer"
        and response.body["error"]["field"] == "authorization"
    )


def test_missing_wrong_revoked_and_unscoped_keys(logged_server: Server) -> None:
    """``logged_server`` runs with the key cache off, so a revocation applies at once."""
    url = logged_server.base_url
    keys = logged_server.keys
    with logged_server.client("admin") as admin:
        assert admin.post("/v1/experiments", json=quick_spec()).status_code == 201
    decide_path = "/v1/experiments/quickstart/decisions"
    body = {"customer_id": "c1", "context": CONTEXT}

    def post(authorization: str | None) -> RawResponse:
        return raw_post(logged_server, decide_path, body, authorization)

    assert post(f"Bearer {keys['decide']}").status_code == 200
    unknown = "egk_" + "A" * 40  # well formed, never issued
    for authorization in [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Bearer {unknown}",
        "Bearer egk_short",
        f"Bearer {keys['decide'][:-1]}",
        f"Bearer {keys['decide']}x",
        f"Basic {keys['decide']}",
        f"Token {keys['decide']}",
        keys["decide"],  # no scheme at all
        f"Bearer {keys['decide'][:10]} {keys['decide'][10:]}",  # split by a space
    ]:
        assert unauthorized(post(authorization)), authorization

    # Scheme in any case, any run of spaces before the token: the same key (RFC 7235).
    for authorization in [
        f"bearer {keys['decide']}",
        f"BEARER {keys['decide']}",
        f"Bearer   {keys['decide']}",
        f"Bearer {keys['decide']}   ",
        f"  Bearer {keys['decide']}",
        f"Bearer \t{keys['decide']}",
    ]:
        assert post(authorization).status_code == 200, authorization

    # Scopes: read cannot decide, decide cannot read reports or administer; admin can all.
    read, decide = keys["read"], keys["decide"]
    assert post(f"Bearer {read}").status_code == 403
    forbidden = [
        httpx.get(f"{url}/v1/experiments/quickstart/report", headers=_bearer(decide)),
        httpx.post(f"{url}/v1/experiments", json=quick_spec(), headers=_bearer(decide)),
        httpx.post(f"{url}/v1/experiments/quickstart/pause", headers=_bearer(read)),
        httpx.post(f"{url}/v1/outcomes", json={"outcomes": []}, headers=_bearer(read)),
    ]
    for response in forbidden:
        assert response.status_code == 403, response.text
        assert response.json()["error"] == {
            "field": "authorization",
            "message": response.json()["error"]["message"],
        }
    assert httpx.get(f"{url}/v1/experiments/quickstart/report", headers=_bearer(read)).is_success

    # Revocation (the store's revoke_api_key; the CLI has no `keys revoke` yet).
    engine = make_engine(logged_server.database_url)
    try:
        with Session(engine) as session:
            prefix = decide[len(API_KEY_PREFIX) :][:KEY_PREFIX_LENGTH]
            assert revoke_api_key(session, prefix=prefix)
            session.commit()
    finally:
        engine.dispose()
    assert unauthorized(post(f"Bearer {decide}"))
    assert unauthorized(post(f"bearer   {decide}"))
    assert post(f"Bearer {keys['admin']}").status_code == 200  # others unaffected


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_keys_are_salted_hashes_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, server: Server
) -> None:
    """No plaintext key anywhere in the database; salts differ; the check uses
    ``hmac.compare_digest``, and unknown prefixes cost one hash like known ones."""
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as connection:
            dump = []
            for table in sql_inspect(connection).get_table_names():
                rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()  # noqa: S608 - names from the schema
                dump.append(json.dumps([list(map(str, row)) for row in rows]))
            everything = "\n".join(dump)
            stored = connection.execute(text("SELECT prefix, salt, key_hash FROM api_key")).all()
        for key in server.keys.values():
            secret = key[len(API_KEY_PREFIX) + KEY_PREFIX_LENGTH :]
            assert key not in everything
            assert secret not in everything
            assert hashlib.sha256(key.encode()).hexdigest() not in everything  # not bare SHA
        assert len(stored) == 3
        assert len({salt for _, salt, _ in stored}) == 3, "every key has its own salt"
        assert len({digest for _, _, digest in stored}) == 3
        by_prefix = {prefix: (salt, digest) for prefix, salt, digest in stored}
        for key in server.keys.values():
            salt, digest = by_prefix[key[4:12]]
            scheme, rounds, hexdigest = digest.split("$")
            assert scheme == "pbkdf2_sha256"
            expected = hashlib.pbkdf2_hmac("sha256", key.encode(), bytes.fromhex(salt), int(rounds))
            assert hexdigest == expected.hex()

        # Constant time: every comparison of a known prefix goes through hmac.compare_digest.
        compared: list[tuple[str, str]] = []
        real_compare = hmac.compare_digest

        def spy(left: str, right: str) -> bool:
            compared.append((left, right))
            return real_compare(left, right)

        monkeypatch.setattr(hmac, "compare_digest", spy)
        hashed: list[str] = []
        real_hash = hash_api_key

        def counting_hash(key: str, **kwargs: object) -> str:
            hashed.append(key)
            return real_hash(key, **kwargs)  # type: ignore[arg-type]

        # Every check hashes through key_hashing.hash_api_key: count the calls there.
        monkeypatch.setattr(key_hashing, "hash_api_key", counting_hash)
        admin = server.keys["admin"]
        near_miss = admin[:-1] + ("a" if admin[-1] != "a" else "b")
        with Session(engine) as session:
            assert verify_api_key(session, key=admin) is not None
            assert verify_api_key(session, key=near_miss) is None
            assert len(compared) == 2
            assert len(hashed) == 2
            assert verify_api_key(session, key="egk_" + "Z" * 40) is None
            assert len(hashed) == 3, "an unknown prefix must cost a hash too"
    finally:
        engine.dispose()
    assert "compare_digest" in inspect.getsource(hash_matches)
    # The service keeps only digests of verified tokens in its cache, never tokens.
    cache = auth.VerifiedKeyCache(ttl=60)
    cache.put(admin, 1, frozenset({"admin"}))
    assert admin not in repr(cache._entries)
    assert cache.get(admin) == (1, frozenset({"admin"}))
    assert cache.get(admin + " ") is None


CANARY_LEVEL = "ctx-canary-level-7f3a91"
CANARY_NUMBER = 98765.4321
CANARY_CUSTOMER = "customer-canary-55e2c0"
CANARY_BAD_VALUE = "ctx-canary-invalid-0b61d4"


def test_keys_and_context_never_reach_the_log(
    logged_server: Server, request: pytest.FixtureRequest
) -> None:
    """Requests that succeed and fail (bad keys, 422s, 503s) with distinctive keys and context
    values; the server's whole stderr (uvicorn and engage logs) must contain none of them.
    (``engage serve`` has no log-level option: it logs at warning level, access log off.)"""
    url = logged_server.base_url
    spec = quick_spec()
    spec["context"]["plan"]["levels"].append(CANARY_LEVEL)
    with logged_server.client("admin") as admin:
        assert admin.post("/v1/experiments", json=spec).status_code == 201
    made_key = engage(
        "keys", "create", "--scope", "decide", "--json", "--database-url",
        logged_server.database_url,
    )  # fmt: skip
    canary_key = json.loads(made_key.stdout)["key"]
    secrets = [*logged_server.keys.values(), canary_key, CANARY_LEVEL, CANARY_CUSTOMER]
    secrets += [str(CANARY_NUMBER), CANARY_BAD_VALUE]
    decide_path = f"{url}/v1/experiments/quickstart/decisions"
    good = {
        "customer_id": CANARY_CUSTOMER,
        "context": {"tenure_months": CANARY_NUMBER, "plan": CANARY_LEVEL},
    }
    with httpx.Client(headers=_bearer(canary_key), timeout=30) as client:
        decision = client.post(decide_path, json=good)
        assert decision.status_code == 200, decision.text
        bad_context = {**good, "context": {**good["context"], "plan": CANARY_BAD_VALUE}}
        assert client.post(decide_path, json=bad_context).status_code == 422
        unknown_field = {**good, "context": {**good["context"], CANARY_BAD_VALUE: 1}}
        assert client.post(decide_path, json=unknown_field).status_code == 422
        negative = {**good, "context": {**good["context"], "tenure_months": -CANARY_NUMBER}}
        assert client.post(decide_path, json=negative).status_code == 422
        outcome = {
            "outcome_id": CANARY_BAD_VALUE,
            "decision_id": decision.json()["decision_id"],
            "event": "click",
            "value": CANARY_NUMBER,
            "occurred_at": "9999-01-01T00:00:00Z",
        }
        assert client.post(f"{url}/v1/outcomes", json={"outcomes": [outcome]}).status_code == 422
        broken = b"{" + CANARY_LEVEL.encode()
        json_type = {"content-type": "application/json"}
        assert client.post(decide_path, content=broken, headers=json_type).status_code == 400
    near_miss = canary_key[:-1] + ("0" if canary_key[-1] != "0" else "1")
    for wrong in [near_miss, "egk_" + CANARY_LEVEL, CANARY_LEVEL]:
        assert httpx.post(decide_path, json=good, headers=_bearer(wrong)).status_code == 401
    assert (
        httpx.post(decide_path, json=good, headers=_bearer(logged_server.keys["read"])).status_code
        == 403
    )

    admin_url = None
    if logged_server.database_url.startswith("postgresql"):
        admin_url = request.getfixturevalue("postgres_admin_url")
    with _database_down(logged_server, admin_url):
        down = httpx.post(decide_path, json=good, headers=_bearer(canary_key), timeout=30)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["field"] == "database"
    logged_server.stop()
    log = logged_server.log  # type: ignore[attr-defined] - a LoggedServer (conftest)
    assert "database unavailable" in log  # the log was captured
    leaked = [secret for secret in secrets if secret in log]
    assert not leaked, f"{leaked} found in the server log:\n{log}"


class _database_down:  # noqa: N801 - used as a context manager, reads as a phrase
    """Make the server's database refuse work until exit.

    SQLite: a write lock held for longer than the busy timeout (5 s), so a decision's
    insert fails with "database is locked". PostgreSQL: new connections refused and the
    server's connections terminated.
    """

    def __init__(self, server: Server, admin_url: str | None) -> None:
        self.url = make_url(server.database_url)
        self.admin_url = admin_url or ""
        self.holder: object | None = None

    def __enter__(self) -> None:
        if self.url.get_backend_name() == "sqlite":
            import sqlite3

            holder = sqlite3.connect(self.url.database or "", isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            self.holder = holder
            return
        name = self.url.database
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
            )
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )

    def __exit__(self, *exc: object) -> None:
        if self.holder is not None:
            self.holder.rollback()  # type: ignore[attr-defined]
            self.holder.close()  # type: ignore[attr-defined]
            return
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                    sql.Identifier(self.url.database)
                )
            )


def test_an_unexpected_error_is_a_json_500_logged_without_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug's exception (a database error's message carries the statement's parameters)
    is answered as a JSON 500 and logged by type and frames only."""

    async def failing(scope: dict, receive: object, send: object) -> None:
        raise ValueError(f"[parameters: {{'customer_id': '{CANARY_CUSTOMER}'}}]")

    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/outcomes", "headers": []}
    with caplog.at_level(logging.ERROR, logger="engage.service"):
        asyncio.run(JsonServerErrors(failing)(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 500
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["field"] == ""
    assert "unhandled ValueError in POST /v1/outcomes" in caplog.text
    assert CANARY_CUSTOMER not in caplog.text
