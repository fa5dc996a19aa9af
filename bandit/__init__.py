"""engage's pure-math core: decision spaces, policies, off-policy estimators, lift, state.

No I/O, no database, no web, no tracking: numpy and scipy only. Policies work on batches of
numpy arrays and their state exports to plain arrays.
"""

from bandit._validation import BanditValueError
from bandit.features import ActionFeatures
from bandit.policies import POLICIES, Decision, Policy, make_policy
from bandit.space import DecisionSpace

__all__ = [
    "POLICIES",
    "ActionFeatures",
    "BanditValueError",
    "Decision",
    "DecisionSpace",
    "Policy",
    "make_policy",
]
