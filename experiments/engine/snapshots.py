"""Policy snapshots: a policy's learned state as bytes, and each process's cache of the newest.

A snapshot is the treatment policy's state at one version, stored as a plain ``.npz`` archive
(:func:`experiments.store.snapshots.pack_state` / ``unpack_state``, no pickle). The learner
(:mod:`experiments.engine.learning`) writes them; decisions read the serving one (the newest
that safe promotion has not held back: :func:`experiments.store.promotions.serving_snapshot`)
through :class:`PolicyCache`, which trusts a loaded policy for :data:`SNAPSHOT_CHECK_SECONDS`
and then asks the store whether the serving version, exploration floor or apprentice mode
changed, so serving never waits for learning and a change made by another process (``engage
experiments set``) reaches every server within that time.

:class:`PolicyFactory` builds the policies both sides need from one seed sequence: a seeded
engine draws the same random numbers run after run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np

from bandit import Policy
from experiments.engine.registry import find_experiment
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store import models
from experiments.store.database import Database
from experiments.store.promotions import serving_snapshot
from experiments.store.snapshots import unpack_state
from experiments.vocabulary import ExperimentStatus

#: How long a cached policy is trusted before the newest snapshot version is checked again.
SNAPSHOT_CHECK_SECONDS = 1.0


def restore(policy: Policy, snapshot: models.PolicySnapshot | None) -> int:
    """Load ``snapshot`` into ``policy`` (when there is one); its version, 0 without one."""
    if snapshot is None:
        return 0
    policy.set_state(unpack_state(snapshot.state))
    return snapshot.version


class PolicyFactory:
    """Fresh treatment and control policies, each with its own child of one seed sequence.

    Args:
        seed: seed of the sequence (None: fresh entropy).
    """

    def __init__(self, seed: int | None) -> None:
        self._seed_sequence = np.random.SeedSequence(seed)
        self._lock = threading.Lock()

    def _rng(self) -> np.random.Generator:
        with self._lock:
            (child,) = self._seed_sequence.spawn(1)
        return np.random.default_rng(child)

    def build(self, spec: ExperimentSpec, floor: float) -> tuple[Policy, Policy]:
        """Treatment policy (with the experiment's current floor) and the control policy."""
        treatment = spec.build_policy(seed=self._rng(), exploration_floor=floor)
        return treatment, spec.build_holdout_policy(seed=self._rng())


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


Loaded = TypeVar("Loaded", bound=_Versioned)


def install_newest(
    cache: dict[str, Loaded], key: str, fresh: Loaded, lock: threading.Lock
) -> Loaded:
    """Put ``fresh`` in ``cache`` under ``key`` unless the entry there has a higher version;
    return what the cache then holds.

    Requests that find an entry stale read the store concurrently, and the one whose read saw
    the older version may finish last. Snapshot versions in the store only grow (a policy
    candidate is recorded pending in the transaction that publishes it), so such a read is
    stale: keeping the newer entry means a process never goes back to an older policy, which
    another request may already have answered with.
    """
    with lock:
        current = cache.get(key)
        if current is not None and current.version > fresh.version:
            return current
        cache[key] = fresh
    return fresh


@dataclass
class LoadedPolicy:
    """A policy at one snapshot version, shared by the requests of one process.

    ``lock`` serialises the policies' draws (their random generators are not thread-safe).
    """

    spec: ExperimentSpec
    status: ExperimentStatus
    exploration_floor: float
    apprentice: bool
    treatment: Policy
    control: Policy
    version: int
    checked_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class PolicyCache:
    """Each experiment's :class:`LoadedPolicy`, reloaded when another snapshot serves or the
    exploration floor or apprentice mode changed (or at once, once :meth:`forget`-ten).

    The experiment's status is refreshed at every check; a reload never replaces a newer
    version (:func:`install_newest`).
    """

    def __init__(self, database: Database, factory: PolicyFactory) -> None:
        self._database = database
        self._factory = factory
        self._policies: dict[str, LoadedPolicy] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> LoadedPolicy:
        """The cached policy of experiment ``key``, checked against the serving snapshot and
        the stored settings at most every :data:`SNAPSHOT_CHECK_SECONDS`."""
        with self._lock:
            loaded = self._policies.get(key)
        monotonic = time.monotonic()
        if loaded is not None and monotonic - loaded.checked_at < SNAPSHOT_CHECK_SECONDS:
            return loaded
        with self._database.session() as session:
            experiment = find_experiment(session, key)
            latest = serving_snapshot(session, experiment_key=key)
            # No snapshot yet is version 0: the loaded policy is still current (rebuilding it
            # would draw new generators at wall-clock-dependent times).
            newest = latest.version if latest is not None else 0
            if (
                loaded is not None
                and newest == loaded.version
                and experiment.exploration_floor == loaded.exploration_floor
                and experiment.apprentice == loaded.apprentice
            ):
                loaded.checked_at = monotonic
                loaded.status = ExperimentStatus(experiment.status)
                return loaded
            spec = parse_spec(experiment.spec)
            treatment, control = self._factory.build(spec, experiment.exploration_floor)
            fresh = LoadedPolicy(
                spec=spec,
                status=ExperimentStatus(experiment.status),
                exploration_floor=experiment.exploration_floor,
                apprentice=experiment.apprentice,
                treatment=treatment,
                control=control,
                version=restore(treatment, latest),
                checked_at=monotonic,
            )
        return install_newest(self._policies, key, fresh, self._lock)

    def forget(self, key: str) -> None:
        """Drop experiment ``key``'s entry: the next :meth:`get` rebuilds it from the store."""
        with self._lock:
            self._policies.pop(key, None)
