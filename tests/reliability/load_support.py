"""A load generator for reliability tests: client threads posting decisions and outcomes to
running `engage serve` processes, keeping what every request was told.

A request answered 2xx is *acknowledged*: the service promised it is stored, so it must be in
the database exactly once whatever happens to the server afterwards. A request that got no
answer (its server was killed under it) is *unsettled*: it may or may not have been stored.
:meth:`Load.settle` retries those with the same request id or outcome id, as a real client
would, after which every request sent is acknowledged.

Each decision gets a unique request id; outcomes (a ``click``, the experiments' reward event)
are sent only for decisions already acknowledged, each with a unique outcome id, some naming
the decision and some only the customer. A few decisions and outcome batches are sent twice
in a row: the second answer must be the first (decisions) or count only duplicates.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

EVENT = "click"
CUSTOMERS = 300  # per load: customers get several decisions, so outcomes naming only them
THREADS = 8


@dataclass
class Ledger:
    """What the clients were told, over every load that shares it (guarded by ``lock``).

    ``decisions``: request id -> the first 2xx answer; ``requests``: request id -> the body
    sent; ``outcomes``: outcome id -> the item sent, once acknowledged; ``unsettled_*``:
    the same for requests that got no answer; ``errors``: every answer that broke a promise
    (an unexpected status, a retry answered differently), for the test to assert empty.
    """

    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    unsettled_decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    unsettled_outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Load:
    """``threads`` clients sending decisions and outcomes until :meth:`stop`.

    Thread ``i`` sends its n-th decision to ``base_urls[(i + n) % len(base_urls)]``. Use as
    a context manager (starts, stops on exit); the servers may die meanwhile.
    """

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        token: str,
        key: str,
        context: Mapping[str, Any],
        ledger: Ledger,
        prefix: str,
        threads: int = THREADS,
        seed: int = 0,
    ) -> None:
        self.base_urls = list(base_urls)
        self.headers = {"authorization": f"Bearer {token}"}
        self.key = key
        self.context = dict(context)
        self.ledger = ledger
        self.prefix = prefix
        self.seed = seed
        self.halt = threading.Event()
        self.threads = [
            threading.Thread(target=self._client, args=(index,), daemon=True)
            for index in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.halt.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in self.threads), "load did not stop"

    # ------------------------------------------------------------------ one client
    def _client(self, index: int) -> None:
        rng = random.Random(f"{self.seed}-{self.prefix}-{index}")
        acknowledged: list[tuple[str, str]] = []  # (decision id, customer) without outcome yet
        number = 0
        with httpx.Client(headers=self.headers, timeout=10) as http:
            while not self.halt.is_set():
                number += 1
                url = self.base_urls[(index + number) % len(self.base_urls)]
                customer = f"{self.prefix}-c{rng.randrange(CUSTOMERS)}"
                request_id = f"{self.prefix}-r{index}-{number}"
                body = {"customer_id": customer, "context": self.context, "request_id": request_id}
                answer = self._decide(http, url, body)
                if answer is not None:
                    acknowledged.append((answer["decision_id"], customer))
                    if rng.random() < 0.05:  # an impatient client retries at once
                        self._decide(http, url, body)
                if acknowledged and rng.random() < 0.7:
                    batch = [
                        acknowledged.pop(rng.randrange(len(acknowledged)))
                        for _ in range(min(len(acknowledged), rng.randint(1, 3)))
                    ]
                    items = [
                        self._outcome(f"{self.prefix}-o{index}-{number}-{position}", *pair, rng)
                        for position, pair in enumerate(batch)
                    ]
                    if self._record(http, url, items) and rng.random() < 0.1:
                        self._record(http, url, items, first=False)  # a needless retry

    def _outcome(
        self, outcome_id: str, decision_id: str, customer: str, rng: random.Random
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "outcome_id": outcome_id,
            "event": EVENT,
            "value": 1.0,
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        if rng.random() < 0.25:  # names only the customer: attributed to their open decision
            item.update(experiment=self.key, customer_id=customer)
        else:
            item["decision_id"] = decision_id
        return item

    def _post(self, http: httpx.Client, url: str, body: Mapping[str, Any]) -> httpx.Response | None:
        """The answer, or ``None`` when there was none (the server died under the request)."""
        try:
            return http.post(url, json=body)
        except httpx.TransportError:
            self.halt.wait(0.05)  # a dead server refuses at once: do not spin
            return None

    def _decide(
        self, http: httpx.Client, base_url: str, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        request_id = body["request_id"]
        answer = self._post(http, f"{base_url}/v1/experiments/{self.key}/decisions", body)
        with self.ledger.lock:
            return _note_decision(self.ledger, request_id, body, answer)

    def _record(
        self, http: httpx.Client, base_url: str, items: list[dict[str, Any]], *, first: bool = True
    ) -> bool:
        """Send a batch of outcomes; whether it was acknowledged."""
        answer = self._post(http, f"{base_url}/v1/outcomes", {"outcomes": items})
        with self.ledger.lock:
            return _note_outcomes(self.ledger, items, answer, first=first)

    # ------------------------------------------------------------------ after a crash
    def settle(self, base_url: str) -> tuple[int, int]:
        """Retry every unsettled request on ``base_url`` with its own ids, one at a time;
        returns how many decisions and outcomes were retried."""
        ledger = self.ledger
        with ledger.lock:
            decisions = dict(ledger.unsettled_decisions)
            outcomes = dict(ledger.unsettled_outcomes)
        with httpx.Client(headers=self.headers, timeout=10) as http:
            for request_id, body in decisions.items():
                answer = self._post(http, f"{base_url}/v1/experiments/{self.key}/decisions", body)
                with ledger.lock:
                    ledger.unsettled_decisions.pop(request_id)
                    if answer is None:
                        ledger.errors.append(f"retry of decision {request_id}: no answer")
                    _note_decision(ledger, request_id, body, answer)
            for outcome_id, item in outcomes.items():
                answer = self._post(http, f"{base_url}/v1/outcomes", {"outcomes": [item]})
                with ledger.lock:
                    ledger.unsettled_outcomes.pop(outcome_id)
                    if answer is None:
                        ledger.errors.append(f"retry of outcome {outcome_id}: no answer")
                    _note_outcomes(ledger, [item], answer, first=False)
        return len(decisions), len(outcomes)


def _note_decision(
    ledger: Ledger, request_id: str, body: dict[str, Any], answer: httpx.Response | None
) -> dict[str, Any] | None:
    """Book one answer to a decision request (caller holds the lock)."""
    if answer is None:
        if request_id not in ledger.decisions:
            ledger.unsettled_decisions[request_id] = body
        return None
    if answer.status_code != 200:
        ledger.errors.append(f"decide {request_id}: {answer.status_code} {answer.text}")
        return None
    result: dict[str, Any] = answer.json()
    first = ledger.decisions.setdefault(request_id, result)
    ledger.requests.setdefault(request_id, body)
    ledger.unsettled_decisions.pop(request_id, None)
    if first != result:
        ledger.errors.append(f"decide {request_id}: retry answered {result}, first {first}")
    return result


def _note_outcomes(
    ledger: Ledger, items: list[dict[str, Any]], answer: httpx.Response | None, *, first: bool
) -> bool:
    """Book one answer to a batch of outcomes (caller holds the lock); whether it was
    acknowledged. A first send of new outcome ids must be accepted in full; a retry must count
    each once, accepted or not."""
    if answer is None:
        for item in items:
            if item["outcome_id"] not in ledger.outcomes:
                ledger.unsettled_outcomes[item["outcome_id"]] = item
        return False
    if answer.status_code != 202:
        ledger.errors.append(f"outcomes: {answer.status_code} {answer.text}")
        return False
    counts = answer.json()
    expected = {"accepted": len(items), "duplicates": 0}
    if counts["accepted"] + counts["duplicates"] != len(items) or (first and counts != expected):
        ledger.errors.append(f"outcomes {[item['outcome_id'] for item in items]}: {counts}")
    for item in items:
        ledger.outcomes[item["outcome_id"]] = item
        ledger.unsettled_outcomes.pop(item["outcome_id"], None)
    return True
