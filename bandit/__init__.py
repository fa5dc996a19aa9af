"""engage's pure-math core: decision spaces, policies, off-policy estimators, lift, state.

No I/O, no database, no web, no tracking: numpy and scipy only. Policies work on batches of
numpy arrays and their state exports to plain arrays. The long clock of learning has three
pieces here: the observable contact state of a customer (:mod:`bandit.contact_state`), a
value-function policy over it (:class:`FittedQPolicy`, registered as ``fitted_q``, whose
``update_transitions`` the engine calls with next states), and the surrogate index that
predicts a long-term KPI from early signals (:mod:`bandit.surrogate`).
"""

from bandit._validation import BanditValueError
from bandit.contact_state import (
    ContactDecay,
    ContactState,
    contact_feature_names,
    level_columns,
    state_feature_names,
    state_features,
)
from bandit.features import ActionFeatures
from bandit.policies import POLICIES, Decision, FittedQPolicy, Policy, make_policy
from bandit.space import DecisionSpace
from bandit.surrogate import IndexEstimate, SurrogateIndex, SurrogateStats, fit_surrogate_index

__all__ = [
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
]
