"""The benchmark's environments and the pre-drawn streams of rounds every agent replays.

Every agent in an environment sees the same rounds: the same contexts ``x_t`` and the same
uniform draws ``u_t``; the realised reward of action ``a`` is ``1[u_t < p_t(a)]`` (common
random numbers), so two agents choosing the same action in a round get the same reward and
differences between agents are not Bernoulli noise.

- A: K = 8 arms, d = 10, ``w_a ~ N(0, I) / sqrt(d)``, stationary (the classic set-up).
- B: the factored 10 x 5 x 4 x 6 = 1,200-action space (offer, message, channel, timing),
  d = 20; the truth is additive over factor levels (:class:`bandit.synthetic.LogisticEnvironment`).
- C: A whose weights rotate in a random plane by ``drift_angle`` over the horizon.
- D, E, F: more stationary worlds of A's generator: another K = 8, d = 10 world, K = 4 with
  d = 5, and K = 16 with d = 20.
- S, J, P: A's world drifting three ways: slowly (a quarter turn over the horizon), by an
  abrupt quarter turn half way, and periodically (swinging a quarter turn away and back twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandit import DecisionSpace
from bandit.synthetic import LogisticEnvironment

#: Largest truth table (rounds x actions) kept in memory; bigger ones are computed per batch.
MAX_TABLE_CELLS = 5_000_000


@dataclass(frozen=True)
class EnvSpec:
    """One benchmark environment: its decision space, context width, truth seed and drift."""

    key: str
    title: str
    factors: dict[str, tuple[str, ...]]
    n_context: int
    truth_seed: int
    stream_seed: int
    drift_angle: float = 0.0
    drift: str = "linear"

    @property
    def stationary(self) -> bool:
        return not self.drift_angle

    def space(self) -> DecisionSpace:
        return DecisionSpace(self.factors)

    def environment(self, horizon: int) -> LogisticEnvironment:
        """The known-truth environment; its drift is shaped over ``horizon`` rounds."""
        return LogisticEnvironment(
            self.space(),
            self.n_context,
            seed=self.truth_seed,
            drift_angle=self.drift_angle,
            horizon=horizon,
            drift=self.drift,
        )

    @property
    def n_actions(self) -> int:
        return int(np.prod([len(levels) for levels in self.factors.values()]))


def _levels(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(n))


#: The stationary environments of the reward comparison and the drifting ones.
STATIONARY_KEYS = ("A", "D", "E", "F")
DRIFT_KEYS = ("C", "S", "J", "P")


def environment_specs(drift_angle: float) -> dict[str, EnvSpec]:
    """The environments by key. C, S, J and P share A's truth and stream and only add drift
    (C by ``drift_angle``, the others by a quarter turn)."""
    arms = {"arm": _levels("arm", 8)}
    quarter = np.pi / 2
    factored = {
        "offer": _levels("offer", 10),
        "message": _levels("message", 5),
        "channel": _levels("channel", 4),
        "timing": _levels("timing", 6),
    }
    return {
        "A": EnvSpec("A", "K=8 arms, d=10, stationary", arms, 10, truth_seed=0, stream_seed=100),
        "B": EnvSpec(
            "B",
            "factored 10x5x4x6 = 1,200 actions, d=20",
            factored,
            20,
            truth_seed=1,
            stream_seed=101,
        ),
        "C": EnvSpec(
            "C",
            f"K=8 arms, d=10, weights rotate {drift_angle / np.pi:g} pi over the horizon",
            arms,
            10,
            truth_seed=0,
            stream_seed=100,
            drift_angle=drift_angle,
        ),
        "D": EnvSpec("D", "K=8 arms, d=10, stationary, another world", arms, 10, 2, 102),
        "E": EnvSpec("E", "K=4 arms, d=5, stationary", {"arm": _levels("arm", 4)}, 5, 3, 103),
        "F": EnvSpec("F", "K=16 arms, d=20, stationary", {"arm": _levels("arm", 16)}, 20, 4, 104),
        "S": EnvSpec(
            "S", "K=8 arms, d=10, slow drift: a quarter turn over the horizon", arms, 10, 0, 100,
            drift_angle=quarter,
        ),
        "J": EnvSpec(
            "J", "K=8 arms, d=10, abrupt change: a quarter turn at once half way", arms, 10, 0,
            100, drift_angle=quarter, drift="step",
        ),
        "P": EnvSpec(
            "P", "K=8 arms, d=10, periodic drift: a quarter turn away and back, twice", arms,
            10, 0, 100, drift_angle=quarter, drift="periodic",
        ),
    }  # fmt: skip


def truth_rows(environment: LogisticEnvironment, X: np.ndarray, start: int) -> np.ndarray:
    """True success probability of every action for rows ``start, start + 1, ...``, ``(n, A)``.

    A drifting truth is evaluated at each row's own round, so the truth of a round does not
    depend on the batch size an agent uses.
    """
    if not environment.drift_angle:
        return environment.expected(X)
    return np.concatenate(
        [environment.expected(X[i : i + 1], start + i) for i in range(X.shape[0])], axis=0
    )


@dataclass(frozen=True)
class Stream:
    """Pre-drawn rounds: contexts ``(T, d)``, uniforms ``(T,)``, optimal expected reward ``(T,)``
    and the expected reward of the uniform choice over the eligible actions ``(T,)``.

    ``table`` holds the full truth ``(T, A)`` when it is small; otherwise the truth of a batch
    is recomputed from the environment (stationary truth only).
    """

    environment: LogisticEnvironment
    contexts: np.ndarray
    uniforms: np.ndarray
    optimal: np.ndarray
    table: np.ndarray | None
    uniform: np.ndarray

    @property
    def n_rounds(self) -> int:
        return int(self.contexts.shape[0])

    def truth(self, start: int, stop: int) -> np.ndarray:
        """True probabilities of every action for rounds ``start:stop``, ``(n, A)``."""
        if self.table is not None:
            return self.table[start:stop]
        return truth_rows(self.environment, self.contexts[start:stop], start)

    def outcomes(self, start: int, stop: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Realised rewards ``1[u < p]`` and expected rewards ``p`` of the chosen actions."""
        truth = self.truth(start, stop)
        expected = truth[np.arange(truth.shape[0]), actions]
        return (self.uniforms[start:stop] < expected).astype(np.float64), expected

    def head(self, n: int) -> Stream:
        """The first ``n`` rounds with their truth table materialised."""
        return Stream(
            environment=self.environment,
            contexts=self.contexts[:n],
            uniforms=self.uniforms[:n],
            optimal=self.optimal[:n],
            table=self.truth(0, n),
            uniform=self.uniform[:n],
        )


