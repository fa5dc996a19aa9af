"""The truth for regret: every action's expected value today, from the world's own dynamics.

``click`` and ``accept`` are exact, and so is ``funnel``, their sum (the expected number of
the two steps reached). ``revenue_<W>d`` and ``retained_<W>d`` project the
customer's state W days ahead assuming no further contacts and drift frozen at today, exact
in fatigue and first order in the engagement and nurture increments (see
:func:`projection`); revenue counts spend as it accrues rather than when it is booked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from experiments.simulate import model
from experiments.simulate.response import Terms, click_terms, response_terms
from experiments.simulate.state import WorldState

#: The kinds without a window: the response's steps and the funnel that counts both.
_STEP_KINDS = ("click", "accept", "funnel")
_WINDOW_KIND = re.compile(r"(revenue|retained)_(\d+)d")
_CHUNK_CELLS = 2_000_000


def parse_kind(kind: object) -> tuple[str, int]:
    """``("click" | "accept" | "funnel", 0)`` or ``("revenue" | "retained", W)`` for a
    kind's name; ``ValueError`` for anything else."""
    window = _WINDOW_KIND.fullmatch(kind) if isinstance(kind, str) else None
    if kind not in _STEP_KINDS and window is None:
        raise ValueError(
            "'kind' must be 'click', 'accept', 'funnel', 'revenue_<W>d' or 'retained_<W>d' "
            f"(such as 'revenue_14d', 'retained_30d'); got {kind!r}"
        )
    if window is None:
        return str(kind), 0
    days = int(window.group(2))
    if days < 1:
        raise ValueError(f"'kind' needs a window of at least one day; got {kind!r}")
    return window.group(1), days


