"""The worst specs the parser accepts, posted to a real server and decided with: a spec is an
attack surface, and its bounds (:mod:`experiments.spec.limits`) must hold a worker to a budget.

**Budget.** One worker's resident memory grows by at most :data:`MEMORY_BUDGET` (1 GB) from
creating the experiment to its last decision, and a decision takes at most
:data:`SECONDS_PER_DECISION` (5 s; about 1 s is typical, the rest is slack for the shared
2-core machine). Each case is one edge of the bounds, each pushed to its limit: the largest
decision space with Thompson sampling at the largest ``n_samples`` it allows; the widest
context; the most Beta draws; the largest per-arm model; fitted Q at its largest memory; LinUCB
over the most level-pair slots. Each edge is checked to be one: one step further is refused.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Server, free_port, prepare_in_process

from experiments.spec import SpecError, parse_spec

#: Most a worker's resident memory may grow serving one worst-case experiment.
MEMORY_BUDGET = 1024**3
#: Most seconds one decision may take, request and response included.
SECONDS_PER_DECISION = 5.0
#: Decisions per case: the first loads the policy, the others reuse it.
DECISIONS = 3


def _factors(count: int, levels: int) -> dict[str, list[str]]:
    return {f"f{j}": [f"l{i}" for i in range(levels)] for j in range(count)}


def _context(numeric: int, categories: int = 0) -> dict[str, Any]:
    fields: dict[str, Any] = {f"x{i}": {"type": "numeric"} for i in range(numeric)}
    if categories:
        fields["segment"] = {"type": "categorical", "levels": [f"s{i}" for i in range(categories)]}
    return fields


def _spec(
    policy: dict[str, Any], factors: dict[str, list[str]], context: dict[str, Any], kind: str
) -> dict[str, Any]:
    return {
        "key": "worst",
        "factors": factors,
        "context": context,
        "policy": policy,
        "reward": {"kind": kind, "event": "revenue", "window": "1d"},
    }


#: (case, policy, factors, context, reward kind, the hyper-parameter at its edge).
CASES: list[tuple[str, dict[str, Any], dict[str, list[str]], dict[str, Any], str, str | None]] = [
    (
        "largest space",
        {"name": "linear_ts", "params": {"n_samples": 100}},
        _factors(5, 10),
        _context(33),
        "sum",
        "n_samples",
    ),
    (
        "widest context",
        {"name": "linear_ts", "params": {"n_samples": 10_000}},
        _factors(2, 2),
        _context(200, 506),
        "sum",
        None,
    ),
    (
        "most draws",
        {"name": "beta_ts", "params": {"n_samples": 100}},
        _factors(5, 10),
        _context(1),
        "event",
        "n_samples",
    ),
    (
        "largest per-arm model",
        {"name": "kalman_ts", "params": {"n_samples": 10_000}},
        _factors(1, 8),
        _context(200, 799),
        "sum",
        None,
    ),
    (
        "fitted Q memory",
        {"name": "fitted_q", "params": {"noise_variance": 1.0, "memory": 6_886}},
        _factors(3, 10),
        _context(20),
        "sum",
        "memory",
    ),
    (
        "level-pair slots",
        {"name": "linucb", "params": {"interactions": True}},
        _factors(2, 34),
        _context(3),
        "sum",
        None,
    ),
]


def _with(policy: dict[str, Any], name: str, value: int) -> dict[str, Any]:
    return {**policy, "params": {**policy["params"], name: value}}


def _rss(pid: int, field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (peak) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.parametrize(
    ("policy", "factors", "context", "kind", "edge"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_worst_accepted_spec_decides_within_budget(
    tmp_path: Path,
    policy: dict[str, Any],
    factors: dict[str, list[str]],
    context: dict[str, Any],
    kind: str,
    edge: str | None,
) -> None:
    spec = _spec(policy, factors, context, kind)
    parse_spec(spec)
    if edge is not None:  # the case sits on the bound: one more is refused, naming the field
        with pytest.raises(SpecError) as caught:
            parse_spec(
                _spec(_with(policy, edge, policy["params"][edge] + 1), factors, context, kind)
            )
        assert caught.value.field == f"policy.params.{edge}"
    url = f"sqlite:///{tmp_path / 'engage.db'}"
    request = {
        "customer_id": "c",
        "context": {name: ("s0" if name == "segment" else 1.0) for name in context},
    }
    with Server(url, free_port(), prepare_in_process(url)) as server:
        assert server.process is not None
        pid = server.process.pid
        with server.client("admin") as admin:
            before = _rss(pid, "VmRSS")
            created = admin.post("/v1/experiments", json=spec)
            assert created.status_code == 201, created.text
            slowest = 0.0
            for index in range(DECISIONS):
                started = time.perf_counter()
                answer = admin.post(
                    "/v1/experiments/worst/decisions",
                    json={**request, "customer_id": f"c{index}"},
                    timeout=60,
                )
                slowest = max(slowest, time.perf_counter() - started)
                assert answer.status_code == 200, answer.text
            growth = _rss(pid, "VmHWM") - before
    assert growth <= MEMORY_BUDGET, f"grew {growth / 1024**2:.0f} MB"
    assert slowest <= SECONDS_PER_DECISION, f"slowest decision {slowest:.2f} s"