def make_stream(
    spec: EnvSpec, rounds: int, *, horizon: int | None = None, seed_offset: int = 0
) -> Stream:
    """Draw ``rounds`` rounds of ``spec`` from its fixed stream seed (plus ``seed_offset``)."""
    environment = spec.environment(horizon or rounds)
    rng = np.random.default_rng(spec.stream_seed + seed_offset)
    contexts = environment.contexts(rounds, rng)
    uniforms = rng.random(rounds)
    n_actions = spec.n_actions
    allowed = spec.space().allowed
    if rounds * n_actions <= MAX_TABLE_CELLS:
        table = truth_rows(environment, contexts, 0)
        optimal = table[:, allowed].max(axis=1)
        uniform = table[:, allowed].mean(axis=1)
    else:
        if environment.drift_angle:
            raise ValueError("a drifting environment needs its truth table in memory")
        table = None
        chunk = max(1, MAX_TABLE_CELLS // n_actions)
        parts = [
            environment.expected(contexts[start : start + chunk])[:, allowed]
            for start in range(0, rounds, chunk)
        ]
        optimal = np.concatenate([part.max(axis=1) for part in parts])
        uniform = np.concatenate([part.mean(axis=1) for part in parts])
    return Stream(environment, contexts, uniforms, optimal, table, uniform)
