"""The simulated customers' behaviour as small pure functions shared by the world's daily
step and its expected-value projection, so the truth used for regret is the dynamics, and
the constants they use as one validated value, :class:`Mechanism`.

Notation (per customer): ``e`` engagement, ``F`` fatigue, ``R`` readiness (a logit) for the
offer in question, ``fit`` the channel and timing fit, ``rho = relevance x tanh(R +
relevance_centre)`` the personalisation bonus. With the default :class:`Mechanism`:

- click:            ``P(click) = sigmoid(-2.2 + 0.5 e + message + offer appeal + 0.35 R
                    + rho + fit + other factors - fatigue_response F)``
- accept | click:   ``sigmoid(0.3 + R + message + rho + other factors + 0.2 e
                    - 0.5 fatigue_response F)`` (0 for ``none``)
- read (attention): ``sigmoid(click logit + 3)``: nurturing and engagement gains scale with it
- churn hazard:     ``h = h0 (1 + fatigue_churn F) exp(-0.6 e - sum of active retentions)``
                    per day, ``h0`` from plan, tenure, a personal frailty and the season;
                    linear in fatigue so the projection is exact in it
- daily spend:      ``s = s0 exp(0.2 e) prod(1 + spend change of active offers)``
- engagement:       ``e' = m + 0.97 (e - m) + 0.06 noise`` (``m`` the customer's own level)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from experiments.simulate.checks import check_fields

_INF = math.inf


@dataclass(frozen=True)
class Mechanism:
    """The constants of the customers' behaviour (a value; hashable). The defaults are the
    world every test and measurement was made on.

    Response (logit terms):
        click_base, click_engagement, click_interest: the click logit's intercept and its
            weights on engagement and on readiness.
        accept_base, accept_engagement: the accept-given-click logit's intercept and its
            weight on engagement.
        attention_shift: the read logit is the click logit plus this.
        relevance_centre: readiness at which a personalised framing's bonus changes sign.
        already_active: readiness lost for an offer the customer already holds.
        timing_curvature, timing_floor: click logit lost per squared hour between slot and
            preferred hour, and its floor.
        night_click: click logit shift of a night slot.

    Fatigue:
        fatigue_response: click logit lost per unit of fatigue.
        accept_fatigue_share: the share of it the accept logit loses.
        fatigue_churn: relative churn hazard added per unit of fatigue.
        fatigue_half_life: days for fatigue to halve.
        timing_fatigue: fatigue multiplier gained per hour between slot and preferred hour.
        night_fatigue: ... and at night (1 doubles it).
        irrelevance_fatigue: how much more an unwanted offer tires (0.5: up to 50% more).

    Nurturing:
        nurture_gain: readiness logit an educational message adds when read (others in
            proportion to their ``nurture``), before saturation.
        nurture_half_life: days for the nurture stock to halve.
        nurture_cap: the nurture stock's ceiling (gains shrink as it fills).

    Lifetime:
        hazard_engagement, spend_engagement, usage_engagement: weights of engagement in the
            log churn hazard (negative sign applied), log spend and log usage.
        engagement_persistence, engagement_noise: engagement's daily reversion factor to
            the customer's level and its noise.
        renew_base: the renewal logit's intercept (``R + 0.5 e + renew_base``).
        organic_shift: the unprompted purchase logit's intercept (``R + organic_shift``).
    """

    click_base: float = -2.2
    click_engagement: float = 0.5
    click_interest: float = 0.35
    accept_base: float = 0.3
    accept_engagement: float = 0.2
    attention_shift: float = 3.0
    relevance_centre: float = 1.5
    already_active: float = -1.5
    timing_curvature: float = 0.05
    timing_floor: float = -2.5
    night_click: float = -0.4
    fatigue_response: float = 0.3
    accept_fatigue_share: float = 0.5
    fatigue_churn: float = 0.15
    fatigue_half_life: float = 7.0
    timing_fatigue: float = 0.08
    night_fatigue: float = 1.0
    irrelevance_fatigue: float = 0.5
    nurture_gain: float = 0.8
    nurture_half_life: float = 30.0
    nurture_cap: float = 2.5
    hazard_engagement: float = 0.6
    spend_engagement: float = 0.2
    usage_engagement: float = 0.3
    engagement_persistence: float = 0.97
    engagement_noise: float = 0.06
    renew_base: float = 1.0
    organic_shift: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self, _MECHANISM_LIMITS)


_MECHANISM_LIMITS: dict[str, tuple[float, float]] = {
    "click_base": (-20.0, 20.0),
    "click_engagement": (-5.0, 5.0),
    "click_interest": (-5.0, 5.0),
    "accept_base": (-20.0, 20.0),
    "accept_engagement": (-5.0, 5.0),
    "attention_shift": (-20.0, 20.0),
    "relevance_centre": (-10.0, 10.0),
    "already_active": (-20.0, 0.0),
    "timing_curvature": (0.0, 10.0),
    "timing_floor": (-20.0, 0.0),
    "night_click": (-20.0, 20.0),
    "fatigue_response": (0.0, _INF),
    "accept_fatigue_share": (0.0, _INF),
    "fatigue_churn": (0.0, _INF),
    "fatigue_half_life": (1e-3, _INF),
    "timing_fatigue": (0.0, _INF),
    "night_fatigue": (0.0, _INF),
    "irrelevance_fatigue": (0.0, _INF),
    "nurture_gain": (0.0, _INF),
    "nurture_half_life": (1e-3, _INF),
    "nurture_cap": (1e-3, _INF),
    "hazard_engagement": (-5.0, 5.0),
    "spend_engagement": (-5.0, 5.0),
    "usage_engagement": (-5.0, 5.0),
    "engagement_persistence": (0.0, 1.0),
    "engagement_noise": (0.0, _INF),
    "renew_base": (-20.0, 20.0),
    "organic_shift": (-20.0, 20.0),
}


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-x))`` (about twice as fast as scipy's
    ``expit`` on large arrays; logits here stay far from the overflow range)."""
    with np.errstate(over="ignore"):
        out = np.exp(-np.asarray(x, dtype=np.float64))
    out += 1.0
    return np.reciprocal(out, out=out)