def expected_reward(state: WorldState, rows: np.ndarray, kind: str) -> np.ndarray:
    """True expected reward of every action for each of ``rows`` (valid ids) if contacted
    now, ``(n, n_actions)`` float64; 0 for churned customers. ``kind`` as in
    :meth:`~experiments.simulate.world.CustomerWorld.expected_reward`."""
    what, days = parse_kind(kind)
    n_actions = state.n_actions
    out = np.zeros((rows.shape[0], n_actions))
    every = np.arange(n_actions)[None, :]
    step = max(1, _CHUNK_CELLS // n_actions)
    for start in range(0, rows.shape[0], step):
        chunk = rows[start : start + step]
        if what == "click":
            value = click_terms(state, chunk, every).p_click
        elif what == "accept":
            value = response_terms(state, chunk, every).p_accept
        elif what == "funnel":
            terms = response_terms(state, chunk, every)
            value = terms.p_click + terms.p_accept
        else:
            value = window_value(state, chunk, response_terms(state, chunk, every), what, days)
        out[start : start + chunk.shape[0]] = value
    out[~state.customers.alive[rows]] = 0.0
    return out


@dataclass(frozen=True, eq=False)
class Outlook:
    """Moments of a W-day outlook (see :func:`projection`).

    Attributes:
        base: the no-accept moments ``(A, AF, AE, R, RF, RE)``, ``(n,)`` each: cumulative
            hazard and its fatigue and engagement sensitivities at the window's end, revenue
            and its fatigue and engagement weighted sums.
        accepted: the same after accepting each offer, ``(n, K)`` each.
        renewal: ``(n, K)`` expected renewal revenue inside the window after accepting.
        constant: ``(n,)`` revenue that does not depend on the action (renewals of offers
            held, unprompted purchases).
        nurture_value: ``(n, K)`` revenue per unit of nurture on each offer carried.
    """

    base: tuple[np.ndarray, ...]
    accepted: tuple[np.ndarray, ...]
    renewal: np.ndarray
    constant: np.ndarray
    nurture_value: np.ndarray


def projection(state: WorldState, rows: np.ndarray, days: int) -> Outlook:
    """Moments of the W-day outlook of ``rows`` with no contact and after accepting each
    offer, from which :func:`window_value` assembles every action's value.

    Paths over ``d = 0..W-1`` (today is ``d = 0``) with drift frozen: engagement
    ``m + phi^d (e - m)``, fatigue ``delta^d F``, active offers' retention and spend
    multipliers; hazard ``h_d`` and spend ``s_d`` from :mod:`~experiments.simulate.model`;
    survival after day d ``S_d = exp(-sum_{j<=d} h_j)``; revenue ``sum_d s_d S_d``.

    An action adds ``dF`` fatigue and ``de`` engagement today. The hazard is linear in
    fatigue, so ``dH_d / d dF = sum_{j<=d} h_j gamma delta^j / (1 + gamma F_j)`` is exact;
    the engagement increment enters the exponent linearly (``exp(-0.6 phi^j de) ~
    1 - 0.6 phi^j de``). Revenue ``sum_d s_d S_d exp(de b_d - dF a_d)`` is taken as
    ``(sum_d s_d S_d) exp(de mean(b) - dF mean(a))`` with means weighted by ``s_d S_d``:
    exact to first order, positive, and a lower bound (Jensen). Accepting offer k
    multiplies the hazard by ``exp(-retention_k)`` and the spend by ``1 +
    spend_change_k`` over the days it adds, and books its price today (and a renewal
    with its renewal probability if it expires inside the window). Unprompted purchases
    are first order in the nurture increment.
    """
    cfg, offers, c, day = state.config, state.semantics.offers, state.customers, state.day
    mech = state.mech
    n = rows.shape[0]
    d = np.arange(days)
    phi = mech.engagement_persistence**d
    delta = state.phi_fatigue**d
    nu = state.phi_nurture**d
    e0 = c.engagement[rows][:, None]
    level = c.engagement_level[rows][:, None]
    e_path = level + phi * (e0 - level)
    f_path = c.fatigue[rows][:, None] * delta
    remaining = c.active_until[rows] - day  # (n, K); <= 0 inactive
    on = (d[None, None, :] < remaining[:, :, None]).astype(np.float64)  # (n, K, W)
    retention_path = np.einsum("nkw,k->nw", on, offers.retention)
    log_mult_path = np.einsum("nkw,k->nw", on, np.log1p(offers.spend_change))
    gamma = state.gamma
    h0 = state.hazard_prefactor(rows)[:, None] * state.drift.churn_season(day, d)
    hazard0 = model.hazard(h0, e_path, f_path, retention_path, gamma, mech)
    spend0 = (c.base_spend[rows][:, None] * state.drift.spend_season(day, d)) * np.exp(
        mech.spend_engagement * e_path + log_mult_path
    )
    fatigue_weight = gamma * delta / (1.0 + gamma * f_path)
    engagement_weight = mech.hazard_engagement * phi

    def moments(hz: np.ndarray, sp: np.ndarray, fw: np.ndarray) -> tuple[np.ndarray, ...]:
        cumulative = np.cumsum(hz, axis=-1)
        survive = np.exp(-cumulative)
        a_fatigue = np.cumsum(hz * fw, axis=-1)
        a_engage = np.cumsum(hz * engagement_weight, axis=-1)
        earned = sp * survive
        last = [np.ascontiguousarray(x[..., -1]) for x in (cumulative, a_fatigue, a_engage)]
        return (
            *last,
            earned.sum(-1),
            (earned * a_fatigue).sum(-1),
            (earned * (mech.spend_engagement * phi + a_engage)).sum(-1),
            survive,
        )

    base = moments(hazard0, spend0, fatigue_weight)
    survive0 = base[-1]

    # Accepting offer k: its retention and spend change over the days it adds.
    start = np.maximum(remaining, 0)  # (n, K)
    end = start + offers.duration[None, :]
    added = (d[None, None, :] >= start[:, :, None]) & (d[None, None, :] < end[:, :, None])
    hazard_k = hazard0[:, None, :] * np.exp(-offers.retention[None, :, None] * added)
    spend_k = spend0[:, None, :] * np.exp(np.log1p(offers.spend_change)[None, :, None] * added)
    accepted = moments(hazard_k, spend_k, fatigue_weight[:, None, :])  # (n, K) each
    ready = state.readiness(rows, penalise_active=False)  # (n, K)
    renew_p = model.renew_probability(ready, e0, mech)
    # A renewal happens on the offer's last day, d = end - 1, if the customer stays.
    expires_inside = (end <= days) & (offers.renewable & offers.is_offer)[None, :]
    at = np.clip(end - 1, 0, days - 1)
    survive_at = np.take_along_axis(accepted[-1], at[:, :, None], axis=2)[:, :, 0]
    renewal = np.where(expires_inside, renew_p * offers.price[None, :] * survive_at, 0.0)

    # Renewals of offers already held (the same whatever we do).
    held = (remaining >= 1) & (remaining <= days) & (offers.renewable & offers.is_offer)[None, :]
    at_held = np.clip(remaining - 1, 0, days - 1)
    held_value = np.where(
        held, renew_p * offers.price[None, :] * survive0[np.arange(n)[:, None], at_held], 0.0
    ).sum(axis=1)

    # Unprompted purchases: their level, and their first-order gain per unit of nurture.
    buyable = (offers.renewable & offers.is_offer)[None, :, None] * (1.0 - on)  # (n, K, W)
    p_buy = model.organic_probability(ready, cfg.organic_rate, mech)  # (n, K)
    slope = (
        cfg.organic_rate
        * model.sigmoid(ready + mech.organic_shift)
        * (1.0 - model.sigmoid(ready + mech.organic_shift))
    )
    exposure = (buyable * survive0[:, None, :]).sum(-1)  # (n, K)
    decayed = (buyable * (survive0[:, None, :] * nu)).sum(-1)
    organic_level = (p_buy * offers.price[None, :] * exposure).sum(axis=1)
    room = np.maximum(1.0 - c.nurture[rows] / mech.nurture_cap, 0.0)
    organic_slope = slope * offers.price[None, :] * decayed * room  # (n, K)
    return Outlook(
        base=base[:-1],
        accepted=accepted[:-1],
        renewal=renewal,
        constant=held_value + organic_level,
        nurture_value=organic_slope @ offers.spill.T,  # (n, K) per offer carried
    )


def window_value(
    state: WorldState, rows: np.ndarray, terms: Terms, what: str, days: int
) -> np.ndarray:
    """Every action's expected ``revenue`` or ``retained`` over ``days``, ``(n, A)``."""
    cfg, sem = state.config, state.semantics
    offers, messages = sem.offers, sem.messages
    p = projection(state, rows, days)
    k = terms.offer[0]  # (A,)
    m = terms.message[0]
    gain = offers.engagement_gain[None, :]
    P = terms.p_accept
    dF = terms.d_fatigue
    de = messages.engagement[m][None, :] * terms.attention if cfg.nurturing else None
    A0, AF, AE, R0, RF, RE = (x[:, None] for x in p.base)
    A0k, AFk, AEk, R0k, RFk, REk = p.accepted  # (n, K) each
    if what == "retained":
        # exp(-(A + dF AF - de AE)) without and with the accept (which adds gain_k to de).
        log_stay = -(A0 + dF * AF)
        log_stay_k = (-A0k + gain * AEk)[:, k] - dF * AFk[:, k]
        if de is not None:
            log_stay += de * AE
            log_stay_k += de * AEk[:, k]
        return (1.0 - P) * np.exp(log_stay) + P * np.exp(log_stay_k)
    # sum_d x_d exp(c . a_d) ~ (sum_d x_d) exp(c . mean a): exact to first order, > 0.
    per_spend = 1.0 / np.where(R0 > 0.0, R0, np.inf)
    per_spend_k = 1.0 / np.where(R0k > 0.0, R0k, np.inf)
    exponent = -dF * (RF * per_spend)
    exponent_k = (gain * REk * per_spend_k)[:, k] - dF * (RFk * per_spend_k)[:, k]
    if de is not None:
        exponent += de * (RE * per_spend)
        exponent_k += de * (REk * per_spend_k)[:, k]
    revenue = R0 * np.exp(exponent)
    revenue_k = R0k[:, k] * np.exp(exponent_k)
    revenue_k += (offers.price[None, :] + p.renewal)[:, k]
    value = revenue + P * (revenue_k - revenue) + p.constant[:, None]
    if cfg.nurturing:
        read = state.mech.nurture_gain * messages.nurture[m][None, :] * terms.attention
        value += read * p.nurture_value[:, k]
    return value
