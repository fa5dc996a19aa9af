"""Who the simulated customers are: observable traits (device, plan, region, tenure, age,
usage and spend), hidden ones (engagement, readiness per offer, channel and hour preferences,
churn frailty) and the state that moves day by day, drawn once per seed with a month of
history before the first simulated day.

:class:`Customers` holds one array per quantity (first axis: customer; the daily series are
``(HISTORY_DAYS, n)`` ring buffers indexed by ``day % HISTORY_DAYS``) and the quantities
derived from them alone; :func:`draw_customers` draws a population.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.simulate import model
from experiments.simulate.config import WorldConfig
from experiments.simulate.fields import HISTORY_DAYS, REGION_OFFSETS, REGIONS
from experiments.simulate.semantics import FEATURES, Semantics
from experiments.simulate.semantics.offers import OfferTable

PLAN_HAZARD = np.array([0.0015, 0.0005, 0.0009])  # prepaid, postpaid, hybrid; per day
_PLAN_SPEND = np.array([0.6, 1.4, 0.9])  # currency per day
_DEVICE_SPEND = np.array([1.0, 1.15, 0.6])
_DEVICE_USAGE = np.array([0.25, 0.3, 0.02])  # GB per day
_PLAN_TENURE = np.array([14.0, 40.0, 20.0])  # mean months
_HOUR_CENTRES = np.array([8.5, 12.5, 17.0, 20.0])
_HOUR_WEIGHTS = np.array([0.25, 0.2, 0.2, 0.35])


@dataclass(eq=False)
class Customers:
    """Every customer's traits, state and truth so far; ``(n,)`` arrays unless said otherwise
    (``K`` offers, ``C`` channels)."""

    # Traits fixed for life.
    device: np.ndarray  # int: android, ios, feature_phone
    plan: np.ndarray  # int: prepaid, postpaid, hybrid
    region: np.ndarray  # int, index into REGIONS
    tz: np.ndarray  # local time minus world time, hours
    age: np.ndarray
    engagement_level: np.ndarray  # the level engagement reverts to
    base_usage: np.ndarray  # GB per day
    base_spend: np.ndarray  # currency per day
    frailty: np.ndarray  # churn hazard multiplier
    preferred_hour: np.ndarray  # local hour of day
    channel_preference: np.ndarray  # (n, C) click logit shift
    readiness_effect: np.ndarray  # (n, K) personal readiness logit
    roam_propensity: np.ndarray  # daily chance of starting a trip
    bill_phase: np.ndarray  # int, day offset of the bookings
    bill_hour: np.ndarray  # hour of the revenue bookings
    usage_hour: np.ndarray  # hour of the usage reports
    score_noise: np.ndarray  # noise of the CRM engagement score
    # State that moves.
    tenure: np.ndarray  # months
    engagement: np.ndarray
    roaming: np.ndarray  # bool
    last_contact: np.ndarray  # int, day of the latest contact
    alive: np.ndarray  # bool
    churn_day: np.ndarray  # int, -1 while active
    fatigue: np.ndarray
    nurture: np.ndarray  # (n, K) readiness logit added by nurturing
    active_until: np.ndarray  # (n, K) int: an offer is active while day < this
    unbilled: np.ndarray  # spend accrued since the last booking
    unreported_usage: np.ndarray  # usage accrued since the last report
    extra_spend: np.ndarray  # today's one-off spend (prices paid)
    usage_history: np.ndarray  # (HISTORY_DAYS, n) float32
    spend_history: np.ndarray  # (HISTORY_DAYS, n) float32
    contact_history: np.ndarray  # (HISTORY_DAYS, n) int8
    contacted_today: np.ndarray  # bool
    # Truth so far.
    revenue_total: np.ndarray
    contacts_total: np.ndarray  # int
    clicks_total: np.ndarray  # int
    accepts_total: np.ndarray  # int

    def history_sum(self, history: np.ndarray, rows: np.ndarray, days: int, day: int) -> np.ndarray:
        """Sum over the ``days`` days before ``day`` (``day`` excluded) for ``rows``."""
        index = (day - 1 - np.arange(days)) % HISTORY_DAYS
        return history[np.ix_(index, rows)].sum(axis=0, dtype=np.float64)

    def features(self, rows: np.ndarray, day: int) -> np.ndarray:
        """Customer features readiness is linear in, ``(n, len(FEATURES))``."""
        usage_7d = self.history_sum(self.usage_history, rows, 7, day)
        spend_30d = self.history_sum(self.spend_history, rows, 30, day)
        z = np.zeros((rows.shape[0], len(FEATURES)))
        z[:, 0] = 1.0
        z[:, 1] = np.log((usage_7d / 7.0 + 0.02) / 0.25)
        z[:, 2] = np.minimum(self.tenure[rows] / 12.0, 6.0)
        z[:, 3] = self.plan[rows] == 0
        z[:, 4] = self.plan[rows] == 1
        z[:, 5] = self.device[rows] == 1
        z[:, 6] = self.device[rows] == 2
        z[:, 7] = self.roaming[rows]
        z[:, 8] = self.engagement[rows]
        z[:, 9] = np.log(spend_30d / 30.0 + 0.05)
        return z

    def active(self, rows: np.ndarray | slice, day: int) -> np.ndarray:
        """Which offers are active on ``day``, ``(n, K)`` bool."""
        return self.active_until[rows] > day

    def clear_truth(self) -> None:
        """Forget the revenue, contacts, clicks and accepts counted so far."""
        self.revenue_total[:] = 0.0
        self.contacts_total[:] = 0
        self.clicks_total[:] = 0
        self.accepts_total[:] = 0

    def hazard_prefactor(self, rows: np.ndarray | slice, churn_scale: float) -> np.ndarray:
        """``h0`` without the season: plan x frailty x new-customer risk x churn_scale."""
        tenure_risk = 1.0 + 1.5 * np.exp(-self.tenure[rows] / 6.0)
        return churn_scale * PLAN_HAZARD[self.plan[rows]] * self.frailty[rows] * tenure_risk


def draw_customers(
    config: WorldConfig,
    semantics: Semantics,
    rng: np.random.Generator,
    noise: np.random.Generator,
    *,
    start: int = 0,
) -> Customers:
    """A population of ``config.n_customers`` as it is on day ``start`` (0, or earlier when
    a burn-in precedes day 0), with a month of usage, spend and contact history before it and
    the spend accrued since each one's last booking. Holdings of renewable offers are drawn
    next, from the same generator, by :func:`hold_offers` (they depend on readiness, which
    needs the drift). The draws do not depend on ``start``: a burn-in changes what the
    customers live through, not who they are."""
    n = config.n_customers
    offers = semantics.offers
    K = len(offers.names)
    device = rng.choice(3, size=n, p=[0.55, 0.33, 0.12]).astype(np.int64)
    plan = rng.choice(3, size=n, p=[0.5, 0.35, 0.15]).astype(np.int64)
    region = rng.integers(len(REGIONS), size=n)
    age = np.minimum(18.0 + rng.gamma(2.5, 9.0, n), 90.0)
    tenure = rng.exponential(_PLAN_TENURE[plan]) + 0.2
    engagement_level = rng.normal(0.0, 0.6, n)
    engagement = engagement_level + rng.normal(0.0, 0.3, n)
    base_usage = _DEVICE_USAGE[device] * rng.lognormal(0.0, 0.6, n)
    base_spend = _PLAN_SPEND[plan] * _DEVICE_SPEND[device] * rng.lognormal(0.0, 0.35, n)
    frailty = np.exp(rng.normal(0.0, 0.4, n))
    centre = rng.choice(len(_HOUR_CENTRES), size=n, p=_HOUR_WEIGHTS)
    preferred_hour = (_HOUR_CENTRES[centre] + rng.normal(0.0, 1.2, n)) % 24.0
    channel_preference = rng.normal(0.0, 0.5, (n, len(semantics.channels.names)))
    kinds = sorted(set(offers.kinds))
    shared = rng.normal(0.0, 1.0, (n, len(kinds)))
    kind_column = np.array([kinds.index(kind) for kind in offers.kinds])
    readiness_effect = 0.7 * (0.6 * shared[:, kind_column] + 0.8 * rng.normal(0.0, 1.0, (n, K)))
    roam_propensity = np.minimum(0.004 * rng.lognormal(0.0, 0.8, n), 0.05)
    bill_phase = rng.integers(config.billing_period, size=n)
    bill_hour = rng.uniform(0.0, 24.0, n)
    usage_hour = rng.uniform(0.0, 24.0, n)
    roaming = rng.random(n) < 0.02
    last_contact = start - rng.integers(3, 90, n).astype(np.int64)
    customers = Customers(
        device=device,
        plan=plan,
        region=region,
        tz=np.asarray(REGION_OFFSETS)[region],
        age=age,
        engagement_level=engagement_level,
        base_usage=base_usage,
        base_spend=base_spend,
        frailty=frailty,
        preferred_hour=preferred_hour,
        channel_preference=channel_preference,
        readiness_effect=readiness_effect,
        roam_propensity=roam_propensity,
        bill_phase=bill_phase,
        bill_hour=bill_hour,
        usage_hour=usage_hour,
        score_noise=noise.normal(0.0, 1.0, n),
        tenure=tenure,
        engagement=engagement,
        roaming=roaming,
        last_contact=last_contact,
        alive=np.ones(n, dtype=bool),
        churn_day=np.full(n, -1, dtype=np.int64),
        fatigue=np.zeros(n),
        nurture=np.zeros((n, K)),
        active_until=np.zeros((n, K), dtype=np.int64),
        unbilled=np.zeros(n),
        unreported_usage=np.zeros(n),
        extra_spend=np.zeros(n),
        usage_history=np.zeros((HISTORY_DAYS, n), dtype=np.float32),
        spend_history=np.zeros((HISTORY_DAYS, n), dtype=np.float32),
        contact_history=np.zeros((HISTORY_DAYS, n), dtype=np.int8),
        contacted_today=np.zeros(n, dtype=bool),
        revenue_total=np.zeros(n),
        contacts_total=np.zeros(n, dtype=np.int64),
        clicks_total=np.zeros(n, dtype=np.int64),
        accepts_total=np.zeros(n, dtype=np.int64),
    )
    _draw_history(customers, config, rng, start)
    return customers


def _draw_history(
    customers: Customers, config: WorldConfig, rng: np.random.Generator, start: int
) -> None:
    """A month of history before day ``start``, so 7- and 30-day sums are defined from the
    start, and what accrued since each customer's last booking before it (still unbooked)."""
    c, mech = customers, config.mechanism
    n = c.device.shape[0]
    for back in range(HISTORY_DAYS, 0, -1):
        row = (start - back) % HISTORY_DAYS
        c.usage_history[row] = (
            c.base_usage
            * np.exp(mech.usage_engagement * c.engagement)
            * rng.lognormal(-0.06, 0.35, n)
        )
        c.spend_history[row] = (
            c.base_spend
            * np.exp(mech.spend_engagement * c.engagement)
            * rng.lognormal(-0.02, 0.2, n)
        )
        c.contact_history[row] = (c.last_contact == start - back).astype(np.int8)
    # Bookings fall on the days with (day + bill_phase) % billing_period == 0.
    since = (start + c.bill_phase) % config.billing_period
    since = np.where(since == 0, config.billing_period, since) - 1  # days accrued, unbooked
    for back in range(1, config.billing_period):
        row = (start - back) % HISTORY_DAYS
        unbooked = back <= since
        c.unbilled += np.where(unbooked, c.spend_history[row], 0.0)
        c.unreported_usage += np.where(unbooked, c.usage_history[row], 0.0)


def hold_offers(
    customers: Customers,
    readiness: np.ndarray,
    offers: OfferTable,
    rng: np.random.Generator,
    *,
    start: int = 0,
) -> None:
    """Some customers already hold renewable offers on day ``start`` (more of those ready for
    them), each with a random part of its duration left; ``readiness`` is ``(n, K)``."""
    n, K = readiness.shape
    holds = offers.renewable & offers.is_offer
    held = rng.random((n, K)) < 0.3 * model.sigmoid(readiness) * holds
    remaining = rng.integers(1, np.maximum(offers.duration, 2), size=(n, K))
    customers.active_until = np.where(held, start + remaining, start).astype(np.int64)
