"""SIGKILL under load: every acknowledged write survives exactly once, and snapshots load.

While eight client threads send decisions and outcomes, the whole server (supervisor and its
two workers) is killed with SIGKILL, with the learner publishing a snapshot every few rewards,
so the kill lands mid-request and often mid-publication. Straight after each kill, with no
server running, the database must hold:

- every acknowledged decision once, as answered, and no request id twice; no decision that no
  request asked for (only unanswered requests may or may not be stored);
- every acknowledged outcome once; rewards at most one per decision, a decision ``rewarded``
  exactly when it has one, each reward counting the outcomes attributed to its decision;
- snapshot versions 1..N, each marking exactly the rewards it learned, each loading into a
  policy that decides.

Then a server restarts on the same database: it serves from the newest snapshot, replayed
requests (same request id, same outcome id) get their first answer and write nothing, and
the unanswered ones, retried, are stored once. Twice per dialect; finally every decision is
rewarded and learned exactly once.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from e2e_support import Server, free_port, prepare_in_process
from load_support import EVENT, Ledger, Load
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from test_service_http import context, quick_spec

from bandit import make_policy
from experiments.engine import DecisionEngine
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store.connection import make_engine
from experiments.store.database import Database
from experiments.store.models import Decision, Outcome, PolicySnapshot, Reward
from experiments.store.snapshots import unpack_state

KILLS = 2
WORKERS = 2
LOAD_SECONDS = 2.5
NEW_SNAPSHOTS_BEFORE_KILL = 2  # the learner must be publishing when the kill lands
REPLAYS = 20
ENV = {"ENGAGE_LEARNER_POLL_SECONDS": "0.1"}


def spec() -> dict[str, Any]:
    """An ``event`` reward (a click joins at once) with a 1-second window, and a snapshot
    every 3 rewards or 0.3 s."""
    base = quick_spec()
    return {
        **base,
        "key": "crash",
        "reward": {**base["reward"], "window": "1s"},
        "learner": {"batch_size": 3, "interval_seconds": 0.3},
    }


@dataclass
class Stored:
    """Every row the checks look at, read in one session."""

    decisions: list[Decision]
    outcomes: list[Outcome]
    rewards: list[Reward]
    snapshots: list[PolicySnapshot]


def read(engine: Engine) -> Stored:
    """Every row in one snapshot of the database: a running server's joiner and learner write
    between the four queries (a decision read open, then its reward read once written).
    PostgreSQL's default READ COMMITTED gives each query its own snapshot, and the sqlite3
    driver begins no transaction for reads, so each is asked for one explicitly."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        else:
            connection.exec_driver_sql("BEGIN")
        with Session(bind=connection) as session:
            return Stored(
                decisions=list(session.exec(select(Decision))),
                outcomes=list(session.exec(select(Outcome))),
                rewards=list(session.exec(select(Reward))),
                snapshots=list(session.exec(select(PolicySnapshot).order_by(PolicySnapshot.id))),
            )


def latest_version(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.coalesce(func.max(PolicySnapshot.version), 0))).one()


def check_decisions(stored: Stored, ledger: Ledger) -> None:
    """Each acknowledged decision stored once as answered; nothing nobody asked for."""
    counts = Counter(row.request_id for row in stored.decisions)
    assert [request for request, n in counts.items() if n > 1] == []
    rows = {row.request_id: row for row in stored.decisions}
    assert [request for request in ledger.decisions if request not in rows] == []
    for request_id, answer in ledger.decisions.items():
        row = rows[request_id]
        assert row.id == answer["decision_id"]
        assert (row.action, row.group) == (answer["action"], answer["group"])
        assert (row.propensity, row.policy_version) == (
            answer["propensity"],
            answer["policy_version"],
        )
        assert row.customer_id == ledger.requests[request_id]["customer_id"]
    assert set(rows) - set(ledger.decisions) <= set(ledger.unsettled_decisions)


