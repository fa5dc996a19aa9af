"""What the customer's recent contacts do to the response, learned once for every action.

:class:`~bandit.policies.lookahead_ts.LookaheadTSPolicy` values an action by the response now
plus what the levels it adds to the customer's decayed contact counts do to the response of
later contacts, ``M sum_{l in a} g_l``. In the simulator, as in the customers it stands for,
fatigue and nurture are states of the *customer*: a tired customer answers every message less.
Crossing each count with every level's slot (the reward model's own layout,
:mod:`bandit.features`) spends ``S x L`` weights on what ``L`` weights say, learns each from a
share of the rows, and adds their noise to every action's score where no count matters.

The pooled model is one ridge regression over every contact,

    y = u(x, a) . theta + noise,     u(x, a) = [1, x, e_a],

with ``x`` the whole context (its contact state included: ``B`` blocks of one count per
level, then the days since the last contact) and ``e_a`` one indicator per level of action
``a`` (what the action itself earns now). ``theta_{b, l}``, the weight of block ``b``'s count
of level ``l``, is the change of any contact's response per unit of that count. Sending ``l``
adds 1 to its count in every block, and the customer's later contacts see it faded by their
delay, ``M_b`` in all (the decayed mass of later contacts), so level ``l``'s slot gains

    shift_l = sum_b M_b theta_{b, l},

a constant per slot, added to the mean of every action's score (propensities stay exact).
Every action adds one level of each factor, so only differences between a factor's levels
change a choice; with shrinkage those differences are shrunk by their empirical Bayes
credibility under the ridge posterior (:func:`bandit.churn.credible_shift`,
:mod:`bandit.credibility`), so where no level does harm the shift is (almost) nothing.
The model is kept as sums (``U^T U``, ``U^T y``, ``y^T y``), so a batch equals any split.
"""

from __future__ import annotations

import numpy as np

__all__ = ["state_charges", "state_design"]


def state_design(X: np.ndarray, action_levels: np.ndarray, n_levels: int) -> np.ndarray:
    """``U`` ``(n, 1 + d + n_levels)``: ``[1, x, e_a]`` per row.

    Args:
        X: contexts ``(n, d)``, contact state included.
        action_levels: ``(n, F)`` the level slot of each factor of each row's action.
        n_levels: how many level slots there are (all factors).
    """
    n, width = X.shape
    U = np.zeros((n, 1 + width + n_levels))
    U[:, 0] = 1.0
    U[:, 1 : 1 + width] = X
    rows = np.arange(n)[:, None]
    np.add.at(U, (rows, 1 + width + action_levels), 1.0)
    return U


def state_charges(
    future_mass: np.ndarray, block_starts: np.ndarray, n_levels: int, width: int
) -> np.ndarray:
    """``C`` ``(n_levels, width)`` with ``C theta`` each level's ``sum_b M_b theta_{b, l}``.

    Args:
        future_mass: ``M_b`` per block of counts.
        block_starts: the context column where each block of counts starts.
        n_levels: how many level slots there are.
        width: the width of ``u`` (``1 + d + n_levels``).
    """
    charges = np.zeros((n_levels, width))
    levels = np.arange(n_levels)
    for mass, start in zip(future_mass, block_starts, strict=True):
        charges[levels, 1 + int(start) + levels] += mass
    return charges
