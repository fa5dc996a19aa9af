"""Monte Carlo choice probabilities of Thompson sampling, with propensities that stay exact.

Thompson sampling chooses ``argmax_a s_a`` for one posterior draw ``s`` of the action scores;
the probability ``pi(a | x)`` of that choice has no closed form in general. Every Thompson
policy here draws ``M`` score vectors per row, takes the share ``p_hat(a | x)`` of draws each
eligible action wins, and then samples the action from ``p_hat``. Given the draws, the
action is chosen with probability ``p_hat(a | x)`` exactly, and that is the propensity
logged; over the draws ``E[p_hat(a | x)] = pi(a | x)``, so the policy is Thompson sampling
in law. Inverse-propensity estimates stay unbiased because the draws do not depend on the
rewards.

**Common random numbers.** The rows of a batch share one set of standard normal draws
``eps`` (M, k): row ``i``'s draw ``m`` is ``mean_i + L_i eps_m`` with its own mean and
factor ``L_i``, so each row's ``M`` draws are independent draws of its own posterior (the
law of one row's ``p_hat`` is unchanged) while a batch of ``n`` rows costs ``M k`` normals
instead of ``n M k``. Rows of one batch are then dependent through ``eps``; the propensity is
still the exact conditional probability of each row's choice, which is what
inverse-propensity weighting needs.

**Clear winners.** When the scores of action ``a`` are ``mean_a + spread_a eps_{m,a}`` with
independent components (one block per arm), the lowest draw of an action is
``mean_a + spread_a min_m eps_{m,a}`` and the highest ``mean_a + spread_a max_m eps_{m,a}``.
A row where one action's lowest draw beats every other action's highest draw has
``p_hat = 1`` for that action: exactly what the full comparison gives, without forming the
``(M, A)`` scores of that row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bandit.space import DecisionSpace

#: Largest number of (row, draw, action) cells a Monte Carlo step holds in memory at once.
MAX_DRAW_CELLS = 2_000_000
#: Contenders are compared pair by pair (a maximum over each row's contenders) for up to
#: this many actions and from ``LONG_DRAW_AXIS`` (row, draw) cells up; below, one ``argmax``
#: over the full scores is cheaper than finding the contenders.
SHORT_ACTION_AXIS = 32
LONG_DRAW_AXIS = 2_048


def winner_frequencies(draw_scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """How often each action wins across Monte Carlo draws: ``(n, M, A)`` -> ``(n, A)``.

    Ineligible actions (``mask`` (n, A) False) never win; ties go to the lowest index.
    """
    n_actions = draw_scores.shape[2]
    if mask.all():
        winners = draw_scores.argmax(axis=2)
    else:
        winners = np.where(mask[:, None, :], draw_scores, -np.inf).argmax(axis=2)
    return _shares(winners, n_actions)


def factored_winner_frequencies(
    slots: np.ndarray, mask: np.ndarray, space: DecisionSpace, incidence: np.ndarray
) -> np.ndarray:
    """:func:`winner_frequencies` of additive scores, from the slot draws ``(n, M, S)``.

    In a factored space with one slot per level and no other slots, an action's score is the
    sum of its levels' slot values, so the best action of a draw among every combination of
    the levels a row allows is each factor's best allowed level: ``O(S)`` per draw instead of
    scoring all ``A`` actions. A level is allowed in a row when some eligible action has it
    (``mask`` (n, A), :meth:`DecisionSpace.allowed_levels`); ``incidence`` (S, A) scores the
    draws scored in full. Where the combination found is itself eligible it
    is the draw's winner, and ties go to the lowest index as in :func:`winner_frequencies`
    (actions are numbered in mixed radix, so the lowest tied level of every factor is the
    lowest tied action). The draws whose combination is not eligible (an exclusion rule, or a
    mask that is not a product of levels) are scored in full.
    """
    n_actions = mask.shape[1]
    sizes = space.factor_sizes
    allowed = space.allowed_levels(mask)  # (n, S)
    open_slots = np.where(allowed[:, None, :], slots, -np.inf)
    codes = []
    start = 0
    for size in sizes:
        codes.append(open_slots[:, :, start : start + size].argmax(axis=2))
        start += size
    winners = np.ravel_multi_index(tuple(codes), sizes)  # (n, M)
    rows, draws = np.nonzero(~np.take_along_axis(mask, winners, axis=1))
    if rows.size:
        scores = np.where(mask[rows], slots[rows, draws] @ incidence, -np.inf)
        winners[rows, draws] = scores.argmax(axis=1)
    return _shares(winners, n_actions)


def _shares(winners: np.ndarray, n_actions: int) -> np.ndarray:
    """Winning index per row and draw ``(n, M)`` -> share of draws per action ``(n, A)``."""
    n, n_draws = winners.shape
    flat = (winners + n_actions * np.arange(n)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n * n_actions).reshape(n, n_actions)
    return counts / n_draws


def independent_winner_frequencies(
    mean: np.ndarray, spread: np.ndarray, noise: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Winner shares of the draws ``mean_i + spread_i * noise_m``, ``(n, A)``.

    Shapes: mean and spread (n, A) with ``spread >= 0``, noise (M, A) shared by the rows,
    mask (n, A). Equals :func:`winner_frequencies` on the full ``(n, M, A)`` scores, ties
    included. In batches of more than a few rows only each row's contenders are compared:
    the eligible actions whose highest draw reaches the row's highest lowest draw (any other
    action loses every draw to that one). A row with one contender has a clear winner
    (module docstring), which gets share 1 without comparing draws.
    """
    n, n_actions = mean.shape
    n_draws = noise.shape[0]
    if n == 1:
        return _one_row_shares(mean[0], spread[0], noise, mask[0])
    if n * n_draws < LONG_DRAW_AXIS or n_actions > SHORT_ACTION_AXIS:
        return _compare_draws(mean, spread, noise, mask)
    # spread * bound + mean rounds exactly as the draws do, so by the monotonicity of
    # rounding ``low`` and ``high`` are the smallest and largest of each action's draws.
    # Extremes are taken across the rows of transposed copies: numpy reduces an axis of a
    # few entries per row several times slower than it combines whole rows.
    by_action = np.ascontiguousarray(noise.T)  # (A, M)
    low = spread * np.minimum.reduce(by_action, axis=1)
    low += mean
    masked = not mask.all()
    if masked:
        np.copyto(low, -np.inf, where=~mask)
    high = spread * np.maximum.reduce(by_action, axis=1)
    high += mean
    contender = high >= np.maximum.reduce(np.ascontiguousarray(low.T), axis=0)[:, None]
    if masked:
        contender &= mask
    count = row_counts(contender, np.uint8)  # A <= SHORT_ACTION_AXIS: a byte holds it
    shares = contender / 1.0  # share 1 for the one contender of a clear row
    if count.max() > 1:
        _contender_shares(shares, mean, spread, noise, by_action, contender, count, mask)
    return shares