def check_outcomes(stored: Stored, ledger: Ledger) -> None:
    """Each acknowledged outcome stored once, for the decision or customer it names."""
    counts = Counter(row.outcome_id for row in stored.outcomes)
    assert [outcome for outcome, n in counts.items() if n > 1] == []
    rows = {row.outcome_id: row for row in stored.outcomes}
    assert [outcome for outcome in ledger.outcomes if outcome not in rows] == []
    for outcome_id, item in ledger.outcomes.items():
        row = rows[outcome_id]
        if "decision_id" in item:
            assert row.decision_id == item["decision_id"]
        else:
            assert row.customer_id == item["customer_id"]
    assert set(rows) - set(ledger.outcomes) <= set(ledger.unsettled_outcomes)


def check_rewards(stored: Stored, default: float) -> None:
    """At most one reward per decision, written with the decision's status, and worth 1 exactly
    when an outcome counts for it (an outcome arriving after the join is relabelled late)."""
    rewarded = Counter(reward.decision_id for reward in stored.rewards)
    assert [decision for decision, n in rewarded.items() if n > 1] == []
    status = {row.id: row.status for row in stored.decisions}
    assert {status.get(decision) for decision in rewarded} <= {"rewarded"}
    assert {row.id for row in stored.decisions if row.status == "rewarded"} == set(rewarded)
    clicked = {
        row.decision_id
        for row in stored.outcomes
        if row.attribution == "attributed" and row.event == EVENT
    }
    wrong = [
        (reward.decision_id, reward.value)
        for reward in stored.rewards
        if reward.value != (1.0 if reward.decision_id in clicked else default)
    ]
    assert wrong == []


def policy_from(spec: ExperimentSpec, state: bytes) -> Any:
    """A fresh treatment policy (as the engine builds it) set to a stored state."""
    policy = make_policy(
        spec.policy.name,
        space=spec.decision_space(),
        n_context=spec.n_context,
        seed=0,
        exploration_floor=spec.exploration_floor,
        **spec.policy.params,
    )
    policy.set_state(unpack_state(state))
    return policy


def check_snapshots(stored: Stored, spec: ExperimentSpec) -> None:
    """Versions 1..N in publication order; each marks exactly the rewards it learned (none
    marked by a version that is not stored); each loads into a policy that decides."""
    versions = [snapshot.version for snapshot in stored.snapshots]
    assert versions == list(range(1, len(versions) + 1))
    learned = Counter(reward.learned_version for reward in stored.rewards)
    assert set(learned) - {None} <= set(versions)
    previous = 0
    X = spec.encode_context(context())[None, :]
    for snapshot in stored.snapshots:
        assert snapshot.rows_learned - previous == learned[snapshot.version]
        previous = snapshot.rows_learned
        decision = policy_from(spec, snapshot.state).select(X)
        assert 0 <= decision.actions[0] < spec.decision_space().n_actions
        assert 0.0 < decision.propensities[0] <= 1.0


def check_store(engine: Engine, ledger: Ledger, spec: ExperimentSpec) -> Stored:
    stored = read(engine)
    check_decisions(stored, ledger)
    check_outcomes(stored, ledger)
    check_rewards(stored, spec.reward.default)
    check_snapshots(stored, spec)
    return stored


