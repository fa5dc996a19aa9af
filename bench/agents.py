"""One adapter per learner, so the loop treats ours and the references alike.

An agent chooses for a batch of contexts ``X`` (n, d) and returns the actions ``(n,)`` and
their propensities ``(n,)`` (NaN where the learner does not report one), then learns from
the batch's rewards. ``vowpalwabbit`` and ``mabwiser`` (the ``bench`` extra) are imported
only when a reference agent is built, so the benchmark's core runs without them.

References, configured as follows:

- Vowpal Wabbit, ``--cb_explore_adf`` with ``-q sa``: one shared line ``shared |s x0:.. x1:..``
  and one line per action ``|a arm=k`` (factored spaces: ``|a offer=.. message=..``). VW
  returns a pmf over the action lines; the agent samples the action from it with its own
  seeded generator and learns with the label ``0:cost:probability`` on the chosen line,
  ``cost = -reward``. Batches of ``n`` predict ``n`` times, then learn ``n`` times.
- MABWiser ``LinUCB`` / ``LinTS`` with one model per arm; a constant feature is prepended to
  the context ("linear policies need an intercept"). Until the first ``fit`` it chooses
  uniformly at random (MABWiser cannot predict before it is fitted). Its LinTS is not
  textbook Thompson sampling at batch 100: the arms' models hold copies of one generator in
  one state, so all arms draw the same normals (a randomized UCB); ``python -m bench.ts_gap``
  measures it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bandit import DecisionSpace, make_policy
from bench.environments import EnvSpec

#: Our policies, in the order the tables list them.
OUR_POLICIES = (
    "uniform",
    "fixed",
    "epsilon_greedy",
    "linucb",
    "linear_ts",
    "logistic_ts",
    "kalman_ts",
    "drift_ts",
    "beta_ts",
    "gaussian_ts",
)
#: Ours that learn a contextual model; the reward target applies to these.
CONTEXTUAL = ("epsilon_greedy", "linucb", "linear_ts", "logistic_ts", "kalman_ts", "drift_ts")
#: Ours that assume a stationary world (the drift comparison's opponents).
STATIONARY = ("epsilon_greedy", "linucb", "linear_ts", "logistic_ts")
#: The drift policy the drift targets judge: it learns its drift rate (kalman_ts is given one).
DRIFT_POLICY = "drift_ts"

#: Hyper-parameters for Bernoulli rewards: their variance is at most 1/4, which is the noise
#: variance the linear models should assume; Thompson draws at half the posterior spread
#: (a common practical setting, cf. Chapelle & Li 2011). Every other setting is the default.
BENCH_PARAMS: dict[str, dict[str, float]] = {
    "linucb": {"noise_variance": 0.25},
    "linear_ts": {"noise_variance": 0.25, "scale": 0.5},
    "logistic_ts": {"scale": 0.5},
    "kalman_ts": {"noise_variance": 0.25, "scale": 0.5},
    "drift_ts": {"noise_variance": 0.25, "scale": 0.5},
}

#: The like-for-like row of linear_ts against MABWiser's LinTS (no exploration floor).
LIKE_FOR_LIKE_TS = "linear_ts floor 0"

VW_SQUARECB = "--cb_explore_adf --squarecb -q sa"
VW_EPSILON = "--cb_explore_adf --epsilon 0.05 -q sa"
MABWISER_ALPHA = 1.0


class Agent(Protocol):
    """What the benchmark loop needs from a learner."""

    def select(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Actions ``(n,)`` int64 and propensities ``(n,)`` for contexts ``X`` (n, d)."""
        ...

    def update(
        self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray
    ) -> None:
        """Learn from the batch's rewards ``(n,)``."""
        ...


@dataclass(frozen=True)
class AgentSpec:
    """A named way to build an agent for an environment.

    ``kind`` is ``"ours"``, ``"baseline"`` (ours, configured as a per-arm model for B) or
    ``"reference"``; ``policy`` is our registry name where there is one.
    """

    name: str
    kind: str
    build: Callable[[EnvSpec], Agent]
    policy: str | None = None
    note: str = ""
    traceable: bool = True  # its memory is visible to tracemalloc (not a C++ heap)


