"""The policy caches never go back to an older snapshot: two requests that find the cache stale
read the store at the same time, and the one whose read saw the older serving snapshot
finishes last. Its read must not replace the newer policy the other one installed (and may
already have answered with)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, select
from test_engine import START, ask, spec_dict

from experiments.engine import DecisionEngine, OutcomeInput
from experiments.engine import snapshots as snapshots_module
from experiments.engine.clock import ManualClock
from experiments.engine.snapshots import PolicyCache, PolicyFactory, install_newest
from experiments.store import models
from experiments.store.database import Database


def publish_two_versions(engine: Engine) -> None:
    """Versions 1 and 2 of experiment ``promo``, each learned from a week of decisions."""
    clock = ManualClock(START)
    core = DecisionEngine(Database(engine), clock=clock, seed=7)
    core.create_experiment(spec_dict())
    for version in (1, 2):
        made = [ask(core, f"c{version}-{number}") for number in range(8)]
        core.record(
            [
                OutcomeInput(f"o{version}-{number}", "revenue", 2.0, clock.now(), item.decision_id)
                for number, item in enumerate(made[:3])
            ]
        )
        clock.advance(timedelta(days=7, seconds=1))
        assert core.join_rewards("promo") == 8
        assert core.learn("promo") == version


def test_a_slow_read_of_an_older_snapshot_does_not_replace_a_newer_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_two_versions(engine)
    cache = PolicyCache(Database(engine), PolicyFactory(0))
    real = snapshots_module.serving_snapshot
    read_old, resume = threading.Event(), threading.Event()

    def serving(session: Session, *, experiment_key: str) -> models.PolicySnapshot | None:
        if threading.current_thread().name != "slow":
            return real(session, experiment_key=experiment_key)
        # This request read the store just before version 2 was published.
        old = session.exec(
            select(models.PolicySnapshot).where(models.PolicySnapshot.version == 1)
        ).one()
        read_old.set()
        assert resume.wait(30)
        return old

    monkeypatch.setattr(snapshots_module, "serving_snapshot", serving)
    seen: list[int] = []
    slow = threading.Thread(
        target=lambda: seen.append(cache.get("promo").version), name="slow", daemon=True
    )
    slow.start()
    assert read_old.wait(30)
    assert cache.get("promo").version == 2  # a later request reads and installs version 2
    resume.set()
    slow.join(30)
    assert not slow.is_alive()
    assert seen == [2]  # the slow request answers with the newer policy, not its own read
    assert cache.get("promo").version == 2  # and the cache still holds it


@dataclass(frozen=True)
class Entry:
    version: int
    name: str


def test_install_newest_keeps_a_higher_version_and_takes_an_equal_or_higher_one() -> None:
    """The rule both caches install by (policies and strategy policies): an equal version is
    taken (its settings may have changed), a lower one never."""
    cache: dict[str, Entry] = {}
    lock = threading.Lock()
    assert install_newest(cache, "k", Entry(2, "first"), lock) == Entry(2, "first")
    assert install_newest(cache, "k", Entry(1, "stale"), lock) == Entry(2, "first")
    assert install_newest(cache, "k", Entry(2, "settings"), lock) == Entry(2, "settings")
    assert install_newest(cache, "k", Entry(3, "newer"), lock) == Entry(3, "newer")
    assert install_newest(cache, "other", Entry(0, "prior"), lock) == Entry(0, "prior")
    assert cache == {"k": Entry(3, "newer"), "other": Entry(0, "prior")}


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=12))
def test_whatever_the_order_of_installs_the_cache_ends_at_the_highest_version(
    versions: list[int],
) -> None:
    """Reads finish in any order: each install answers with the highest version seen so far,
    and the cache ends at the highest of all (the latest read of that version)."""
    cache: dict[str, Entry] = {}
    lock = threading.Lock()
    for position, version in enumerate(versions):
        answer = install_newest(cache, "k", Entry(version, f"read {position}"), lock)
        assert answer.version == max(versions[: position + 1])
    top = max(versions)
    last_top = max(position for position, version in enumerate(versions) if version == top)
    assert cache["k"] == Entry(top, f"read {last_top}")
