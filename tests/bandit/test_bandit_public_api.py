"""bandit's public names are pinned: adding or removing one is a deliberate change here."""

from __future__ import annotations

import bandit
import bandit.policies

PUBLIC_NAMES = {
    "POLICIES",
    "ActionFeatures",
    "BanditValueError",
    "ContactDecay",
    "ContactState",
    "Decision",
    "DecisionSpace",
    "FittedQPolicy",
    "IndexEstimate",
    "Policy",
    "SurrogateIndex",
    "SurrogateStats",
    "contact_feature_names",
    "fit_surrogate_index",
    "level_columns",
    "make_policy",
    "state_feature_names",
    "state_features",
}


def test_bandit_all_is_pinned() -> None:
    assert set(bandit.__all__) == PUBLIC_NAMES
    assert len(bandit.__all__) == len(PUBLIC_NAMES)
    assert all(hasattr(bandit, name) for name in bandit.__all__)


def test_every_registered_policy_class_is_public_in_bandit_policies() -> None:
    for cls in bandit.POLICIES.values():
        assert cls.__name__ in bandit.policies.__all__
        assert getattr(bandit.policies, cls.__name__) is cls
    assert bandit.POLICIES["fitted_q"] is bandit.FittedQPolicy