class PolicyAgent:
    """One of our policies through its public ``select`` / ``update``, with its
    :data:`BENCH_PARAMS` updated by ``overrides``."""

    def __init__(
        self,
        name: str,
        space: DecisionSpace,
        n_context: int,
        seed: int,
        overrides: dict[str, float] | None = None,
    ) -> None:
        params = {**BENCH_PARAMS.get(name, {}), **(overrides or {})}
        self.policy = make_policy(name, space=space, n_context=n_context, seed=seed, **params)

    def select(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        decision = self.policy.select(X)
        return decision.actions, decision.propensities

    def update(
        self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray
    ) -> None:
        self.policy.update(X, actions, rewards, propensities)


def action_feature_lines(spec: EnvSpec) -> list[str]:
    """One VW ``|a`` line per action in the space's order (last factor fastest)."""
    space = spec.space()
    return [
        "|a " + " ".join(f"{factor}={level}" for factor, level in space.levels_of(a).items())
        for a in range(space.n_actions)
    ]


class VowpalWabbitAgent:
    """Vowpal Wabbit contextual bandit with action-dependent features (pyvw ``Workspace``)."""

    def __init__(self, arguments: str, spec: EnvSpec, seed: int) -> None:
        import vowpalwabbit

        self.workspace = vowpalwabbit.Workspace(f"{arguments} --quiet --random_seed {seed}")
        self.action_lines = action_feature_lines(spec)
        self.names = [f"x{j}" for j in range(spec.n_context)]
        self.rng = np.random.default_rng(seed)

    def _example(self, x: np.ndarray) -> list[str]:
        shared = "shared |s " + " ".join(
            f"{name}:{value:.6g}" for name, value in zip(self.names, x.tolist(), strict=True)
        )
        return [shared, *self.action_lines]

    def select(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = X.shape[0]
        actions = np.empty(n, dtype=np.int64)
        propensities = np.empty(n)
        draws = self.rng.random(n)
        for i in range(n):
            pmf = np.asarray(self.workspace.predict(self._example(X[i])), dtype=np.float64)
            cumulative = np.cumsum(pmf)
            action = min(int(np.searchsorted(cumulative, draws[i] * cumulative[-1])), pmf.size - 1)
            actions[i] = action
            propensities[i] = pmf[action] / cumulative[-1]
        return actions, propensities

    def update(
        self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray
    ) -> None:
        for i in range(X.shape[0]):
            lines = self._example(X[i])
            action = int(actions[i])
            cost = -float(rewards[i])
            lines[action + 1] = f"0:{cost:g}:{float(propensities[i]):.6g} {lines[action + 1]}"
            self.workspace.learn(lines)


class MabwiserAgent:
    """MABWiser's per-arm linear policies, with a constant feature prepended to contexts."""

    def __init__(self, learning_policy: str, n_arms: int, seed: int, *, intercept: bool) -> None:
        from mabwiser.mab import MAB, LearningPolicy

        factory = {"LinUCB": LearningPolicy.LinUCB, "LinTS": LearningPolicy.LinTS}[learning_policy]
        self.mab = MAB(
            arms=list(range(n_arms)), learning_policy=factory(alpha=MABWISER_ALPHA), seed=seed
        )
        self.n_arms = n_arms
        self.intercept = intercept
        self.fitted = False
        self.rng = np.random.default_rng(seed)

    def _contexts(self, X: np.ndarray) -> np.ndarray:
        if not self.intercept:
            return X
        return np.hstack([np.ones((X.shape[0], 1)), X])

    def select(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = X.shape[0]
        if not self.fitted:
            return self.rng.integers(self.n_arms, size=n), np.full(n, 1.0 / self.n_arms)
        chosen = np.atleast_1d(np.asarray(self.mab.predict(self._contexts(X)), dtype=np.int64))
        return chosen, np.full(n, np.nan)

    def update(
        self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray
    ) -> None:
        contexts = self._contexts(X)
        if self.fitted:
            self.mab.partial_fit(actions.tolist(), rewards.tolist(), contexts)
        else:
            self.mab.fit(actions.tolist(), rewards.tolist(), contexts)
            self.fitted = True


def references_available() -> dict[str, bool]:
    """Which reference packages are installed (without importing them)."""
    return {
        package: importlib.util.find_spec(package) is not None
        for package in ("vowpalwabbit", "mabwiser")
    }


def our_agents(names: tuple[str, ...], seed: int) -> list[AgentSpec]:
    """Our policies with their default hyper-parameters on each environment's own space."""

    def builder(name: str) -> Callable[[EnvSpec], Agent]:
        return lambda spec: PolicyAgent(name, spec.space(), spec.n_context, seed)

    return [AgentSpec(name, "ours", builder(name), policy=name) for name in names]


def like_for_like_agents(names: tuple[str, ...], seed: int) -> list[AgentSpec]:
    """Ours configured as the references are, beside (never instead of) the default rows.

    ``linear_ts floor 0``: linear_ts without the exploration floor (0.01 of every decision
    spread uniformly by default), which MABWiser's LinTS does not have. The floor costs its
    share of the gap to the best action whatever the policy learns (the ``vs ceiling``
    column); this row shows the Thompson sampler itself against the reference.
    """
    if "linear_ts" not in names:
        return []
    return [
        AgentSpec(
            LIKE_FOR_LIKE_TS,
            "like-for-like",
            lambda spec: PolicyAgent(
                "linear_ts", spec.space(), spec.n_context, seed, {"exploration_floor": 0.0}
            ),
            policy="linear_ts",
            note="linear_ts with exploration_floor=0, as MABWiser's LinTS",
        )
    ]


def per_arm_agents(seed: int, *, references: bool) -> list[AgentSpec]:
    """Per-arm baselines for the factored space: every action its own model, nothing shared."""

    def our_per_arm(spec: EnvSpec) -> Agent:
        flat = DecisionSpace({"action": [f"a{i}" for i in range(spec.n_actions)]})
        return PolicyAgent("linucb", flat, spec.n_context, seed)

    agents = [
        AgentSpec(
            "linucb per-arm",
            "baseline",
            our_per_arm,
            policy="linucb",
            note="our linucb on a one-factor space with one level per action",
        )
    ]
    if references and references_available()["mabwiser"]:
        agents.append(
            AgentSpec(
                "MABWiser LinUCB per-arm",
                "reference",
                lambda spec: MabwiserAgent("LinUCB", spec.n_actions, seed, intercept=True),
                note=f"one LinUCB per action, alpha={MABWISER_ALPHA}, constant feature",
            )
        )
    return agents


def reference_agents(seed: int) -> list[AgentSpec]:
    """The reference agents whose libraries are installed; an empty list without the extra."""
    available = references_available()
    agents: list[AgentSpec] = []
    if available["vowpalwabbit"]:
        for label, arguments in (("squarecb", VW_SQUARECB), ("epsilon 0.05", VW_EPSILON)):
            agents.append(
                AgentSpec(
                    f"VW {label}",
                    "reference",
                    lambda spec, arguments=arguments: VowpalWabbitAgent(arguments, spec, seed),
                    note=arguments,
                    traceable=False,
                )
            )
    if available["mabwiser"]:
        for learning_policy in ("LinUCB", "LinTS"):
            agents.append(
                AgentSpec(
                    f"MABWiser {learning_policy}",
                    "reference",
                    lambda spec, lp=learning_policy: MabwiserAgent(
                        lp, spec.n_actions, seed, intercept=True
                    ),
                    note=f"alpha={MABWISER_ALPHA}, constant feature",
                )
            )
    return agents
