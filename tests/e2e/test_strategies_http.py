"""Strategy experiments over HTTP against real servers, on SQLite and PostgreSQL: decide answers
with the customer's strategy, holds it for the epoch across requests and across two server
processes racing on new customers, and serves only the actions the strategy allows."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from e2e_support import Server, free_port

from experiments.spec import parse_spec

SPEC: dict[str, Any] = {
    "key": "strategic",
    "factors": {
        "offer": ["none", "bundle"],
        "message": ["calm", "loud", "urgent"],
        "channel": ["sms", "push"],
    },
    "rules": [{"message": "urgent", "channel": "push"}],
    "context": {"spend": {"type": "numeric", "min": 0}},
    "policy": {"name": "linear_ts"},
    "reward": {"kind": "event", "event": "click", "window": "1d"},
    "holdout": {"share": 0.2},
    "strategies": {
        "epoch": "14d",
        "kpi": {"kind": "sum", "event": "revenue", "baseline": ["spend"]},
        "options": [
            {"name": "all"},
            {"name": "calm", "allow": {"message": ["calm"]}},
            {"name": "no-urgency", "allow": {"message": ["calm", "loud"], "channel": ["sms"]}},
        ],
    },
}


def decide(client: httpx.Client, customer: str, **extra: Any) -> dict[str, Any]:
    answer = client.post(
        "/v1/experiments/strategic/decisions",
        json={"customer_id": customer, "context": {"spend": 3.5}, **extra},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def allowed(strategy: str, action: dict[str, str]) -> bool:
    strategies = parse_spec(SPEC).strategy_set()
    assert strategies is not None
    space = parse_spec(SPEC).decision_space()
    return bool(strategies.masks[strategies.index_of(strategy)][space.index_of(action)])


def test_decide_holds_the_strategy_and_honours_it(server: Server) -> None:
    with server.client("admin") as admin:
        created = admin.post("/v1/experiments", json=SPEC)
        assert created.status_code == 201, created.text
        assert created.json()["spec"]["strategies"]["epoch"] == 14 * 86_400
        bad = {**SPEC, "key": "bad", "strategies": {**SPEC["strategies"], "epoch": "2h"}}
        refused = admin.post("/v1/experiments", json=bad)
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "strategies.epoch"
    with server.client("decide") as client:
        customers = [f"c{index}" for index in range(30)]
        first = {customer: decide(client, customer) for customer in customers}
        for _ in range(3):
            for customer in customers:
                again = decide(client, customer)
                assert again["strategy"] == first[customer]["strategy"]
                assert again["group"] == first[customer]["group"]
                if again["strategy"] is not None:
                    assert allowed(again["strategy"], again["action"])
        holdout = [answer for answer in first.values() if answer["group"] == "holdout"]
        treated = [answer for answer in first.values() if answer["group"] == "treatment"]
        assert holdout
        assert all(answer["strategy"] is None for answer in holdout)
        assert {answer["strategy"] for answer in treated} <= {"all", "calm", "no-urgency"}
        assert all(answer["strategy"] is not None for answer in treated)
        replay = decide(client, "c0", request_id="fixed")
        assert decide(client, "c0", request_id="fixed") == replay
        # A request that excludes every action its strategy allows is not contacted.
        calm = next(c for c, answer in first.items() if answer["strategy"] == "calm")
        none_left = decide(client, calm, exclude=[{"message": "calm"}])
        assert (none_left["action"], none_left["suppressed"]) == (None, "strategy_excludes_all")
    with server.client("read") as reader:
        report = reader.get("/v1/experiments/strategic/report").json()
    strategies = report["strategies"]
    assert [lift["strategy"] for lift in strategies["lifts"]] == ["all", "calm", "no-urgency"]
    assert sum(lift["assignments"] for lift in strategies["lifts"]) == len(treated)
    assert (strategies["kpi"], strategies["epoch_days"], strategies["policy_version"]) == (
        "sum:revenue",
        14.0,
        0,
    )


def test_two_server_processes_agree_on_every_new_customers_strategy(server: Server) -> None:
    """Two servers on one database get the first decisions of the same new customers at once;
    whichever stores an assignment first, both answer every customer with the same strategy."""
    with server.client("admin") as admin:
        assert admin.post("/v1/experiments", json=SPEC).status_code == 201
    with Server(server.database_url, free_port(), server.keys) as second:
        customers = [f"n{index}" for index in range(40)]
        with server.client("decide") as one, second.client("decide") as two:

            def both(customer: str) -> tuple[Any, Any]:
                return decide(one, customer)["strategy"], decide(two, customer)["strategy"]

            with ThreadPoolExecutor(max_workers=8) as pool:
                racing = list(pool.map(both, customers))
                reversed_order = list(pool.map(lambda c: decide(two, c)["strategy"], customers))
        for (first, second_answer), later in zip(racing, reversed_order, strict=True):
            assert first == second_answer == later
        assert {strategy for strategy, _ in racing} - {None}
