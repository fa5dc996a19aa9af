"""Bandit policies behind one interface, and the registry behind :func:`make_policy`."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit._validation import BanditValueError
from bandit.policies.base import Decision, Policy
from bandit.policies.beta_ts import BetaTSPolicy, GaussianTSPolicy
from bandit.policies.drift_ts import DriftTSPolicy
from bandit.policies.epsilon_greedy import EpsilonGreedyPolicy
from bandit.policies.fitted_q import FittedQPolicy
from bandit.policies.fixed import FixedPolicy
from bandit.policies.kalman_ts import KalmanTSPolicy
from bandit.policies.linear_ts import LinearTSPolicy
from bandit.policies.linucb import LinUCBPolicy
from bandit.policies.logistic_ts import LogisticTSPolicy
from bandit.policies.lookahead_ts import LookaheadTSPolicy
from bandit.policies.uniform import UniformPolicy
from bandit.space import DecisionSpace

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (
        UniformPolicy,
        FixedPolicy,
        EpsilonGreedyPolicy,
        LinUCBPolicy,
        LinearTSPolicy,
        LogisticTSPolicy,
        KalmanTSPolicy,
        DriftTSPolicy,
        BetaTSPolicy,
        GaussianTSPolicy,
        FittedQPolicy,
        LookaheadTSPolicy,
    )
}


def make_policy(
    name: str,
    *,
    space: DecisionSpace,
    n_context: int,
    seed: int | np.random.Generator | None = None,
    **params: Any,
) -> Policy:
    """Build the policy registered as ``name`` with its hyper-parameters.

    Unknown names and unknown hyper-parameters raise ``BanditValueError`` naming the field.
    """
    if name not in POLICIES:
        raise BanditValueError(
            "policy", f"Unknown policy {name!r}; expected one of {sorted(POLICIES)}."
        )
    try:
        return POLICIES[name](space, n_context, seed=seed, **params)
    except TypeError as error:
        raise BanditValueError(
            "params", f"Bad hyper-parameters for policy {name!r}: {error}."
        ) from None


__all__ = [
    "POLICIES",
    "BetaTSPolicy",
    "Decision",
    "DriftTSPolicy",
    "EpsilonGreedyPolicy",
    "FittedQPolicy",
    "FixedPolicy",
    "GaussianTSPolicy",
    "KalmanTSPolicy",
    "LinUCBPolicy",
    "LinearTSPolicy",
    "LogisticTSPolicy",
    "LookaheadTSPolicy",
    "Policy",
    "UniformPolicy",
    "make_policy",
]
