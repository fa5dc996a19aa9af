"""Fuzz the live OpenAPI schema with schemathesis against a real server (SQLite, PostgreSQL).

Every operation of ``GET /openapi.json`` gets generated requests, valid and invalid, with an
admin key and with none. Whatever is sent, the server must not fail (no 5xx), must answer
only with status codes and content types the schema declares, and its bodies must match
the declared response schemas. Derandomized with few examples per operation, so a run is
reproducible and bounded.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from e2e_support import Server, free_port, prepare_database
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: The running experiment every server is given (the quickstart example).
EXPERIMENT = "quickstart"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Examples per operation, mode and target with an admin key. The file took 38 s alone at 40
#: examples (and 15 without a key) and 28 s at these counts, but about three times that inside
#: the full suite, which must stay under ten minutes.
MAX_EXAMPLES = 25
#: Examples per operation, mode and target with no key: every operation but the health checks
#: answers 401 before it validates anything (route dependencies run before the body's), so
#: fewer examples still reach every operation in both modes.
MAX_EXAMPLES_WITHOUT_KEY = 10
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzz_server(module_database_url: str) -> Iterator[Server]:
    """One server per module and dialect, with a running experiment to aim at.

    The learner is off: fuzzed experiments need not learn, and it competes for two cores.
    """
    url = module_database_url
    running = Server(url, free_port(), prepare_database(url), env={"ENGAGE_LEARNER": "false"})
    running.start()
    try:
        spec = tomllib.loads((EXAMPLES / "quickstart.toml").read_text())
        with running.client("admin") as admin:
            assert admin.post("/v1/experiments", json=spec).status_code == 201
        yield running
        assert httpx.get(f"{running.base_url}/healthz").status_code == 200
    finally:
        running.stop()


def _fuzz(
    server: Server, headers: dict[str, str], *, max_examples: int = MAX_EXAMPLES
) -> tuple[list[str], dict[int, int]]:
    """Fuzz every operation of the server's live schema in both generation modes, and those
    taking an experiment key once more aimed at the running experiment (random keys mostly
    miss). Returns every failure as readable text, and the count of each status seen."""
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    schema.config.seed = 0
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [operation.label for operation in operations]
    for operation in operations:
        targets: list[dict[str, str] | None] = [None]
        if "{key}" in operation.path:
            targets.append({"key": EXPERIMENT})
        for mode, target in itertools.product(GenerationMode, targets):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=target)

            @settings(FUZZ_SETTINGS, max_examples=max_examples)
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, no body: GET /livez and the like).
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, FailureGroup) as error:  # all collected, reported together
                failures.append(f"{operation.label} ({mode.value}, {target}): {error}")
    return failures, statuses


def test_fuzz_with_admin_key(fuzz_server: Server) -> None:
    failures, statuses = _fuzz(
        fuzz_server, {"authorization": f"Bearer {fuzz_server.keys['admin']}"}
    )
    assert not failures, "\n\n".join(failures)
    # The fuzzer got past authentication and validation, not only bounced off them.
    assert statuses.get(200, 0) + statuses.get(201, 0) + statuses.get(202, 0) > 0, statuses
    assert statuses.get(422, 0) > 0, statuses


def test_fuzz_without_key(fuzz_server: Server) -> None:
    failures, statuses = _fuzz(fuzz_server, {}, max_examples=MAX_EXAMPLES_WITHOUT_KEY)
    assert not failures, "\n\n".join(failures)
    assert statuses.get(401, 0) > 0, statuses
