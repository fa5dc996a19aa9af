"""Linear Thompson sampling with a Gaussian likelihood."""

from __future__ import annotations

from bandit.policies.linear import ThompsonLinearPolicy


class LinearTSPolicy(ThompsonLinearPolicy):
    """Sample weights from the ridge posterior ``N(mu, scale^2 Sigma)`` and act greedily.

    Agrawal & Goyal 2013, "Thompson Sampling for Contextual Bandits with Linear Payoffs".
    The posterior update is the exact conjugate one, so updating in batches equals updating
    row by row.
    """

    name = "linear_ts"
