"""What generic policy tests need to build every registered policy."""

from __future__ import annotations

from bandit import POLICIES, DecisionSpace


def context_width(name: str, space: DecisionSpace, n_context: int) -> int:
    """``n_context``, widened for a policy whose context must end with the contact state
    (one decayed count per level, then the days since the last contact)."""
    if POLICIES[name].needs_contact_state:
        return max(n_context, sum(space.factor_sizes) + 1)
    return n_context