def _contender_shares(
    shares: np.ndarray,
    mean: np.ndarray,
    spread: np.ndarray,
    noise: np.ndarray,
    by_action: np.ndarray,
    contender: np.ndarray,
    count: np.ndarray,
    mask: np.ndarray,
) -> None:
    """Write into ``shares`` (n, A) the winner shares of the rows with several contenders.

    ``by_action`` is ``noise`` (M, A) transposed into contiguous rows (A, M). ``contender``
    (n, A) marks each row's contenders and ``count`` (n,) counts them. The
    open rows (``count > 1``) are sorted by decreasing count and their contenders listed
    rank by rank (every open row's first contender, then the second contender of the rows
    that have one, ...). Rank ``k`` then covers the first ``n_k`` sorted rows, so each rank's
    draws form one contiguous ``(n_k, M)`` block: a running maximum over the blocks gives
    every row's best draw without padding or scattering, and a draw is won where it equals
    that maximum. The work is a few passes over the contenders' ``(pairs, M)`` draws.
    """
    n_draws = noise.shape[0]
    n_open = int(np.count_nonzero(count > 1))
    # The open rows, most contenders first. Counts and ranks are bytes (at most
    # SHORT_ACTION_AXIS), which numpy's stable sort orders by radix sort.
    order = np.argsort(~count, kind="stable")[:n_open]
    sorted_contender = contender[order]
    position, action = np.nonzero(sorted_contender)  # row by row
    rank = np.add.accumulate(sorted_contender.view(np.uint8), axis=1)[sorted_contender]  # 1: first
    rank_major = np.argsort(rank, kind="stable")  # rank by rank, rows in order within a rank
    action = action[rank_major]
    position = position[rank_major]
    sizes = np.bincount(rank).tolist()[1:]  # rows holding each rank: the first n_k sorted rows
    row = order[position]
    cell = row * mean.shape[1] + action  # flat (row, action) index: one take per gather
    scores = np.take(by_action, action, axis=0)
    scores *= np.take(spread, cell)[:, None]
    scores += np.take(mean, cell)[:, None]
    # Every open row has a second contender, so the first two ranks start the maximum.
    best = np.maximum(scores[:n_open], scores[n_open : 2 * n_open])
    start = 2 * n_open
    for size in sizes[2:]:
        np.maximum(best[:size], scores[start : start + size], out=best[:size])
        start += size
    # One comparison per rank block against the best of its rows: no (pairs, M) gather of
    # each pair's best draws, which costs more than the calls it saves even at 8 ranks.
    won = np.empty(scores.shape, dtype=bool)
    start = 0
    for size in sizes:
        np.equal(scores[start : start + size], best[:size], out=won[start : start + size])
        start += size
    wins = row_counts(won, _count_type(n_draws))
    np.put(shares, cell, wins / n_draws)
    # Every draw has a winner, so the wins add up to M per open row unless two contenders tie
    # exactly on a draw (both counted). Such rows are rare (equal scores) and are redone with
    # argmax, which gives the draw to the lowest index.
    if int(wins.sum(dtype=np.intp)) != n_draws * n_open:
        per_row = np.bincount(position, weights=wins, minlength=n_open)
        tied = order[per_row != n_draws]
        scores = mean[tied, None, :] + spread[tied, None, :] * noise
        shares[tied] = winner_frequencies(scores, mask[tied])


