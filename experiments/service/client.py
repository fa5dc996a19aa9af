"""A small Python client for the decision service, for services that call engage.

Retries are safe because the API is idempotent where it matters: a decision request carries
a ``request_id`` (generated here when the caller gives none) and an outcome an
``outcome_id``, so a retry after a timeout returns the first answer instead of writing twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

__all__ = ["RETRY_STATUSES", "EngageClient", "EngageError"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class EngageError(RuntimeError):
    """The service refused a request; ``status`` and ``field`` say why."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{status} {field}: {message}" if field else f"{status}: {message}")
        self.status = status
        self.field = field


class EngageClient:
    """Decide and report outcomes over HTTP with bounded, idempotent retries.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        api_key: a bearer key with the scopes the calls need.
        timeout: seconds per attempt.
        retries: extra attempts after a timeout, a connection error or 429/502/503/504.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers={"authorization": f"Bearer {api_key}"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EngageClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any | None = None) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=body)
            except (httpx.TimeoutException, httpx.TransportError):
                if attempt >= self.retries:
                    raise
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    return self._parse(response)
                retry_after = response.headers.get("retry-after")
                if retry_after and retry_after.isascii() and retry_after.isdigit():
                    time.sleep(min(float(retry_after), 5.0))
            attempt += 1
            time.sleep(self.backoff * 2 ** (attempt - 1))

    @staticmethod
    def _parse(response: httpx.Response) -> Any:
        if response.is_success:
            return response.json()
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        raise EngageError(
            response.status_code, error.get("field", ""), error.get("message", response.text)
        )

    def decide(
        self,
        experiment: str,
        customer_id: str,
        context: Mapping[str, Any],
        *,
        exclude: Sequence[Mapping[str, str]] | None = None,
        request_id: str | None = None,
        defer: bool = False,
    ) -> dict[str, Any]:
        """Ask for a decision; retried with the same request id so it is made once."""
        body: dict[str, Any] = {
            "customer_id": customer_id,
            "context": dict(context),
            "request_id": request_id or uuid.uuid4().hex,
            "defer": defer,
        }
        if exclude:
            body["exclude"] = [dict(rule) for rule in exclude]
        return self._call("POST", f"/v1/experiments/{experiment}/decisions", body)

    def activate(self, decision_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/decisions/{decision_id}/activate")

    def outcome(
        self,
        event: str,
        value: float,
        occurred_at: datetime,
        *,
        decision_id: str | None = None,
        experiment: str | None = None,
        customer_id: str | None = None,
        outcome_id: str | None = None,
    ) -> dict[str, Any]:
        """Report one outcome (see :meth:`outcomes` for batches)."""
        item: dict[str, Any] = {
            "outcome_id": outcome_id or uuid.uuid4().hex,
            "event": event,
            "value": value,
            "occurred_at": occurred_at.isoformat(),
        }
        for name, field_value in (
            ("decision_id", decision_id),
            ("experiment", experiment),
            ("customer_id", customer_id),
        ):
            if field_value is not None:
                item[name] = field_value
        return self.outcomes([item])

    def outcomes(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Report up to 1,000 outcomes; each needs its own ``outcome_id``."""
        return self._call("POST", "/v1/outcomes", {"outcomes": [dict(item) for item in items]})

    def report(self, experiment: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/experiments/{experiment}/report")

    def create_experiment(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/experiments", dict(spec))

    def health(self) -> dict[str, Any]:
        response = self._http.get("/healthz")
        return response.json()
