"""The arms of an ``engage run``: which policy and reward each one runs, from one spec.

- ``uniform``: uniform random over eligible actions;
- ``business_as_usual``: always one action (the spec's fixed holdout action, or the first
  eligible one);
- ``interaction``: the spec's policy rewarded on immediate clicks (click within one day): the
  "you are here, so take this offer" approach;
- ``engagement``: the spec's policy and reward (revenue or retention over a window): the
  continuous-engagement approach;
- ``strategy`` (specs with a ``[strategies]`` section): the interaction arm with the spec's
  strategies: the two clocks of learning, tactics per contact on the immediate click, and a
  strategy per customer and epoch judged on the epoch's KPI
  (:mod:`experiments.runs.strategies`). Compared with the interaction arm, it measures what
  the strategy layer adds. The other arms run the spec without its strategies.

Also what each arm is measured on: the factor whose allocation is drawn, and the simulator's
expected-reward kind that matches the spec's reward (for regret).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bandit import DecisionSpace
from experiments.spec import ExperimentSpec, parse_spec

__all__ = [
    "ARMS",
    "STRATEGY_ARM",
    "allocation_factor",
    "arm_names",
    "arm_spec",
    "business_as_usual",
    "default_arms",
    "regret_kind",
]

ARMS = ("uniform", "business_as_usual", "interaction", "engagement")
#: The arm that runs the spec's strategies (only for specs that have them).
STRATEGY_ARM = "strategy"


def default_arms(spec: ExperimentSpec) -> tuple[str, ...]:
    """The arms ``engage run`` compares unless told: :data:`ARMS`, and the strategy arm when
    the spec has strategies."""
    return ARMS + ((STRATEGY_ARM,) if spec.strategies is not None else ())


def arm_spec(spec: ExperimentSpec, arm: str) -> ExperimentSpec:
    """The spec one arm of the comparison runs: its own key, policy and reward, and the
    holdout of the base spec (hashed on its ``holdout.salt``, else on its key), so every arm
    holds out the same customers."""
    data = spec.to_json_dict()
    data["key"] = f"{spec.key}-{arm}".replace("_", "-")[:64]
    data["holdout"] = {**data["holdout"], "salt": spec.holdout.salt or spec.key}
    click = {"kind": "event", "event": "click", "window": 86_400, "default": 0.0}
    if arm != STRATEGY_ARM:
        data["strategies"] = None
    if arm == "uniform":
        data["policy"] = {"name": "uniform", "params": {}}
    elif arm == "business_as_usual":
        data["policy"] = {"name": "fixed", "params": {"action": business_as_usual(spec)}}
    elif arm == "interaction":
        data["reward"] = click
    elif arm == STRATEGY_ARM:
        if spec.strategies is None:
            raise ValueError(f"arm '{STRATEGY_ARM}' needs a spec with a [strategies] section")
        data["reward"] = click
    elif arm != "engagement":
        raise ValueError(f"unknown arm '{arm}'; expected one of {[*ARMS, STRATEGY_ARM]}")
    return parse_spec(data)


def business_as_usual(spec: ExperimentSpec) -> dict[str, str]:
    """The action business as usual would send: the fixed holdout action, else the first one."""
    if spec.holdout.action is not None:
        return dict(spec.holdout.action)
    space = spec.decision_space()
    return space.levels_of(int(np.flatnonzero(space.allowed)[0]))


def allocation_factor(space: DecisionSpace) -> str:
    """The factor whose allocation over time a run reports: the first with more than one
    level (a one-level factor, such as the single offer of ``examples/mechanism.toml``, has
    nothing to allocate)."""
    varied = [name for name in space.factor_names if len(space.factors[name]) > 1]
    return (varied or list(space.factor_names))[0]


def regret_kind(spec: ExperimentSpec) -> str:
    """The simulator's expected-reward kind matching the spec's reward, for regret."""
    reward = spec.reward
    days = max(1, round(reward.window.total_seconds() / 86_400))
    if reward.kind == "retained":
        return f"retained_{days}d"
    if reward.kind == "event" and reward.event in ("click", "accept"):
        return reward.event
    return f"revenue_{days}d"


def arm_names(values: Sequence[str]) -> tuple[str, ...]:
    """Validate a list of arm names."""
    known = (*ARMS, STRATEGY_ARM)
    unknown = [value for value in values if value not in known]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; expected some of {list(known)}")
    return tuple(values)
