"""Hostile and malformed input against a real server, on SQLite and PostgreSQL.

Whatever arrives, the answer is JSON naming the problem (``error.field``), never a 5xx, the
server stays healthy, and nothing invalid is stored. Policy tested here:

- unparseable body (bad JSON, not UTF-8, nested too deeply): 400, field ``body``; a body
  not sent as ``application/json``: 415, field ``content-type``; larger than the limit: 413;
- numbers must be finite (``NaN``, ``Infinity``, ``1e309`` are refused where they appear),
  and outcome values within +-1e12;
- ``occurred_at`` must be timezone-aware, after 1970-01-01 and at most 366 days after the
  server's clock; it is stored as the same instant in UTC;
- unknown fields are refused by name, at every level;
- text is stored and returned verbatim, markup and SQL included, except what a database
  cannot hold as text: NUL and lone surrogates are refused by name on both dialects.
"""

from __future__ import annotations

import json
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from e2e_support import Server, engage
from sqlalchemy import inspect as sql_inspect
from sqlalchemy import text

from experiments.store.connection import make_engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
JSON_TYPE = {"content-type": "application/json"}
CONTEXT = {"tenure_months": 3, "plan": "prepaid"}

HOSTILE = [
    "'; DROP TABLE decision; --",
    "Robert'); DROP TABLE outcome; --",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "%s %(x)s {0} ${x} {{x}}",
    "back\\slash \\u0000 \\x00 (escaped, not a NUL)",
    "emoji 😀 👩‍👩‍👧 family",
    "\u202eRTL override\u202c and \u200fRLM mark",
    "tab\tnew\nline\rcarriage",
    "中文 العربية עברית",
]


