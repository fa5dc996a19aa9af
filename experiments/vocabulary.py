"""engage's vocabulary: every status, group, outcome label and key scope, spelled once.

Each is a ``StrEnum``, so a member compares equal to its value (``DecisionStatus.OPEN == "open"``)
and is stored as plain text; the store's columns hold these values and nothing else. This module
imports nothing of engage, so every package may use it (``store`` and ``simulate`` import nothing
else of ``experiments``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Attribution",
    "DecisionStatus",
    "ExperimentStatus",
    "Group",
    "GuardrailStatus",
    "PromotionStatus",
    "Scope",
]


class ExperimentStatus(StrEnum):
    """Where an experiment is in its life: created, deciding, serving control only, or ended."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class Group(StrEnum):
    """The randomized arm of a customer: served by the policy, or by the control (the holdout)."""

    TREATMENT = "treatment"
    HOLDOUT = "holdout"


class DecisionStatus(StrEnum):
    """What became of a decision."""

    OPEN = "open"
    REWARDED = "rewarded"
    NEVER_ACTIVATED = "never_activated"
    SUPPRESSED = "suppressed"
    #: Served the control action while the experiment was paused: logged, never learned from.
    PAUSED = "paused"


class Attribution(StrEnum):
    """How an outcome was matched to a decision.

    Only ``attributed`` outcomes count in a reward. ``before_decision`` names a decision but
    occurred before its reward window opened (its creation, or a deferred decision's
    activation): the reward ignores it, so it is reported apart, never as ``attributed``.
    """

    ATTRIBUTED = "attributed"
    BEFORE_DECISION = "before_decision"
    UNATTRIBUTED = "unattributed"
    LATE = "late"
    UNKNOWN_DECISION = "unknown_decision"


class PromotionStatus(StrEnum):
    """What safe promotion made of a learned snapshot: waiting for fresh rows to judge it on,
    served, or kept from serving (the previous version serves on)."""

    PENDING = "pending"
    PROMOTED = "promoted"
    REJECTED = "rejected"


class GuardrailStatus(StrEnum):
    """How a guardrail KPI reads (:func:`bandit.guardrails.non_inferiority`): within its
    margin, beyond it, or not known either way yet (with always-valid confidence)."""

    HOLDING = "holding"
    BREACHED = "breached"
    UNDECIDED = "undecided"


class Scope(StrEnum):
    """What an API key may do."""

    ADMIN = "admin"
    DECIDE = "decide"
    READ = "read"
