"""What a contact does to a customer's chance of leaving, learned from contact counts.

A fatiguing message raises the customer's churn hazard for weeks. A learner that values an
action by the response of the customer's later contacts (:mod:`bandit.policies.lookahead_ts`)
does not see the contacts a churned customer never gets, so it needs the hazard itself. With
the decayed contact counts per factor level (:mod:`bandit.contact_state`) at the end of the
context, a linear probability model of churn within a short window after a contact,

    P(churn within w days | x, a) = u(x, a) . theta,
    u(x, a) = [1, s + e_a, days since the previous contact],

reads how much each level's recent contacts raise the hazard: ``s`` is the contact state
before the contact (``B`` blocks of one count per level), ``e_a`` adds 1 to the levels of
action ``a`` in every block (the state the window starts from), and ``theta_{b, l} / w`` is the
daily hazard one unit of block ``b``'s count of level ``l`` adds. The model is a ridge
regression on sufficient statistics (``U^T U``, ``U^T y``), so a batch equals any split into
smaller batches. It is deliberately small (no context crossing): churn within a window is
rare (about 0.3% of contacts on the simulator), and a model with a weight per level and
context column would be noise.

Sending level ``l`` now adds 1 to its count, which fades as ``2^(-t / h_b)``; to first order
in the hazard it adds ``integral_0^inf theta_{b, l} / w 2^(-t / h_b) dt = theta_{b, l} h_b /
(w ln 2)`` expected churns. A customer who leaves loses ``V`` (``churn_value``, in reward
units), so level ``l``'s slot is charged

    shift_l = -V sum_b theta_{b, l} h_b / (w ln 2),

a constant per slot, added to the mean of every action's score: Thompson sampling's draws and
Monte Carlo propensities are those of the shifted Gaussian scores, exact as before. Every
action adds 1 to one level of each factor, so a part of ``theta`` common to a factor's levels
(which the model cannot tell from who is contacted often) shifts every action alike and does
not change the choice; only differences between levels do.

Churn after a contact is rare, so the estimated differences are noisy, and ``V h / (w ln 2)``
turns that noise into charges as large as the differences in response between actions: where
no level does harm, the charge alone steers the policy away from good actions. With
shrinkage (:func:`credible_shift`) each level's charge, relative to its factor's mean (the same
choices), is shrunk by its empirical Bayes credibility (:mod:`bandit.credibility`: to 0 where
the levels' spread is no more than their noise). The noise comes from the ridge posterior
``theta ~ N(theta_hat, sigma^2 (U^T U + lambda I)^{-1})``, with ``sigma^2`` the residual
variance of the labels read from the same sums (``y^T y = sum y`` for 0/1 labels: the
intercept's entry of ``U^T y``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from bandit.credibility import credible_levels

__all__ = [
    "charge_moments",
    "churn_design",
    "churn_shift",
    "credible_shift",
    "level_charges",
    "ridge_solve",
]


def churn_design(
    X: np.ndarray, action_levels: np.ndarray, first_count: int, n_levels: int, blocks: int
) -> np.ndarray:
    """``U`` of shape ``(n, 2 + blocks * n_levels)``: ``[1, s + e_a, days]`` per row.

    Args:
        X: contexts ``(n, d)`` ending with ``blocks`` blocks of ``n_levels`` counts (from
            column ``first_count``), then the days since the previous contact.
        action_levels: ``(n, F)`` the level (count column within a block) of each factor
            of each row's action.
        first_count, n_levels, blocks: where the counts start, and their layout.
    """
    n = X.shape[0]
    state = X[:, first_count : first_count + blocks * n_levels].astype(np.float64, copy=True)
    rows = np.arange(n)[:, None]
    for block in range(blocks):
        np.add.at(state, (rows, block * n_levels + action_levels), 1.0)
    return np.column_stack([np.ones(n), state, X[:, -1]])


def _ridge_factor(gram: np.ndarray, ridge: float) -> tuple[np.ndarray, bool]:
    """The Cholesky factor of ``U^T U + ridge I``, for :func:`scipy.linalg.cho_solve`."""
    return cho_factor(gram + ridge * np.eye(gram.shape[0]))


def ridge_solve(gram: np.ndarray, moment: np.ndarray, ridge: float) -> np.ndarray:
    """``theta = (U^T U + ridge I)^{-1} U^T y`` (Hoerl & Kennard 1970), by Cholesky."""
    return cho_solve(_ridge_factor(gram, ridge), moment)


def level_charges(
    value: float, half_lives: np.ndarray, window_days: float, n_levels: int, width: int
) -> np.ndarray:
    """``C`` ``(n_levels, width)`` with ``C theta`` each level's charge
    ``-V sum_b theta_{b, l} h_b / (w ln 2)`` (module docstring)."""
    weight = half_lives / (window_days * math.log(2.0))
    charges = np.zeros((n_levels, width))
    for block, per_block in enumerate(weight):
        start = 1 + block * n_levels
        charges[np.arange(n_levels), start + np.arange(n_levels)] = -value * per_block
    return charges


def credible_shift(
    gram: np.ndarray,
    moment: np.ndarray,
    ridge: float,
    charges: np.ndarray,
    factor_sizes: tuple[int, ...],
    n_slots: int,
    square_sum: float | None = None,
) -> np.ndarray:
    """``(n_slots,)``: each level's charge relative to its factor's mean, shrunk by its
    credibility (module docstring); 0 for the slots that are not levels.

    Args:
        gram, moment: a ridge model's ``U^T U`` and ``U^T y``, with an intercept in the
            first column of ``U``.
        ridge: the ridge ``lambda``.
        charges: ``C`` ``(levels, width)``, each level's charge ``C theta`` (for churn, from
            :func:`level_charges`).
        factor_sizes: how many levels each factor has, in the order of the level slots.
        n_slots: the policy's slots (levels, then pair biases).
        square_sum: ``y^T y``; None for 0/1 labels, where it is ``sum y``, the intercept's
            entry of ``U^T y``.
    """
    estimate, covariance = charge_moments(gram, moment, ridge, charges, square_sum)
    shift = np.zeros(n_slots)
    shift[: charges.shape[0]] = credible_levels(estimate, covariance, factor_sizes)
    return shift


def charge_moments(
    gram: np.ndarray,
    moment: np.ndarray,
    ridge: float,
    charges: np.ndarray,
    square_sum: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each level's charge ``C theta`` ``(levels,)`` and its covariance ``(levels, levels)``
    under the ridge posterior ``theta ~ N(theta_hat, sigma^2 (U^T U + lambda I)^{-1})``, with
    ``sigma^2`` the residual variance read from the sums (module docstring; arguments as in
    :func:`credible_shift`)."""
    factor = _ridge_factor(gram, ridge)
    theta = cho_solve(factor, moment)
    rows = gram[0, 0]
    labels_squared = moment[0] if square_sum is None else square_sum
    residual = labels_squared - 2.0 * theta @ moment + theta @ gram @ theta
    sigma2 = max(float(residual), 0.0) / max(rows - gram.shape[0], 1.0)
    return charges @ theta, sigma2 * charges @ cho_solve(factor, charges.T)


def churn_shift(
    theta: np.ndarray,
    value: float,
    half_lives: np.ndarray,
    window_days: float,
    n_levels: int,
    n_slots: int,
) -> np.ndarray:
    """``(n_slots,)``: ``-V sum_b theta_{b, l} h_b / (w ln 2)`` for each level slot ``l``
    (module docstring), 0 for the slots that are not levels (pair biases)."""
    shift = np.zeros(n_slots)
    shift[:n_levels] = level_charges(value, half_lives, window_days, n_levels, theta.size) @ theta
    return shift