def check_recovered(
    server: Server, engine: Engine, ledger: Ledger, key: str, *, crashed: int, tag: str
) -> None:
    """The restarted service decides from a snapshot no older than the newest at the crash
    ``crashed`` (the engine loads it), and replays of acknowledged requests get their first
    answer without writing anything. (Its learner may already publish newer ones, which a
    process picks up within ``SNAPSHOT_CHECK_SECONDS``.)"""
    assert DecisionEngine(Database(engine)).loaded_policy(key).version >= crashed
    health = httpx.get(f"{server.base_url}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["learner"]["running"]
    body = {"customer_id": f"{tag}-fresh", "context": context(), "request_id": f"{tag}-fresh"}
    with server.client("decide") as http:
        fresh = http.post(f"/v1/experiments/{key}/decisions", json=body)
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["policy_version"] >= crashed
        with ledger.lock:
            ledger.decisions[body["request_id"]] = fresh.json()
            ledger.requests[body["request_id"]] = body

        before = read(engine)
        rng = random.Random(tag)
        for request_id in rng.sample(sorted(ledger.decisions), REPLAYS):
            again = http.post(f"/v1/experiments/{key}/decisions", json=ledger.requests[request_id])
            assert again.status_code == 200, again.text
            assert again.json() == ledger.decisions[request_id]
        for outcome_id in rng.sample(sorted(ledger.outcomes), REPLAYS):
            again = http.post("/v1/outcomes", json={"outcomes": [ledger.outcomes[outcome_id]]})
            assert again.status_code == 202, again.text
            assert again.json() == {"accepted": 0, "duplicates": 1}
        after = read(engine)
    assert len(after.decisions) == len(before.decisions)
    assert len(after.outcomes) == len(before.outcomes)


def wait_until_learning(engine: Engine, versions: int, seconds: float) -> None:
    """Until ``versions`` new snapshots are published (after a restart on SQLite, the dead
    leader's lease must run out first)."""
    target = latest_version(engine) + versions
    deadline = time.monotonic() + seconds
    while latest_version(engine) < target:
        assert time.monotonic() < deadline, "the learner published no snapshots in time"
        time.sleep(0.05)


def test_sigkill_under_load_loses_no_acknowledged_write(
    database_url: str, spawn_server: Callable[..., Server]
) -> None:
    keys = prepare_in_process(database_url)
    server = spawn_server(database_url, free_port(), keys, workers=WORKERS, env=ENV)
    with server.client("admin") as admin:
        created = admin.post("/v1/experiments", json=spec())
        assert created.status_code == 201, created.text
    key = created.json()["key"]
    experiment = parse_spec(created.json()["spec"])
    ledger = Ledger()
    figures: dict[str, list[int]] = defaultdict(list)
    engine = make_engine(database_url)
    try:
        for kill in range(KILLS):
            load = Load(
                [server.base_url],
                token=keys["decide"],
                key=key,
                context=context(),
                ledger=ledger,
                prefix=f"k{kill}",
                seed=kill,
            )
            with load:
                started = time.monotonic()
                wait_until_learning(engine, NEW_SNAPSHOTS_BEFORE_KILL, seconds=20)
                time.sleep(max(0.0, LOAD_SECONDS - (time.monotonic() - started)))
                server.stop(signal.SIGKILL)  # supervisor and workers, mid-flight
            assert ledger.errors == [], ledger.errors[:5]

            crashed = check_store(engine, ledger, experiment)  # nothing running
            stored_ids = {row.request_id for row in crashed.decisions}
            figures["acknowledged decisions"].append(len(ledger.decisions))
            figures["acknowledged outcomes"].append(len(ledger.outcomes))
            figures["snapshots at kill"].append(len(crashed.snapshots))
            figures["unanswered decisions"].append(len(ledger.unsettled_decisions))
            figures["of which stored"].append(len(stored_ids & set(ledger.unsettled_decisions)))
            figures["unanswered outcomes"].append(len(ledger.unsettled_outcomes))

            server.start()
            newest = len(crashed.snapshots)
            check_recovered(server, engine, ledger, key, crashed=newest, tag=f"k{kill}")
            load.settle(server.base_url)
            assert ledger.errors == [], ledger.errors[:5]
            assert not ledger.unsettled_decisions
            assert not ledger.unsettled_outcomes
            check_store(engine, ledger, experiment)

        # Every window closes: each decision rewarded, and learned, exactly once.
        deadline = time.monotonic() + 30
        while True:
            final = read(engine)
            learned = [reward for reward in final.rewards if reward.learned_version is not None]
            if len(learned) == len(final.rewards) == len(final.decisions):
                break
            assert time.monotonic() < deadline, "not every decision was rewarded and learned"
            time.sleep(0.2)
        check_store(engine, ledger, experiment)
        assert final.snapshots[-1].rows_learned == len(final.decisions)
        figures["snapshots at the end"].append(len(final.snapshots))
    finally:
        engine.dispose()
        print(f"{database_url.split(':')[0]}: {dict(figures)}")
