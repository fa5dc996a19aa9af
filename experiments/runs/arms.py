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
- ``lookahead``: ``lookahead_ts`` (:data:`LOOKAHEAD`): Thompson sampling on the response now
  (click and purchase) plus what the chosen levels' decayed contact counts do to the
  customer's later responses, learned from every contact (:mod:`bandit.policies.lookahead_ts`);
- ``sequential``: a value function over the customer's observable state (:data:`SEQUENTIAL`):
  ``fitted_q`` on the context plus decayed contact counts per level and days since the last
  contact (``[state]``), crediting each decision with its revenue until the next one and the
  value of the customer's next state;
- ``surrogate``: the spec's policy rewarded by a surrogate index of the spec's long-term KPI
  from the first days' clicks, accepts and revenue (:data:`SURROGATE`).

``lookahead``, ``sequential`` and ``surrogate`` are not in the default set (:data:`ARMS`);
name them with ``--arms``.

Also what each arm is measured on: the factor whose allocation is drawn, and the simulator's
expected-reward kind that matches the spec's reward (for regret).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from bandit import DecisionSpace
from experiments.spec import ExperimentSpec, parse_spec
from experiments.spec.limits import hyper_parameters

__all__ = [
    "ARMS",
    "KNOWN_ARMS",
    "LIFETIME_ARMS",
    "LOOKAHEAD",
    "SEQUENTIAL",
    "STRATEGY_ARM",
    "SURROGATE",
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


#: Arms that run only when named.
LIFETIME_ARMS = ("lookahead", "sequential", "surrogate")
#: Every arm ``engage run`` knows.
KNOWN_ARMS = (*ARMS, STRATEGY_ARM, *LIFETIME_ARMS)

#: What the ``sequential`` arm runs: its policy parameters (on top of the spec's), the
#: ``[state]`` section, and the window of its per-decision revenue reward. Fitted Q cannot
#: learn its noise scale, so unless the spec fixes one it uses ``noise_variance``, the scale
#: of revenue in currency units.
SEQUENTIAL: dict[str, Any] = {
    "params": {"gamma": 0.8, "n_iterations": 10, "memory": 4096},
    "noise_variance": 25.0,
    "state": {"contact_half_life": "7d", "lookback": "28d", "horizon": "28d"},
    "window": "7d",
}
#: What the ``lookahead`` arm runs: ``lookahead_ts`` rewarded by the response funnel within
#: a day of the decision (1 for a click, 2 for a click and a purchase, the ``accept``), with a
#: ``[state]`` section that puts the decayed contact counts (half-life 21 days, read back 28
#: days) in its contexts. The purchase is the step of the response that revenue follows, and
#: nurturing moves it most (in the simulator, the accept logit gains the customer's readiness
#: in full, the click logit a third of it); the click is 3.5 times more frequent and feels
#: fatigue twice as much, so counting both learns faster than the purchase alone (measured in
#: the README). Not a revenue sum: a day's revenue is mostly bills the decision did not cause,
#: and that noise swamped the signal. ``weights`` (None: 1 per step) and ``window`` are the
#: funnel's: charging a churn within the window (``events`` ending in ``"churn"`` with a
#: negative weight, a window of 1 or 7 days) was measured and lost revenue (README, "Where the
#: engagement edge comes from"), so the arm counts the two steps within a day. ``churn_value``
#: is ``lookahead_ts``'s charge for churn (0: none), learned from churns within
#: ``churn_window`` of each contact; 5.1 is a customer's 28-day revenue in purchases. Plain,
#: it took more of both edges but cost 0.85 revenue where the mechanisms are off. With
#: ``churn_shrinkage`` and ``lookahead_shrinkage`` (each level's charge and ``M g`` shrunk by
#: its empirical Bayes credibility, :mod:`bandit.credibility`) the arm took at least 27% of
#: the revenue edge in every world measured at 60 days (the arm without either: 12%) and
#: lost the least where the mechanisms are off (-0.08 against -0.11), but over 180 days the
#: plain charge took more at every seed measured (README, "Shrinking what the noise says"):
#: this favours the 60-day targets. A week-long churn window took less of the revenue edge
#: (30% against 46% at seed 0), so the window is a day. ``state_effects`` stays
#: ``"crossed"``: the pooled model took more of the retention edge but lost 0.25 revenue where
#: the mechanisms are off (README, "Pooled state effects"). ``centred`` (``[state] centred``)
#: adds the counts' expected parts under the logged policies, so the counts' effect is read
#: from their randomised part (:mod:`bandit.policies.lookahead_ts`); pooled and centred it
#: lost 0.16 less revenue than pooled alone where the mechanisms are off, but showed no
#: detectable difference from the crossed layout (README, "Centred counts"), so it stays off.
#: ``half_life`` may be a tuple of half-lives, one block of counts each. ``gate_level`` gates
#: the lifetime value (:mod:`bandit.policies.short_term_gate`): linear Thompson sampling on
#: the click chooses until an always-valid test at 5% shows the levels differ in ``M g`` or
#: the churn charge, with alternatives of spread ``gate_scale`` = 0.03 funnel points. With
#: ``short_term_reward = "own"`` the click is the reward's ``[reward.short_term]``, joined the
#: moment it is known, so the closed gate is the interaction arm decision for decision (the
#: same seed, contexts and rewards); ``"capped"`` (with ``short_term_cap`` = 1) learns the
#: funnel capped at 1 when the funnel's window closes, up to a day after the click learner,
#: which cost 0.034 and 0.044 revenue per customer on two of seed 1's three paths where the
#: mechanisms are off. Ungated, the arm lost 0.09 to 0.11 there. With the mechanisms on, the
#: gate opened from the burn-in's log on day 0 to 9 at 20,000 customers and day 11 to 28 at
#: 10,000 in every world measured (README, "The gate").
LOOKAHEAD: dict[str, Any] = {
    "events": ["click", "accept"],
    "weights": None,
    "window": timedelta(days=1),
    "churn_value": 5.1,
    "churn_window": timedelta(days=1),
    "churn_shrinkage": True,
    "lookahead_shrinkage": True,
    "state_effects": "crossed",
    "gate_level": 0.05,
    "gate_scale": 0.03,
    "short_term_cap": None,
    "short_term_reward": "own",
    "centred": False,
    "churn_event": "churn",
    "half_life": timedelta(days=21),
    "lookback": timedelta(days=28),
}
#: The ``[reward.surrogate]`` table of the ``surrogate`` arm (the KPI is the spec's reward).
SURROGATE: dict[str, Any] = {
    "window": "7d",
    "signals": ["click", "accept", "revenue"],
    "min_matured": 500,
    "refresh": 2000,
    "fallback": "early_sum",
}


def arm_spec(spec: ExperimentSpec, arm: str) -> ExperimentSpec:
    """The spec one arm of the comparison runs: its own key, policy and reward, and the
    holdout of the base spec (hashed on its ``holdout.salt``, else on its key), so every arm
    holds out the same customers."""
    data = spec.to_json_dict()
    data["key"] = f"{spec.key}-{arm}".replace("_", "-")[:64]
    data["holdout"] = {**data["holdout"], "salt": spec.holdout_salt}
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
    elif arm == "lookahead":
        known = set(hyper_parameters("lookahead_ts"))
        params = {name: value for name, value in spec.policy.params.items() if name in known}
        if LOOKAHEAD["churn_value"]:
            params["churn_value"] = LOOKAHEAD["churn_value"]
            params["churn_window"] = LOOKAHEAD["churn_window"].total_seconds() / 86_400
            params["churn_shrinkage"] = LOOKAHEAD["churn_shrinkage"]
        params["lookahead_shrinkage"] = LOOKAHEAD["lookahead_shrinkage"]
        params["state_effects"] = LOOKAHEAD["state_effects"]
        for name in ("gate_level", "gate_scale", "short_term_cap", "short_term_reward"):
            if LOOKAHEAD[name] is not None:
                params[name] = LOOKAHEAD[name]
        data["policy"] = {"name": "lookahead_ts", "params": params}
        data["state"] = {
            "contact_half_life": _seconds(LOOKAHEAD["half_life"]),
            "lookback": LOOKAHEAD["lookback"].total_seconds(),
            "churn_event": LOOKAHEAD["churn_event"],
        }
        if LOOKAHEAD["centred"]:
            data["state"]["centred"] = True
        # The funnel's ``event`` is its last step, filled in by the spec.
        funnel: dict[str, Any] = {"kind": "funnel", "events": list(LOOKAHEAD["events"])}
        if LOOKAHEAD["weights"] is not None:
            funnel["weights"] = list(LOOKAHEAD["weights"])
        window = LOOKAHEAD["window"].total_seconds()
        data["reward"] = {**funnel, "window": window, "default": click["default"]}
        if LOOKAHEAD["short_term_reward"] == "own":  # the gate's learner: the click, at once
            data["reward"]["short_term"] = click
    elif arm == "sequential":
        params = {**spec.policy.params, **SEQUENTIAL["params"]}
        if params.get("noise_variance", "auto") == "auto":  # fitted Q cannot learn it
            params["noise_variance"] = SEQUENTIAL["noise_variance"]
        data["policy"] = {"name": "fitted_q", "params": params}
        data["state"] = dict(SEQUENTIAL["state"])
        data["reward"] = {**_long_term(spec), "kind": "sum", "window": SEQUENTIAL["window"]}
    elif arm == "surrogate":
        data["reward"] = {**_long_term(spec), "kind": "surrogate", "surrogate": dict(SURROGATE)}
    elif arm != "engagement":
        raise ValueError(f"unknown arm '{arm}'; expected one of {list(KNOWN_ARMS)}")
    return parse_spec(data)


def _seconds(half_life: timedelta | Sequence[timedelta]) -> float | list[float]:
    """One half-life, or several (a block of counts each), in seconds as ``[state]`` takes
    them."""
    if isinstance(half_life, timedelta):
        return half_life.total_seconds()
    return [one.total_seconds() for one in half_life]


def _long_term(spec: ExperimentSpec) -> dict[str, Any]:
    """The spec's long-term KPI as a reward table (a revenue sum unless the spec sums another
    event), without the fields only a 'change' reward has."""
    reward = spec.reward
    event = reward.event if reward.kind == "sum" else "revenue"
    return {"event": event, "window": reward.window.total_seconds(), "default": 0.0}


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
    if reward.kind == "funnel" and reward.named_events == ("click", "accept"):
        return "funnel"
    return f"revenue_{days}d"


def arm_names(values: Sequence[str]) -> tuple[str, ...]:
    """Validate a list of arm names."""
    unknown = [value for value in values if value not in KNOWN_ARMS]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; expected some of {list(KNOWN_ARMS)}")
    return tuple(values)


def churn_label_event(spec: ExperimentSpec) -> str | None:
    """The ``[state] churn_event`` when the spec's policy learns churn (``lookahead_ts`` with
    ``churn_value > 0``), else None."""
    if spec.policy.name != "lookahead_ts" or spec.state is None:
        return None
    return spec.state.churn_event if spec.policy.params.get("churn_value", 0.0) > 0 else None
