"""EngageClient reads a Retry-After header only when it is whole seconds in ASCII digits: any
other value (an HTTP date, or text that ``str.isdigit`` takes but ``float`` refuses, such as
a superscript two) falls back to the client's own backoff instead of raising."""

from __future__ import annotations

import httpx
import pytest

from experiments.service.client import EngageClient


@pytest.mark.parametrize("retry_after", ["\u00b2", "\u0663", "Wed, 02 Dec 2026 01:00:00 GMT", ""])
def test_an_unreadable_retry_after_falls_back_to_the_backoff(retry_after: str) -> None:
    answers = [
        httpx.Response(
            503,
            headers=[(b"retry-after", retry_after.encode())],  # as sent on the wire
            json={"error": {"field": "database", "message": "database unavailable"}},
        ),
        httpx.Response(200, json={"decision_id": "d1"}),
    ]
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    transport = httpx.MockTransport(answer)
    with EngageClient("http://engage.test", "key", backoff=0.0, transport=transport) as client:
        assert client.decide("exp", "c1", {}, request_id="r1") == {"decision_id": "d1"}
    assert len(seen) == 2
    assert seen[0].content == seen[1].content  # the same request id both times
