"""What the customer's recent contacts do to the response, learned once for every action.

:class:`~bandit.policies.lookahead_ts.LookaheadTSPolicy` values an action by the response now
plus what the levels it adds to the customer's decayed contact counts do to the response of
later contacts, ``M sum_{l in a} g_l``. In the simulator, as in the customers it stands for,
fatigue and nurture are states of the *customer*: a tired customer answers every message less.
Crossing each count with every level's slot (the reward model's own layout,
:mod:`bandit.features`) spends ``S x L`` weights on what ``L`` weights say, learns each from a
share of the rows, and adds their noise to every action's score where no count matters.

The pooled model is one ridge regression over every contact,

    y = u(x, a) . theta + noise,     u(x, a) = [1, phi(x, a), s],

with ``phi(x, a)`` the reward model's own design on the context without its contact state
(each level's slot crossed with the context, :mod:`bandit.features`), so whatever the context
says about which action suits whom is explained there and not credited to the counts that the
policy's own choices leave behind, and ``s`` the contact state (``B`` blocks of one decayed
count per level, then the days since the last contact) entered once, not crossed.
``theta_{b, l}``, the weight of block ``b``'s count of level ``l``, is the change of any
contact's response per unit of that count. Sending ``l`` adds 1 to its count in every block,
and the customer's later contacts see it faded by their delay, ``M_b`` in all (the decayed
mass of later contacts), so level ``l``'s slot gains

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


def state_design(design: np.ndarray, state: np.ndarray) -> np.ndarray:
    """``U`` ``(n, 1 + p + k)``: ``[1, phi(x, a), s]`` per row.

    Args:
        design: ``(n, p)`` the reward model's design rows on the context without its state.
        state: ``(n, k)`` the contact state (counts, then the days since the last contact).
    """
    return np.column_stack([np.ones(design.shape[0]), design, state])


def state_charges(
    future_mass: np.ndarray, n_levels: int, first_count: int, width: int
) -> np.ndarray:
    """``C`` ``(n_levels, width)`` with ``C theta`` each level's ``sum_b M_b theta_{b, l}``.

    Args:
        future_mass: ``M_b`` per block of counts (blocks of ``n_levels`` counts follow one
            another from column ``first_count`` of ``u``).
        n_levels: how many level slots there are.
        first_count: the column of ``u`` where the first block of counts starts.
        width: the width of ``u``.
    """
    charges = np.zeros((n_levels, width))
    levels = np.arange(n_levels)
    for block, mass in enumerate(future_mass):
        charges[levels, first_count + block * n_levels + levels] += mass
    return charges