def quick_spec(**changes: object) -> dict:
    spec = tomllib.loads((EXAMPLES / "quickstart.toml").read_text())
    spec.update(changes)
    return spec


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    """The JSON error of ``response``, after checking its status and content type."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json", response.headers
    error = response.json()["error"]
    assert set(error) == {"field", "message"}
    assert error["message"]
    return error


def first_decision(admin: httpx.Client, key: str) -> dict:
    """Create experiment ``key`` (the quickstart spec) and decide once for customer ``c``."""
    assert admin.post("/v1/experiments", json=quick_spec(key=key)).status_code == 201
    answer = admin.post(
        f"/v1/experiments/{key}/decisions", json={"customer_id": "c", "context": CONTEXT}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def click_for(decision: dict) -> dict:
    """A valid click outcome for ``decision``, occurring now."""
    return {
        "outcome_id": "o1",
        "decision_id": decision["decision_id"],
        "event": "click",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def export_parquet(server: Server, key: str, tmp_path: Path) -> Path:
    """``engage export KEY --format parquet`` into a folder under ``tmp_path``; the folder."""
    out = tmp_path / "export"
    engage(
        "export",
        key,
        "--out",
        str(out),
        "--format",
        "parquet",
        "--database-url",
        server.database_url,
    )
    return out


def counts(server: Server, key: str) -> tuple[int, int]:
    """(decisions, outcomes) stored for experiment ``key``, read through the API."""
    with server.client("read") as reader:
        report = reader.get(f"/v1/experiments/{key}/report").json()
    return report["decisions"]["total"], report["outcomes"]["total"]


@pytest.fixture
def server(module_server: Server) -> Server:
    """One server per dialect for this module: each test keeps to its own experiment."""
    return module_server


def assert_healthy(server: Server) -> None:
    health = httpx.get(f"{server.base_url}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["database"] == "ok"


def test_malformed_bodies_get_json_4xx_and_the_server_stays_up(server: Server) -> None:
    decide = "/v1/experiments/malformed/decisions"
    with server.client("admin") as admin:
        assert admin.post("/v1/experiments", json=quick_spec(key="malformed")).status_code == 201

        def send(body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
            return admin.post(
                decide,
                content=body,
                headers=JSON_TYPE if headers is None else headers,
            )

        depth = 10_000
        nested_value = b'{"customer_id": "c", "context": {"plan": ' + b"[" * depth
        nested_value += b"]" * depth + b"}}"
        nested_objects = b'{"customer_id": "c", "context": ' + b'{"a": ' * depth + b"1"
        nested_objects += b"}" * depth + b"}"
        for body in (nested_value, nested_objects):
            error = error_of(send(body), 400)
            assert error["field"] == "body"
            assert "nested too deeply" in error["message"]
        # Nested below the parser's limit: parsed, then refused by the context schema.
        shallow = {
            "customer_id": "c",
            "context": {**CONTEXT, "plan": json.loads("[" * 500 + "]" * 500)},
        }
        assert error_of(admin.post(decide, json=shallow), 422)["field"] == "context.plan"

        # Large but under the limit (1 MiB): 40,000 unknown context fields, refused by name.
        wide = {"customer_id": "c", "context": {**CONTEXT, **{f"k{i}": i for i in range(40_000)}}}
        encoded = json.dumps(wide).encode()
        assert 500_000 < len(encoded) < 1_048_576
        assert error_of(send(encoded), 422)["field"] == "context.k0"
        # Over the limit, as valid JSON (the e2e suite sends whitespace): 413, streamed too.
        huge = json.dumps({"customer_id": "c", "context": {"plan": "x" * 1_100_000}}).encode()
        assert error_of(send(huge), 413)["field"] == "body"
        chunks = (huge[i : i + 65536] for i in range(0, len(huge), 65536))
        assert error_of(send(chunks), 413)["field"] == "body"  # type: ignore[arg-type]

        error = error_of(send(b'{"customer_id": "\xff\xfe caf\xe9"}'), 400)
        assert error["field"] == "body"
        assert "UTF-8" in error["message"]
        for broken in (b"{", b'{"customer_id": }', b"{'customer_id': 'c'}", b"\x00", b"nul"):
            error = error_of(send(broken), 400)
            assert error["field"] == "body"
            assert "not valid JSON" in error["message"]
        too_long = b'{"customer_id": "c", "context": {"tenure_months": 1' + b"0" * 5000 + b"}}"
        assert error_of(send(too_long), 400)["field"] == "body"

        good = json.dumps({"customer_id": "c", "context": CONTEXT}).encode()
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/html"):
            error = error_of(send(good, {"content-type": content_type}), 415)
            assert error["field"] == "content-type"
            assert content_type in error["message"]
        error = error_of(admin.post(decide, data={"customer_id": "c"}), 415)
        assert error["field"] == "content-type"
        error = error_of(send(good, {}), 415)  # httpx sends no content type for raw bytes
        assert "missing" in error["message"]
        assert error_of(send(b""), 422)["field"] == "body"
        assert error_of(send(b"[1, 2]"), 422)["field"] == "body"
        assert error_of(send(b'"just a string"'), 422)["field"] == "body"
        # application/*+json is JSON too.
        assert send(good, {"content-type": "application/vnd.api+json"}).status_code == 200

    assert_healthy(server)
    assert counts(server, "malformed") == (1, 0)  # only the one valid decision


def test_non_finite_and_huge_numbers_are_refused_and_never_stored(server: Server) -> None:
    with server.client("admin") as admin:
        decision = first_decision(admin, "numbers")
        item = click_for(decision)
        # NaN and infinities as Python's json writes them; 1e309 overflows to inf when parsed.
        numbers = [float("nan"), float("inf"), float("-inf"), "1e309", "-1e309"]
        for number in numbers:
            context = {**CONTEXT, "tenure_months": number}
            requests = [
                (
                    "POST",
                    "/v1/experiments/numbers/decisions",
                    {"customer_id": "c", "context": context},
                ),
                ("POST", "/v1/outcomes", {"outcomes": [{**item, "value": number}]}),
                ("PATCH", "/v1/experiments/numbers", {"exploration_floor": number}),
            ]
            fields = ["context.tenure_months", "outcomes.0.value", "exploration_floor"]
            for (method, path, body), field in zip(requests, fields, strict=True):
                raw = json.dumps(body)  # allow_nan: NaN, Infinity, -Infinity tokens
                if isinstance(number, str):
                    raw = raw.replace(f'"{number}"', number)
                response = admin.request(method, path, content=raw, headers=JSON_TYPE)
                error = error_of(response, 422)
                assert error["field"] == field, (raw, error)
                assert "finite" in error["message"], error
        # Finite but absurd outcome values would overflow the report's sums of squares.
        for value in (1e13, -1e300, 1.7e308):
            item = {**item, "outcome_id": f"big-{value}", "value": value}
            error = error_of(admin.post("/v1/outcomes", json={"outcomes": [item]}), 422)
            assert error["field"] == "outcomes.0.value"
        item["value"], item["outcome_id"] = 1e12, "largest"
        assert admin.post("/v1/outcomes", json={"outcomes": [item]}).status_code == 202
        assert admin.get("/v1/experiments/numbers").json()["exploration_floor"] == 0.01

    assert counts(server, "numbers") == (1, 1)  # the report still renders: its sums stayed finite
    assert_healthy(server)


def test_timestamps_far_from_now_are_refused_by_name(server: Server, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with server.client("admin") as admin:
        decision = first_decision(admin, "timestamps")

        def outcome(outcome_id: str, occurred_at: str) -> httpx.Response:
            item = {
                "outcome_id": outcome_id,
                "decision_id": decision["decision_id"],
                "event": "click",
                "occurred_at": occurred_at,
            }
            return admin.post("/v1/outcomes", json={"outcomes": [item]})

        refused = [
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-23:59",  # not even representable in UTC
            "0001-01-01T00:00:00+01:00",  # nor this one
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "1900-01-01T00:00:00Z",
            (now + timedelta(days=400)).isoformat(),
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00",  # no timezone
            "2026-01-01",
            "yesterday",
            "",
            "1700000000000",  # milliseconds since the epoch
        ]
        for number, when in enumerate(refused):
            error = error_of(outcome(f"bad-{number}", when), 422)
            assert error["field"] == "outcomes.0.occurred_at", (when, error)
        for value in (None, 1.5, [], {}):
            item = {"outcome_id": "x", "decision_id": decision["decision_id"], "event": "click"}
            response = admin.post(
                "/v1/outcomes", json={"outcomes": [{**item, "occurred_at": value}]}
            )
            assert error_of(response, 422)["field"] == "outcomes.0.occurred_at"

        accepted = {
            "epoch": ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
            "offset": (
                "2026-03-01T05:30:00+05:30",
                datetime(2026, 3, 1, tzinfo=UTC),
            ),
            "soon": (
                (now + timedelta(days=30)).isoformat(),
                now + timedelta(days=30),
            ),
            "micro": (
                "2026-01-01T00:00:00.123456-08:00",
                datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=UTC),
            ),
        }
        for name, (when, _) in accepted.items():
            assert outcome(name, when).status_code == 202, when

    assert counts(server, "timestamps") == (1, len(accepted))
    out = export_parquet(server, "timestamps", tmp_path)
    rows = pq.read_table(out / "outcomes.parquet").to_pylist()
    stored = {row["outcome_id"]: row["occurred_at"] for row in rows}
    for name, (_, instant) in accepted.items():
        assert _as_utc(stored[name]) == instant, (name, stored[name])
    assert_healthy(server)


def _as_utc(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def test_unknown_fields_are_refused_by_name(server: Server) -> None:
    with server.client("admin") as admin:
        error = error_of(admin.post("/v1/experiments", json=quick_spec(surprise=1)), 422)
        assert error["field"] == "surprise"
        nested = quick_spec()
        nested["reward"]["surprise"] = 1
        assert (
            error_of(admin.post("/v1/experiments", json=nested), 422)["field"] == "reward.surprise"
        )
        decision = first_decision(admin, "unknown")
        item = click_for(decision)
        cases = [
            (
                "/v1/experiments/unknown/decisions",
                {"customer_id": "c", "context": CONTEXT, "extra": 1},
                "extra",
            ),
            (
                "/v1/experiments/unknown/decisions",
                {"customer_id": "c", "context": {**CONTEXT, "age": 1}},
                "context.age",
            ),
            ("/v1/outcomes", {"outcomes": [{**item, "revenue": 3}]}, "outcomes.0.revenue"),
            ("/v1/outcomes", {"outcomes": [item], "batch": "b1"}, "batch"),
        ]
        for path, body, field in cases:
            assert error_of(admin.post(path, json=body), 422)["field"] == field
        patch = admin.patch("/v1/experiments/unknown", json={"exploration_floor": 0.1, "x": 1})
        assert error_of(patch, 422)["field"] == "x"
        # Misspelt known fields are unknown fields too: never silently defaulted.
        typo = {"customer_id": "c", "context": CONTEXT, "request_ID": "r1"}
        assert (
            error_of(admin.post("/v1/experiments/unknown/decisions", json=typo), 422)["field"]
            == "request_ID"
        )
    assert counts(server, "unknown") == (1, 0)


def test_hostile_text_is_stored_and_returned_verbatim(server: Server, tmp_path: Path) -> None:
    """SQL, markup, format strings, emoji, RTL marks: stored as sent, read back equal (API,
    export, database), tables intact, every answer JSON. NUL and lone surrogates: 422."""
    levels = HOSTILE
    spec = quick_spec(key="hostile", description=" | ".join(HOSTILE))
    # Levels join action names with '|' and '=' and may not be padded: the others, as levels.
    usable = [text for text in HOSTILE if not {"|", "="} & set(text) and text.strip() == text]
    spec["factors"] = {"offer": ["none", *usable[:4]], "channel": ["sms", usable[4]]}
    spec.pop("rules")
    spec["context"]["plan"]["levels"] = levels
    spec["reward"]["event"] = HOSTILE[0]
    decide = "/v1/experiments/hostile/decisions"
    with server.client("admin") as admin:
        created = admin.post("/v1/experiments", json=spec)
        assert created.status_code == 201, created.text
        shown = admin.get("/v1/experiments/hostile").json()
        assert shown["description"] == spec["description"]
        assert shown["spec"]["factors"] == spec["factors"]
        assert shown["spec"]["context"]["plan"]["levels"] == levels
        assert shown["spec"]["reward"]["event"] == HOSTILE[0]

        made = {}
        for number, hostile in enumerate(HOSTILE):
            body = {
                "customer_id": hostile,
                "request_id": f"{hostile}#{number}",
                "context": {"tenure_months": number, "plan": levels[number]},
            }
            response = admin.post(decide, json=body)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/json"
            answer = response.json()
            assert answer["action"]["offer"] in spec["factors"]["offer"]
            assert answer["action"]["channel"] in spec["factors"]["channel"]
            again = admin.post(decide, json=body)  # the request id matched verbatim
            assert again.json() == answer
            made[hostile] = answer["decision_id"]
        items = [
            {
                "outcome_id": f"{hostile}/outcome",
                "decision_id": made[hostile],
                "event": hostile,
                "value": 1.5,
                "occurred_at": datetime.now(UTC).isoformat(),
            }
            for hostile in HOSTILE
        ]
        assert admin.post("/v1/outcomes", json={"outcomes": items}).json() == {
            "accepted": len(HOSTILE),
            "duplicates": 0,
        }
        by_customer = {
            "outcome_id": "by-customer",
            "experiment": "hostile",
            "customer_id": HOSTILE[3],
            "event": HOSTILE[0],
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        assert admin.post("/v1/outcomes", json={"outcomes": [by_customer]}).status_code == 202

        # Unstorable text: refused by name, the same on both dialects, nothing stored.
        unstorable = ["a\x00b", "\x00", "\ud800", "tail\udfff"]
        full = {"tenure_months": 1, "plan": levels[0]}
        for bad in unstorable:
            checks = [
                (decide, {"customer_id": bad, "context": full}, "customer_id"),
                (decide, {"customer_id": "c", "request_id": bad, "context": full}, "request_id"),
                (decide, {"customer_id": "c", "context": {**full, "plan": bad}}, "context.plan"),
                (decide, {"customer_id": "c", "context": {**full, bad: 1}}, "context."),
                (
                    decide,
                    {"customer_id": "c", "context": full, "exclude": [{"offer": bad}]},
                    "exclude.0.offer",
                ),
                (
                    "/v1/outcomes",
                    {"outcomes": [{**items[0], "outcome_id": bad}]},
                    "outcomes.0.outcome_id",
                ),
                ("/v1/outcomes", {"outcomes": [{**items[0], "event": bad}]}, "outcomes.0.event"),
                (
                    "/v1/outcomes",
                    {"outcomes": [{**items[0], "decision_id": bad}]},
                    "outcomes.0.decision_id",
                ),
                (
                    "/v1/outcomes",
                    {"outcomes": [{**by_customer, "customer_id": bad}]},
                    "outcomes.0.customer_id",
                ),
                ("/v1/experiments", quick_spec(key="k1", description=bad), "description"),
                (
                    "/v1/experiments",
                    {**spec, "key": "k2", "reward": {**spec["reward"], "event": bad}},
                    "reward.event",
                ),
            ]
            for path, body, field in checks:
                # json.dumps escapes NUL and surrogates (\\u0000, \\ud800): valid JSON text.
                response = admin.post(path, content=json.dumps(body), headers=JSON_TYPE)
                error = error_of(response, 422)
                assert error["field"].startswith(field), (path, body, error)
            for path in (f"/v1/experiments/{bad}", f"/v1/experiments/{bad}/report"):
                if "\x00" in bad:  # a URL cannot carry a lone surrogate at all
                    response = admin.get(path.replace("\x00", "%00"))
                    assert error_of(response, 422)["field"] == "key"
            activate = admin.post("/v1/decisions/%00/activate")
            assert error_of(activate, 422)["field"] == "decision_id"
        # Keys are restricted to [a-z0-9_-]: hostile keys are refused by name.
        for hostile in HOSTILE[:5]:
            error = error_of(admin.post("/v1/experiments", json=quick_spec(key=hostile)), 422)
            assert error["field"] == "key"
        for hostile in ("'; DROP TABLE decision; --", "<script>", "%27%20OR%201%3D1"):
            response = admin.get(f"/v1/experiments/{hostile}")
            assert response.status_code in (404, 422)
            assert response.headers["content-type"] == "application/json"
            assert "<script>" not in response.headers["content-type"]

    # Read back from the export and straight from the database.
    out = export_parquet(server, "hostile", tmp_path)
    decisions = pq.read_table(out / "decisions.parquet").to_pylist()
    assert sorted(row["customer_id"] for row in decisions) == sorted(HOSTILE)
    assert sorted(row["plan"] for row in decisions) == sorted(levels)
    outcomes = pq.read_table(out / "outcomes.parquet").to_pylist()
    assert sorted(row["outcome_id"] for row in outcomes) == sorted(
        [f"{hostile}/outcome" for hostile in HOSTILE] + ["by-customer"]
    )
    by_id = {row["outcome_id"]: row for row in outcomes}
    for hostile in HOSTILE:
        assert by_id[f"{hostile}/outcome"]["event"] == hostile
    assert by_id["by-customer"]["customer_id"] == HOSTILE[3]

    engine = make_engine(server.database_url)
    try:
        tables = set(sql_inspect(engine).get_table_names())
        assert {"experiment", "decision", "outcome", "reward", "api_key"} <= tables
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT customer_id, request_id FROM decision WHERE experiment_key = 'hostile'"
                )
            ).all()
            assert len(connection.execute(text("SELECT 1 FROM api_key")).all()) == 3
        assert sorted(rows) == sorted((h, f"{h}#{n}") for n, h in enumerate(HOSTILE))
    finally:
        engine.dispose()
    with server.client("read") as reader:
        report = reader.get("/v1/experiments/hostile/report").json()
    assert report["decisions"]["total"] == len(HOSTILE)
    assert report["outcomes"]["total"] == len(HOSTILE) + 1
    assert report["kpi"] == "event:" + HOSTILE[0]
    assert_healthy(server)


def test_a_huge_finite_context_value_does_not_stop_learning(server: Server) -> None:
    """Context numbers beyond +-1e12 are refused by name (1e308 is finite, but its square
    overflowed the policy update and stalled learning for good); 1e12 itself is learned."""
    spec = quick_spec(key="poison")
    spec["reward"]["window"] = "1s"
    spec["learner"] = {"batch_size": 1, "interval_seconds": 1}
    decide = "/v1/experiments/poison/decisions"
    with server.client("admin") as admin:
        assert admin.post("/v1/experiments", json=spec).status_code == 201
        refused = admin.post(
            decide, json={"customer_id": "c", "context": {**CONTEXT, "tenure_months": 1e308}}
        )
        assert error_of(refused, 422)["field"] == "context.tenure_months"
        huge = admin.post(
            decide, json={"customer_id": "c", "context": {**CONTEXT, "tenure_months": 1e12}}
        )
        assert huge.status_code == 200, huge.text
        made = [huge.json()] + [
            admin.post(decide, json={"customer_id": f"c{n}", "context": CONTEXT}).json()
            for n in range(3)
        ]
        items = [
            {
                "outcome_id": f"poison-{n}",
                "decision_id": decision["decision_id"],
                "event": "click",
                "occurred_at": datetime.now(UTC).isoformat(),
            }
            for n, decision in enumerate(made)
        ]
        assert admin.post("/v1/outcomes", json={"outcomes": items}).status_code == 202
        deadline = time.monotonic() + 20
        version, learner = 0, {}
        while time.monotonic() < deadline and version < 1 and not learner.get("last_error"):
            time.sleep(0.5)
            version = admin.get("/v1/experiments/poison/report").json()["policy_version"]
            learner = httpx.get(f"{server.base_url}/healthz", timeout=10).json()["learner"]
    assert version >= 1, ("the experiment never learned", learner)
    assert not learner["last_error"], learner