def circular_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between hours of the day on the 24-hour circle, in [0, 12]."""
    gap = np.abs(np.asarray(a) - np.asarray(b)) % 24.0
    return np.minimum(gap, 24.0 - gap)


def timing_fit(distance: np.ndarray, night: np.ndarray, mech: Mechanism) -> np.ndarray:
    """Click logit shift of a slot ``distance`` hours from the preferred hour."""
    curve = np.maximum(-mech.timing_curvature * distance**2, mech.timing_floor)
    return curve + mech.night_click * night


def timing_fatigue(distance: np.ndarray, night: np.ndarray, mech: Mechanism) -> np.ndarray:
    """Fatigue multiplier of a slot: badly timed and night contacts tire more."""
    return 1.0 + mech.timing_fatigue * distance + mech.night_fatigue * night


def irrelevance_fatigue(readiness: np.ndarray, is_offer: np.ndarray, mech: Mechanism) -> np.ndarray:
    """Fatigue multiplier of pushing an offer the customer is not ready for."""
    unwanted = 1.0 - sigmoid(readiness + mech.relevance_centre)
    return np.where(is_offer, 1.0 + mech.irrelevance_fatigue * unwanted, 1.0)


def hazard(
    prefactor: np.ndarray,
    engagement: np.ndarray,
    fatigue: np.ndarray,
    retention: np.ndarray,
    fatigue_churn: float,
    mech: Mechanism,
) -> np.ndarray:
    """Daily churn hazard ``h0 (1 + gamma F) exp(-hazard_engagement e - retention)``
    (``gamma`` is ``fatigue_churn``, passed apart: 0 with fatigue off)."""
    return (
        prefactor
        * (1.0 + fatigue_churn * fatigue)
        * np.exp(-mech.hazard_engagement * engagement - retention)
    )


def renew_probability(readiness: np.ndarray, engagement: np.ndarray, mech: Mechanism) -> np.ndarray:
    """Chance an expiring renewable offer renews: ``sigmoid(R + 0.5 e + renew_base)``."""
    return sigmoid(readiness + 0.5 * engagement + mech.renew_base)


def organic_probability(readiness: np.ndarray, rate: float, mech: Mechanism) -> np.ndarray:
    """Daily chance of buying an inactive renewable offer unprompted:
    ``rate sigmoid(R + organic_shift)``."""
    return rate * sigmoid(readiness + mech.organic_shift)