def row_counts(flags: np.ndarray, dtype: type[np.integer]) -> np.ndarray:
    """How many of each row's booleans are true, as ``dtype``: a sum over the booleans' bytes
    (one reduce, cheaper than ``count_nonzero`` along an axis)."""
    return np.add.reduce(flags.view(np.uint8), axis=1, dtype=dtype)


def _count_type(n_draws: int) -> type[np.unsignedinteger]:
    """The narrowest unsigned integer that counts up to ``n_draws`` (a cheaper sum)."""
    if n_draws < 256:
        return np.uint8
    if n_draws < 65_536:
        return np.uint16
    return np.uint64


def _one_row_shares(
    mean: np.ndarray, spread: np.ndarray, noise: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """:func:`winner_frequencies` of one row's draws ``mean + spread * noise_m``, ``(1, A)``.

    A batch of one is what the service decides on; its ``(M, A)`` scores are few, so the
    cost is the number of numpy calls, which this path keeps to a handful.
    """
    scores = spread * noise
    scores += mean
    if not mask.all():
        scores[:, ~mask] = -np.inf
    counts = np.bincount(scores.argmax(axis=1), minlength=mean.shape[0])
    return (counts / noise.shape[0])[None, :]


def _compare_draws(
    mean: np.ndarray, spread: np.ndarray, noise: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Winner shares of every draw, in row chunks of at most ``MAX_DRAW_CELLS`` cells."""
    n, n_actions = mean.shape
    rows_per_chunk = max(1, MAX_DRAW_CELLS // (noise.shape[0] * n_actions))
    parts = []
    for start in range(0, n, rows_per_chunk):
        part = slice(start, start + rows_per_chunk)
        scores = mean[part, None, :] + spread[part, None, :] * noise
        parts.append(winner_frequencies(scores, mask[part]))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
