"""Per-key rate limiting on a real server: 429 with Retry-After, other keys unaffected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_support import Server, free_port, prepare_database


@pytest.fixture
def limited_server(tmp_path: Path) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path / 'engage.db'}"
    server = Server(
        url,
        free_port(),
        prepare_database(url),
        env={"ENGAGE_RATE_LIMIT_PER_SECOND": "0.1", "ENGAGE_RATE_LIMIT_BURST": "3"},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_key_over_its_rate_gets_429_with_retry_after(limited_server: Server) -> None:
    with limited_server.client("read") as reader:
        codes = [reader.get("/v1/experiments").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = reader.get("/v1/experiments")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["field"] == "authorization"
    with limited_server.client("admin") as admin:
        assert admin.get("/v1/experiments").status_code == 200
    assert httpx.get(f"{limited_server.base_url}/healthz").status_code == 200
