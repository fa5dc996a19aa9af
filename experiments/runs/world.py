"""The simulated world of an ``engage run``, built once from the spec and the run's options.

Every arm and both oracles live in a world of the same :class:`~experiments.simulate.WorldConfig`
(same seed, mechanisms, level semantics, constants and burn-in), so they face the same
customers with the same luck; only what they send makes their worlds differ. The spec's
``[simulation]`` section (:class:`~experiments.spec.SimulationSpec`) says what the levels mean,
the constants of behaviour and the burn-in; the spec's contact rules are the cadence of the
burn-in's business as usual and of the oracles (:func:`contact_rules`). The lift report's
pre-period covariates are read from the world on day 0 (:func:`pre_period`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from experiments.engine.holdout import assign_group
from experiments.simulate import ContactRules, CustomerWorld, WorldConfig
from experiments.spec import ExperimentSpec
from experiments.vocabulary import Group

if TYPE_CHECKING:
    from experiments.runs.simulation import RunOptions

__all__ = ["contact_rules", "holdout_mask", "pre_period", "world_config"]


def contact_rules(spec: ExperimentSpec) -> ContactRules:
    """The spec's contact rules in the simulator's plain numbers: at most ``max_decisions``
    per ``window`` (whole days, rounded up) and its quiet hours; no rules when it has none."""
    contact = spec.contact
    days = max(1, math.ceil(contact.window.total_seconds() / 86_400))
    quiet = None
    if contact.quiet_hours is not None:
        start, end = contact.quiet_hours
        quiet = (start, end)
    return ContactRules(
        max_decisions=contact.max_decisions, per_days=min(days, 366), quiet_hours=quiet
    )


def world_config(spec: ExperimentSpec, options: RunOptions) -> WorldConfig:
    """The world every arm and oracle of the run lives in (see the module docstring).

    ``usage`` events are emitted only when the reward counts them (they are many and the
    runner reports nothing else of them); the choice draws no random numbers, so it changes
    no other event.
    """
    simulation = spec.simulation
    return WorldConfig(
        n_customers=options.customers,
        n_days=options.days,
        seed=options.seed,
        fatigue=options.fatigue,
        nurturing=options.nurturing,
        drift=options.drift,
        emit_usage="usage" in spec.reward.named_events,
        levels=simulation.level_semantics(),
        mechanism=simulation.mechanism_value(),
        burn_in_days=simulation.burn_in_days,
        burn_in_rules=contact_rules(spec),
    )


def holdout_mask(spec: ExperimentSpec, customers: int) -> np.ndarray:
    """``(customers,)`` bool: who the engine holds out of ``spec`` (customer ``i`` is
    ``c<i>``), hashed on ``holdout.salt`` when set, else on the key, as the engine does."""
    salt = spec.holdout_salt
    share = spec.holdout.share
    return np.array(
        [assign_group(salt, f"c{index}", share) == Group.HOLDOUT for index in range(customers)],
        dtype=bool,
    )


def pre_period(world: CustomerWorld, spec: ExperimentSpec) -> dict[str, np.ndarray] | None:
    """Every customer's ``[report] covariates`` on day 0, before any decision: the pre-period
    values the lift report adjusts on (None when the spec names none). Reading contexts draws
    no random numbers, so the world's path is the same with or without covariates."""
    names = spec.report.covariates if spec.report is not None else []
    if not names:
        return None
    rows = world.contexts(np.arange(world.config.n_customers))
    return {name: np.array([row[name] for row in rows], dtype=np.float64) for name in names}
