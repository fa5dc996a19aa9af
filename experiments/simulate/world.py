"""A population of simulated customers living day by day, reacting to what we send them.

The world is pure numpy (no database, no tracking) and deterministic under
``WorldConfig.seed``: the same configuration and the same calls give identical events. Every
day's random numbers are drawn for the whole population in a fixed order, whoever is
contacted, so two policies run on two worlds with the same seed face the same customers,
the same visits and the same luck (common random numbers); only what the policies send
makes their worlds differ.

A day, as the runner drives it::

    ids = world.visitors()                 # active customers reachable today
    contexts = world.contexts(ids)         # what a decision sees (the spec's schema)
    world.act(ids, actions)                # action indices; -1 = no contact
    events = world.end_day()               # the day's events; the world moves on a day

**Customers.** Observable: device, plan, region (time zone), tenure, age, daily data usage
and spend (a 30-day history, so ``usage_7d``/``spend_30d`` are sums of the simulated series),
roaming trips, the local hour of today's visit. Hidden: engagement ``e`` (mean-reverting to a
personal level), readiness per offer (a logit: linear in the observables, plus a personal
effect, plus the nurture stock, plus drift), channel preferences, a preferred hour of the day,
fatigue ``F``, a churn frailty.

**Contacts** (:meth:`CustomerWorld.act`; formulas in :mod:`experiments.simulate.model`, level
meanings in :mod:`experiments.simulate.semantics`):

- the response is a funnel: click, then accept given click, both logistic in
  engagement x readiness x message x channel fit x timing fit, minus fatigue; a message is
  delivered at its timing slot's next local occurrence, the click follows within hours,
  the accept within minutes or up to three days (a reporting lag);
- fatigue (``WorldConfig.fatigue``): every contact adds channel x message x timing x
  irrelevance fatigue (urgency by SMS at night to someone who does not want the offer tires
  most); it halves every ``fatigue_half_life`` days, lowers responses and raises the churn
  hazard linearly. Off: contacts add none, so contacting cannot raise churn;
- nurturing (``WorldConfig.nurturing``): informational, educational (and a little
  personalised) messages that are read raise readiness for the offer they carry (some for
  its kind, a little for all offers) and engagement; the stock saturates at ``nurture_cap``
  and halves every ``nurture_half_life`` days. Readiness drives later accepts, renewals and
  unprompted purchases, so nurturing pays later, not now. Off: messages change no hidden
  state, so they have no effect on later accepts;
- an accepted offer is active for its duration: bundles and passes add usage, discounts cut
  the daily spend but cut the churn hazard, device upgrades raise spend and retention;
  renewable offers renew at expiry with a probability rising with readiness.

**Revenue.** The daily spend accrues and is booked as one ``revenue`` event every
``billing_period`` days per customer (weekly by default, so a 14-day window always holds
two bookings); offer prices, renewals and unprompted purchases are booked when they happen.
A churned customer's unbooked spend is lost. ``usage`` events report GB on the same cadence.

**Drift** (``WorldConfig.drift``): seasons of ``season_days`` move readiness per offer (each
offer on its own phase), spend, usage, travel (roaming), churn and the preferred hour; slow
random walks move readiness per region and offer, message appeal and channel fit; push and
in-app gain while SMS and email lose; urgency and promotional framing wear out; weekends
bring more visits later in the day. A model trained early goes stale.

**Truth for regret.** :meth:`CustomerWorld.expected_reward` gives every action's expected
value today: ``click`` and ``accept`` exactly; ``revenue_<W>d`` and ``retained_<W>d`` by
projecting the customer's state W days ahead assuming no further contacts and drift frozen
at today, exact in fatigue and first order in the engagement and nurture increments (see
:meth:`CustomerWorld._projection`); revenue counts spend as it accrues rather than when it
is booked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any

import numpy as np

from bandit import DecisionSpace
from experiments.simulate import model
from experiments.simulate.fields import (
    HISTORY_DAYS,
    REGION_OFFSETS,
    REGIONS,
    ContextFieldLike,
    FieldPlan,
    plan_fields,
    to_python_rows,
)
from experiments.simulate.semantics import FEATURES, build_semantics, is_night

EVENT_NAMES = ("click", "accept", "revenue", "usage", "churn")
CLICK, ACCEPT, REVENUE, USAGE, CHURN = range(5)
_EVENT_ARRAY = np.array(EVENT_NAMES)

_PLAN_HAZARD = np.array([0.0015, 0.0005, 0.0009])  # prepaid, postpaid, hybrid; per day
_PLAN_SPEND = np.array([0.6, 1.4, 0.9])  # currency per day
_DEVICE_SPEND = np.array([1.0, 1.15, 0.6])
_DEVICE_USAGE = np.array([0.25, 0.3, 0.02])  # GB per day
_PLAN_TENURE = np.array([14.0, 40.0, 20.0])  # mean months
_HOUR_CENTRES = np.array([8.5, 12.5, 17.0, 20.0])
_HOUR_WEIGHTS = np.array([0.25, 0.2, 0.2, 0.35])
_TRIP_END = 0.2
_WINDOW_KIND = re.compile(r"(revenue|retained)_(\d+)d")
_CHUNK_CELLS = 2_000_000


# --------------------------------------------------------------------------- configuration
def _check(owner: str, name: str, value: object, kind: type, low: float, high: float) -> None:
    text = f"[{low:g}, {'inf' if math.isinf(high) else f'{high:g}'}]"
    what = "an int" if kind is int else "a bool" if kind is bool else "a float"
    message = f"The '{name}' parameter of {owner} must be {what}"
    if kind is bool:
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{message}. Got {value!r}.")
        return
    message += f" in {text}. Got {value!r}."
    if isinstance(value, bool) or not isinstance(value, int if kind is int else int | float):
        raise ValueError(message)
    if not math.isfinite(float(value)) or not low <= float(value) <= high:
        raise ValueError(message)


@dataclass(frozen=True)
class WorldConfig:
    """A world's size, seed, mechanisms and effect sizes (a value; hashable).

    Attributes:
        n_customers: population size.
        n_days: the horizon runs are meant for (the world itself can go on).
        seed: the only source of randomness.
        visit_rate: daily chance an active customer of average engagement is reachable.
        fatigue: contacts raise fatigue, which lowers response and raises churn.
        nurturing: informational/educational messages raise readiness (and engagement).
        drift: seasonality and slow shifts in preferences.
        fatigue_response: click logit lost per unit of fatigue (half of it for accepts).
        fatigue_churn: relative churn hazard added per unit of fatigue.
        fatigue_half_life: days for fatigue to halve.
        nurture_gain: readiness logit an educational message adds when read (informational
            0.6 of it), before saturation.
        nurture_half_life: days for the nurture stock to halve.
        nurture_cap: the nurture stock's ceiling (gains shrink as it fills).
        churn_scale: multiplies every churn hazard.
        drift_strength: multiplies every drift.
        season_days: period of the seasons.
        organic_rate: the ceiling of the daily chance of buying a renewable offer unprompted.
        billing_period: days between revenue (and usage) bookings of the accrued spend.
        emit_usage: emit ``usage`` events (turn off to keep event logs small).
    """

    n_customers: int = 20_000
    n_days: int = 60
    seed: int = 0
    visit_rate: float = 0.15
    fatigue: bool = True
    nurturing: bool = True
    drift: bool = True
    fatigue_response: float = 0.3
    fatigue_churn: float = 0.15
    fatigue_half_life: float = 7.0
    nurture_gain: float = 0.8
    nurture_half_life: float = 30.0
    nurture_cap: float = 2.5
    churn_scale: float = 1.0
    drift_strength: float = 1.0
    season_days: float = 56.0
    organic_rate: float = 0.01
    billing_period: int = 7
    emit_usage: bool = True

    def __post_init__(self) -> None:
        inf = math.inf
        limits: dict[str, tuple[type, float, float]] = {
            "n_customers": (int, 1, 50_000_000),
            "n_days": (int, 1, inf),
            "seed": (int, 0, inf),
            "visit_rate": (float, 0.0, 1.0),
            "fatigue": (bool, 0, 0),
            "nurturing": (bool, 0, 0),
            "drift": (bool, 0, 0),
            "fatigue_response": (float, 0.0, inf),
            "fatigue_churn": (float, 0.0, inf),
            "fatigue_half_life": (float, 1e-3, inf),
            "nurture_gain": (float, 0.0, inf),
            "nurture_half_life": (float, 1e-3, inf),
            "nurture_cap": (float, 1e-3, inf),
            "churn_scale": (float, 0.0, inf),
            "drift_strength": (float, 0.0, inf),
            "season_days": (float, 1.0, inf),
            "organic_rate": (float, 0.0, 1.0),
            "billing_period": (int, 1, HISTORY_DAYS),
            "emit_usage": (bool, 0, 0),
        }
        for item in fields(self):
            kind, low, high = limits[item.name]
            _check("WorldConfig", item.name, getattr(self, item.name), kind, low, high)


# --------------------------------------------------------------------------- events
@dataclass(frozen=True, eq=False)
class Events:
    """Events of one day, one row each, sorted by hour then customer.

    Attributes:
        customer: int64 ``(m,)`` customer ids.
        event: ``(m,)`` names, one of :data:`EVENT_NAMES` (numpy unicode strings).
        value: float64 ``(m,)``: 1 for click, accept and churn; currency for revenue; GB
            for usage.
        hour: float64 ``(m,)`` hours after the start of the day, in [0, 24).
    """

    customer: np.ndarray
    event: np.ndarray
    value: np.ndarray
    hour: np.ndarray

    names = EVENT_NAMES

    def __len__(self) -> int:
        return int(self.customer.shape[0])

    @classmethod
    def empty(cls) -> Events:
        return cls(np.zeros(0, np.int64), _EVENT_ARRAY[:0], np.zeros(0), np.zeros(0, np.float64))


# --------------------------------------------------------------------------- the world
class CustomerWorld:
    """The simulated population; see the module docstring for the model.

    Args:
        config: size, seed, mechanisms and effect sizes.
        space: the decision space whose action indices :meth:`act` receives.
        context_fields: the spec's context schema (name -> field with ``type`` and, for
            categorical fields, ``levels``); ``ValueError`` names a field the world cannot
            provide.

    Attributes:
        day: index of the current day (0 at creation).
    """

    def __init__(
        self,
        config: WorldConfig,
        space: DecisionSpace,
        context_fields: Mapping[str, ContextFieldLike],
    ) -> None:
        if not isinstance(config, WorldConfig):
            raise ValueError(f"'config' must be a WorldConfig; got {type(config).__name__}")
        if not isinstance(space, DecisionSpace):
            raise ValueError(f"'space' must be a bandit.DecisionSpace; got {type(space).__name__}")
        self.config = config
        self.space = space
        self.semantics = build_semantics(space, config.seed)
        self.n_actions = space.n_actions
        n = config.n_customers
        self._fields: tuple[FieldPlan, ...] = plan_fields(context_fields, n, config.seed)
        root = np.random.SeedSequence([config.seed, 0x5EED])
        population, drift, daily, static_noise = (np.random.default_rng(s) for s in root.spawn(4))
        self._drift_rng = drift
        self._daily_rng = daily
        self._phi_fatigue = 0.5 ** (1.0 / config.fatigue_half_life)
        self._phi_nurture = 0.5 ** (1.0 / config.nurture_half_life)
        self._gamma = config.fatigue_churn if config.fatigue else 0.0
        self.day = 0
        self._init_population(population, static_noise)
        self._begin_day()

    # ------------------------------------------------------------------ set-up
    def _init_population(self, rng: np.random.Generator, noise: np.random.Generator) -> None:
        cfg, sem = self.config, self.semantics
        n = cfg.n_customers
        offers = sem.offers
        K = len(offers.names)
        self.device = rng.choice(3, size=n, p=[0.55, 0.33, 0.12]).astype(np.int64)
        self.plan = rng.choice(3, size=n, p=[0.5, 0.35, 0.15]).astype(np.int64)
        self.region = rng.integers(len(REGIONS), size=n)
        self.tz = np.asarray(REGION_OFFSETS)[self.region]
        self.age = np.minimum(18.0 + rng.gamma(2.5, 9.0, n), 90.0)
        self.tenure = rng.exponential(_PLAN_TENURE[self.plan]) + 0.2
        self.engagement_level = rng.normal(0.0, 0.6, n)
        self.engagement = self.engagement_level + rng.normal(0.0, 0.3, n)
        self.base_usage = _DEVICE_USAGE[self.device] * rng.lognormal(0.0, 0.6, n)
        self.base_spend = (
            _PLAN_SPEND[self.plan] * _DEVICE_SPEND[self.device] * rng.lognormal(0.0, 0.35, n)
        )
        self.frailty = np.exp(rng.normal(0.0, 0.4, n))
        centre = rng.choice(len(_HOUR_CENTRES), size=n, p=_HOUR_WEIGHTS)
        self.preferred_hour = (_HOUR_CENTRES[centre] + rng.normal(0.0, 1.2, n)) % 24.0
        self.channel_preference = rng.normal(0.0, 0.5, (n, len(sem.channels.names)))
        kinds = sorted(set(offers.kinds))
        shared = rng.normal(0.0, 1.0, (n, len(kinds)))
        kind_column = np.array([kinds.index(kind) for kind in offers.kinds])
        self.readiness_effect = 0.7 * (
            0.6 * shared[:, kind_column] + 0.8 * rng.normal(0.0, 1.0, (n, K))
        )
        self.roam_propensity = np.minimum(0.004 * rng.lognormal(0.0, 0.8, n), 0.05)
        self.bill_phase = rng.integers(cfg.billing_period, size=n)
        self.bill_hour = rng.uniform(0.0, 24.0, n)
        self.usage_hour = rng.uniform(0.0, 24.0, n)
        self.score_noise = noise.normal(0.0, 1.0, n)

        # Dynamic state.
        self.alive = np.ones(n, dtype=bool)
        self.churn_day = np.full(n, -1, dtype=np.int64)
        self.fatigue = np.zeros(n)
        self.nurture = np.zeros((n, K))
        self.active_until = np.zeros((n, K), dtype=np.int64)  # active while day < this
        self.roaming = rng.random(n) < 0.02
        self.last_contact = -rng.integers(3, 90, n).astype(np.int64)
        self.unbilled = np.zeros(n)
        self.unreported_usage = np.zeros(n)
        self.extra_spend = np.zeros(n)
        self.usage_history = np.zeros((HISTORY_DAYS, n), dtype=np.float32)
        self.spend_history = np.zeros((HISTORY_DAYS, n), dtype=np.float32)
        self.contact_history = np.zeros((HISTORY_DAYS, n), dtype=np.int8)
        self.revenue_total = np.zeros(n)
        self.contacts_total = np.zeros(n, dtype=np.int64)
        self.clicks_total = np.zeros(n, dtype=np.int64)
        self.accepts_total = np.zeros(n, dtype=np.int64)
        self.contacted_today = np.zeros(n, dtype=bool)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

        # Drift state: random walks (zero, and never stepped, when drift is off).
        self.offer_walk = np.zeros((len(REGIONS), K))
        self.message_walk = np.zeros(len(sem.messages.names))
        self.channel_walk = np.zeros(len(sem.channels.names))

        # A month of history before day 0, so 7- and 30-day sums are defined from the start.
        for back in range(HISTORY_DAYS, 0, -1):
            row = (-back) % HISTORY_DAYS
            self.usage_history[row] = (
                self.base_usage
                * np.exp(model.USAGE_ENGAGEMENT * self.engagement)
                * rng.lognormal(-0.06, 0.35, n)
            )
            self.spend_history[row] = (
                self.base_spend
                * np.exp(model.SPEND_ENGAGEMENT * self.engagement)
                * rng.lognormal(-0.02, 0.2, n)
            )
            self.contact_history[row] = (self.last_contact == -back).astype(np.int8)
        # What accrued since each customer's last booking before day 0 is still unbooked.
        since = self.bill_phase % cfg.billing_period
        since = np.where(since == 0, cfg.billing_period, since) - 1  # days accrued, unbooked
        for back in range(1, cfg.billing_period):
            row = (-back) % HISTORY_DAYS
            unbooked = back <= since
            self.unbilled += np.where(unbooked, self.spend_history[row], 0.0)
            self.unreported_usage += np.where(unbooked, self.usage_history[row], 0.0)
        # Some customers already hold renewable offers.
        ready = self._readiness(np.arange(n), penalise_active=False)
        holds = offers.renewable & offers.is_offer
        start = rng.random((n, K)) < 0.3 * model.sigmoid(ready) * holds
        remaining = rng.integers(1, np.maximum(offers.duration, 2), size=(n, K))
        self.active_until = np.where(start, remaining, 0).astype(np.int64)

    # ------------------------------------------------------------------ seasons and drift
    def _season(self, phase: float = 0.0, ahead: np.ndarray | int = 0) -> Any:
        """The season ``drift_strength sin(2 pi day / season_days + phase)``, today or
        ``ahead`` days from today (an array gives an array); 0 without drift."""
        if not self.config.drift:
            return np.zeros(np.shape(ahead)) if np.ndim(ahead) else 0.0
        angle = 2.0 * math.pi * (self.day + np.asarray(ahead)) / self.config.season_days + phase
        value = self.config.drift_strength * np.sin(angle)
        return value if np.ndim(ahead) else float(value)

    @property
    def is_weekend(self) -> bool:
        return self.day % 7 in (5, 6)

    def _hour_shift(self) -> float:
        """Shift of everyone's preferred hour today (later in summer and at weekends)."""
        if not self.config.drift:
            return 0.0
        return self._season() + 0.75 * self.config.drift_strength * self.is_weekend

    def _offer_drift(self, regions: np.ndarray) -> np.ndarray:
        """Readiness drift, ``(n, K)``: each offer's season plus the region x offer walk."""
        offers = self.semantics.offers
        if not self.config.drift:
            return np.zeros((regions.shape[0], len(offers.names)))
        angle = 2.0 * math.pi * self.day / self.config.season_days + offers.season_phase
        season = self.config.drift_strength * offers.season_amplitude * np.sin(angle)
        return season[None, :] + self.offer_walk[regions]

    def _message_click(self) -> np.ndarray:
        messages = self.semantics.messages
        if not self.config.drift:
            return messages.click
        strength = self.config.drift_strength
        return messages.click + self.message_walk - strength * messages.wear_out * self.day

    def _channel_drift(self) -> np.ndarray:
        if not self.config.drift:
            return np.zeros(len(self.semantics.channels.names))
        trend = self.config.drift_strength * self.semantics.channels.trend * self.day
        return trend + self.channel_walk

    def _step_drift(self) -> None:
        # Drawn every day whatever the flags, so the daily stream does not depend on them.
        offer = self._drift_rng.normal(0.0, 0.03, self.offer_walk.shape)
        message = self._drift_rng.normal(0.0, 0.02, self.message_walk.shape)
        channel = self._drift_rng.normal(0.0, 0.02, self.channel_walk.shape)
        if self.config.drift:
            strength = self.config.drift_strength
            self.offer_walk += strength * offer
            self.message_walk += strength * message
            self.channel_walk += strength * channel

    # ------------------------------------------------------------------ derived state
    def _history_sum(self, history: np.ndarray, rows: np.ndarray, days: int) -> np.ndarray:
        """Sum over the last ``days`` days (today excluded) for ``rows``."""
        index = (self.day - 1 - np.arange(days)) % HISTORY_DAYS
        return history[np.ix_(index, rows)].sum(axis=0, dtype=np.float64)

    def _features(self, rows: np.ndarray) -> np.ndarray:
        """Customer features readiness is linear in, ``(n, len(FEATURES))``."""
        usage_7d = self._history_sum(self.usage_history, rows, 7)
        spend_30d = self._history_sum(self.spend_history, rows, 30)
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

    def _readiness(self, rows: np.ndarray, *, penalise_active: bool = True) -> np.ndarray:
        """Readiness logits ``(n, K)``; 0 for the no-offer level."""
        offers = self.semantics.offers
        ready = (
            self._features(rows) @ offers.weights.T
            + self.readiness_effect[rows]
            + self.nurture[rows]
            + self._offer_drift(self.region[rows])
        )
        if penalise_active:
            ready += model.ALREADY_ACTIVE * (self.active_until[rows] > self.day)
        ready[:, ~offers.is_offer] = 0.0
        return ready

    def _active(self, rows: np.ndarray | slice) -> np.ndarray:
        return self.active_until[rows] > self.day

    def _hazard_prefactor(self, rows: np.ndarray | slice) -> np.ndarray:
        """``h0`` without the season: plan x frailty x new-customer risk x churn_scale."""
        tenure_risk = 1.0 + 1.5 * np.exp(-self.tenure[rows] / 6.0)
        return (
            self.config.churn_scale
            * _PLAN_HAZARD[self.plan[rows]]
            * self.frailty[rows]
            * tenure_risk
        )

    def _churn_season(self, ahead: np.ndarray | int = 0) -> Any:
        return np.exp(0.15 * self._season(0.5 * math.pi, ahead))

    def _spend_season(self, ahead: np.ndarray | int = 0) -> Any:
        return 1.0 + 0.08 * self._season(0.0, ahead)

    # ------------------------------------------------------------------ the daily cycle
    def _begin_day(self) -> None:
        """Draw the day's random numbers for everyone (a fixed amount per day) and the visits."""
        n = self.config.n_customers
        K = len(self.semantics.offers.names)
        rng = self._daily_rng
        self._u = SimpleNamespace(
            visit=rng.random(n),
            visit_hour=rng.normal(0.0, 2.5, n),
            click=rng.random(n),
            accept=rng.random(n),
            click_delay=rng.exponential(1.0, n),
            lag_fast=rng.random(n),
            lag=rng.exponential(20.0, n),
            churn=rng.random(n),
            churn_hour=rng.random(n),
            usage=rng.lognormal(-0.06, 0.35, n),
            spend=rng.lognormal(-0.02, 0.2, n),
            engagement=rng.standard_normal(n),
            roam=rng.random(n),
            offer=rng.random((n, K)),
            offer_hour=rng.uniform(0.0, 24.0, (n, K)),
        )
        rate = self.config.visit_rate
        if self.config.drift and self.is_weekend:
            rate *= 1.0 + 0.15 * self.config.drift_strength
        chance = np.minimum(1.0, 2.0 * rate * model.sigmoid(0.8 * self.engagement))
        self._visiting = self.alive & (self._u.visit < chance)
        local = (self.preferred_hour + self._hour_shift() + self._u.visit_hour) % 24.0
        self._visit_local = local
        self._visit_world = (local - self.tz) % 24.0

    def visitors(self) -> np.ndarray:
        """Ids (int64, ascending) of active customers reachable for a decision today."""
        return np.flatnonzero(self._visiting).astype(np.int64)

    def visit_hours(self, customers: np.ndarray) -> np.ndarray:
        """Hour of today (world time, [0, 24)) at which each customer visits; responses to
        today's contacts come after it, so a decision logged then precedes its outcomes."""
        return self._visit_world[self._rows(customers, "customers")].copy()

    def _rows(self, customers: object, name: str) -> np.ndarray:
        rows = np.asarray(customers)
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise ValueError(f"'{name}' must be a 1-D array of customer ids")
        rows = rows.astype(np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.config.n_customers):
            raise ValueError(
                f"'{name}' must hold ids in [0, {self.config.n_customers}); "
                f"got {rows.min()}..{rows.max()}"
            )
        return rows

    # ------------------------------------------------------------------ contexts
    def contexts(self, customers: np.ndarray) -> list[dict[str, Any]]:
        """The context of each customer today as JSON-able dicts valid for the schema."""
        rows = self._rows(customers, "customers")
        names = [plan.name for plan in self._fields]
        if not names:
            return [{} for _ in range(rows.shape[0])]
        columns = [self._column(plan, rows) for plan in self._fields]
        return to_python_rows(names, columns)

    def _column(self, plan: FieldPlan, rows: np.ndarray) -> list[Any]:
        source = plan.source
        if plan.kind == "categorical":
            if source == "noise":
                codes = plan.noise[rows]  # type: ignore[index]
            else:
                own = {"device": self.device, "plan": self.plan, "region": self.region}[source]
                codes = plan.code_map[own[rows]]  # type: ignore[index]
            return np.array(plan.levels, dtype=object)[codes].tolist()
        if plan.kind == "boolean":
            if source == "roaming":
                values = self.roaming[rows]
            elif source == "weekend":
                values = np.full(rows.shape[0], self.is_weekend)
            else:
                values = plan.noise[rows]  # type: ignore[index]
            return values.astype(bool).tolist()
        if source == "noise":
            values = plan.noise[rows]  # type: ignore[index]
        elif source in ("usage", "spend", "contacts"):
            history = {
                "usage": self.usage_history,
                "spend": self.spend_history,
                "contacts": self.contact_history,
            }[source]
            values = np.round(self._history_sum(history, rows, plan.window), 3)
        elif source == "tenure_months":
            values = np.round(self.tenure[rows], 1)
        elif source == "local_hour":
            values = np.floor(self._visit_local[rows]) % 24
        elif source == "days_since_contact":
            values = (self.day - self.last_contact[rows]).astype(np.float64)
        elif source == "age":
            values = np.floor(self.age[rows])
        elif source == "day_of_week":
            values = np.full(rows.shape[0], float(self.day % 7))
        elif source == "engagement_score":
            raw = 50.0 + 15.0 * self.engagement[rows] + 5.0 * self.score_noise[rows]
            values = np.round(np.clip(raw, 0.0, 100.0), 1)
        else:  # active_offers
            values = self._active(rows).sum(axis=1).astype(np.float64)
        values = np.asarray(values, dtype=np.float64)
        if plan.low is not None or plan.high is not None:
            values = np.clip(values, plan.low, plan.high)
        return values.tolist()

    # ------------------------------------------------------------------ responses
    def _terms(
        self, rows: np.ndarray, actions: np.ndarray, *, full: bool = True
    ) -> SimpleNamespace:
        """Response terms of ``actions`` for ``rows``: click (and, when ``full``, accept)
        probabilities, read probability and fatigue increment.

        ``actions`` is ``(n, 1)`` (one action per row) or ``(1, A)`` (every action for every
        row); the terms have the broadcast shape. Everything that depends on the customer and
        one factor is computed per level first (``(n, levels)``) and gathered once.
        """
        sem = self.semantics
        offers, messages, channels, act = sem.offers, sem.messages, sem.channels, sem.actions
        cfg = self.config
        e = self.engagement[rows][:, None]
        F = self.fatigue[rows][:, None]

        def pick(table: np.ndarray, index: np.ndarray) -> np.ndarray:
            if index.shape[0] == 1:
                return table[:, index[0]]
            return np.take_along_axis(table, index, axis=1)

        # Per customer and level.
        ready = self._readiness(rows)  # (n, K)
        fitness = np.tanh(ready + model.RELEVANCE_CENTRE) * offers.is_offer
        channel_fit = (
            self.channel_preference[rows]
            + channels.device_fit.T[self.device[rows]]
            + channels.engaged[None, :] * e
            + self._channel_drift()[None, :]
        )
        preferred = (self.preferred_hour[rows] + self._hour_shift())[:, None]
        slot = sem.timing_hour[None, :]
        at_visit = np.isnan(slot)
        distance = np.where(at_visit, 0.0, model.circular_distance(slot, preferred))
        night = ~at_visit & is_night(np.nan_to_num(slot))

        # Per action.
        k = act.offer[actions]
        m = act.message[actions]
        c = act.channel[actions]
        t = act.timing[actions]
        click_const = (
            self._message_click()[act.message] + offers.click_appeal[act.offer] + act.extra_click
        )[actions]
        relevance = messages.relevance[m]

        bonus = relevance * pick(fitness, k)
        click_logit = pick(model.CLICK_INTEREST * ready, k)
        click_logit += pick(channel_fit, c)
        click_logit += pick(model.timing_fit(distance, night), t)
        click_logit += bonus
        click_logit += click_const
        click_logit += model.CLICK_BASE + model.CLICK_ENGAGEMENT * e - cfg.fatigue_response * F
        terms = SimpleNamespace(offer=k, message=m, timing=t, p_click=model.sigmoid(click_logit))
        if not full:
            return terms
        accept_const = (messages.accept[act.message] + act.extra_accept)[actions]
        accept_logit = pick(ready, k)
        accept_logit += bonus
        accept_logit += accept_const
        accept_logit += (
            model.ACCEPT_BASE + model.ACCEPT_ENGAGEMENT * e - 0.5 * cfg.fatigue_response * F
        )
        terms.p_accept_given_click = model.sigmoid(accept_logit) * offers.is_offer[k]
        terms.p_accept = terms.p_click * terms.p_accept_given_click
        click_logit += model.ATTENTION_SHIFT
        terms.attention = model.sigmoid(click_logit)
        if cfg.fatigue:
            fatigue_const = (
                channels.fatigue[act.channel] * messages.fatigue[act.message] * act.extra_fatigue
            )[actions]
            unwanted = model.irrelevance_fatigue(ready, offers.is_offer[None, :])
            d_fatigue = pick(model.timing_fatigue(distance, night), t)
            d_fatigue *= pick(unwanted, k)
            d_fatigue *= fatigue_const
        else:
            d_fatigue = np.zeros(terms.p_click.shape)
        terms.d_fatigue = d_fatigue
        return terms

    def act(self, customers: np.ndarray, actions: np.ndarray) -> None:
        """Today's contacts: ``actions[i]`` (an index into the space, or -1 for no contact)
        for ``customers[i]``. Effects land on hidden state at once; responses are scheduled.

        Raises ``ValueError`` for ids out of range or repeated, churned customers, customers
        already contacted today, and action indices outside ``[-1, n_actions)``.
        """
        rows = self._rows(customers, "customers")
        acts = np.asarray(actions)
        if acts.shape != rows.shape or (acts.size and not np.issubdtype(acts.dtype, np.integer)):
            raise ValueError("'actions' must be integer action indices, one per customer")
        acts = acts.astype(np.int64)
        if acts.size and (acts.min() < -1 or acts.max() >= self.n_actions):
            raise ValueError(f"'actions' must hold indices in [-1, {self.n_actions}) (-1: none)")
        if np.unique(rows).shape[0] != rows.shape[0]:
            raise ValueError("'customers' must not repeat a customer")
        sent = acts >= 0
        rows, acts = rows[sent], acts[sent]
        if not self.alive[rows].all():
            raise ValueError(f"churned customers cannot be contacted: {rows[~self.alive[rows]]}")
        if self.contacted_today[rows].any():
            raise ValueError("a customer can be contacted at most once a day")
        if rows.size == 0:
            return
        cfg, sem, u = self.config, self.semantics, self._u
        offers, messages = sem.offers, sem.messages
        terms = self._terms(rows, acts[:, None])
        k, m, t = terms.offer[:, 0], terms.message[:, 0], terms.timing[:, 0]
        clicked = u.click[rows] < terms.p_click[:, 0]
        accepted = clicked & (u.accept[rows] < terms.p_accept_given_click[:, 0])

        # When things happen, in hours after the start of today.
        slot = sem.timing_hour[t]
        local = self._visit_local[rows]
        wait = np.where(np.isnan(slot), 0.1, (np.nan_to_num(slot) - local) % 24.0)
        delivered = self._visit_world[rows] + wait
        click_at = delivered + np.minimum(u.click_delay[rows], 12.0)
        lag = np.where(u.lag_fast[rows] < 0.5, 0.05, np.minimum(u.lag[rows], 72.0))
        accept_at = click_at + lag
        day0 = 24.0 * self.day
        priced = accepted & (offers.price[k] > 0)
        self._schedule(rows[clicked], CLICK, np.ones(clicked.sum()), day0 + click_at[clicked])
        self._schedule(rows[accepted], ACCEPT, np.ones(accepted.sum()), day0 + accept_at[accepted])
        self._schedule(rows[priced], REVENUE, offers.price[k[priced]], day0 + accept_at[priced])

        # Effects on hidden state.
        if cfg.fatigue:
            self.fatigue[rows] += terms.d_fatigue[:, 0]
        if cfg.nurturing:
            read = terms.attention[:, 0]
            gain = cfg.nurture_gain * messages.nurture[m] * read
            room = np.maximum(1.0 - self.nurture[rows] / cfg.nurture_cap, 0.0)
            self.nurture[rows] += gain[:, None] * offers.spill[k] * room
            self.engagement[rows] += messages.engagement[m] * read
        took = rows[accepted]
        took_offer = k[accepted]
        self.engagement[took] += offers.engagement_gain[took_offer]
        current = self.active_until[took, took_offer]
        self.active_until[took, took_offer] = (
            np.maximum(current, self.day) + offers.duration[took_offer]
        )
        self.extra_spend[took] += offers.price[took_offer]
        self.contacts_total[rows] += 1
        self.last_contact[rows] = self.day
        self.contacted_today[rows] = True

    def _schedule(self, rows: np.ndarray, code: int, value: np.ndarray, when: np.ndarray) -> None:
        if rows.size:
            self._pending.append(
                (rows.astype(np.int64), np.full(rows.shape[0], code, np.int8), value, when)
            )

    # ------------------------------------------------------------------ the day ends
    def end_day(self) -> Events:
        """Close the day: churn, spend and usage, renewals, unprompted purchases, bookings;
        return the day's events (including responses to earlier days' contacts that land
        today) and move every customer's hidden state on by one day."""
        cfg, sem, u = self.config, self.semantics, self._u
        offers = sem.offers
        n = cfg.n_customers
        everyone = np.arange(n)
        alive = self.alive
        active = self._active(slice(None))
        retention = active @ offers.retention
        h = model.hazard(
            self._hazard_prefactor(slice(None)) * self._churn_season(),
            self.engagement,
            self.fatigue,
            retention,
            self._gamma,
        )
        churn = alive & (u.churn < -np.expm1(-h))
        earliest = np.where(self._visiting, self._visit_world, 0.0)
        churn_hour = earliest + u.churn_hour * (24.0 - earliest)
        stay = alive & ~churn

        # Spend and usage accrue for those who stay.
        log_mult = active @ np.log1p(offers.spend_change)
        spend = np.where(
            stay,
            self.base_spend
            * self._spend_season()
            * np.exp(model.SPEND_ENGAGEMENT * self.engagement + log_mult)
            * u.spend,
            0.0,
        )
        usage_season = 1.0 + 0.1 * self._season()
        usage = np.where(
            stay,
            self.base_usage
            * np.exp(model.USAGE_ENGAGEMENT * self.engagement)
            * usage_season
            * u.usage
            + active @ offers.usage_add,
            0.0,
        )
        self.unbilled += spend
        self.unreported_usage += usage

        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

        # Renewals at expiry and unprompted purchases (one uniform each; they exclude).
        renewable = offers.renewable & offers.is_offer
        if renewable.any():
            ready = self._readiness(everyone, penalise_active=False)
            expiring = stay[:, None] & renewable & (self.active_until == self.day + 1)
            renew = expiring & (u.offer < model.renew_probability(ready, self.engagement[:, None]))
            idle = stay[:, None] & renewable & ~active
            buy = idle & (u.offer < model.organic_probability(ready, cfg.organic_rate))
            bought = renew | buy
            who, which = np.nonzero(bought)
            self.active_until[who, which] = (
                np.where(renew[who, which], self.active_until[who, which], self.day)
                + offers.duration[which]
            )
            np.add.at(self.extra_spend, who, offers.price[which])
            paid = offers.price[which] > 0
            parts.append(
                (
                    who[paid],
                    np.full(paid.sum(), REVENUE, np.int8),
                    offers.price[which][paid],
                    u.offer_hour[who, which][paid],
                )
            )

        # Bookings of accrued spend and usage.
        booking = stay & ((self.day + self.bill_phase) % cfg.billing_period == 0)
        billed = booking & (self.unbilled > 0)
        parts.append(
            (
                np.flatnonzero(billed),
                np.full(billed.sum(), REVENUE, np.int8),
                self.unbilled[billed],
                self.bill_hour[billed],
            )
        )
        self.unbilled[booking] = 0.0
        if cfg.emit_usage:
            reported = booking & (self.unreported_usage > 0)
            parts.append(
                (
                    np.flatnonzero(reported),
                    np.full(reported.sum(), USAGE, np.int8),
                    self.unreported_usage[reported],
                    self.usage_hour[reported],
                )
            )
        self.unreported_usage[booking] = 0.0

        # Responses scheduled for today; later ones wait.
        if self._pending:
            who, code, value, when = (
                np.concatenate(column) for column in zip(*self._pending, strict=True)
            )
            today = when < 24.0 * (self.day + 1)
            later = ~today & stay[who]
            self._pending = [(who[later], code[later], value[later], when[later])]
            who, code, value, when = who[today], code[today], value[today], when[today]
            parts.append((who, code, value, when - 24.0 * self.day))
        # Churn: nothing from a customer at or after the hour they leave.
        who_churn = np.flatnonzero(churn)
        parts.append(
            (
                who_churn,
                np.full(who_churn.shape[0], CHURN, np.int8),
                np.ones(who_churn.shape[0]),
                churn_hour[churn],
            )
        )
        who, code, value, hour = (np.concatenate(column) for column in zip(*parts, strict=True))
        leaves = churn[who] & (hour >= churn_hour[who]) & (code != CHURN)
        keep = alive[who] & ~leaves
        who, code, value, hour = who[keep], code[keep], value[keep], hour[keep]
        hour = np.minimum(hour, np.nextafter(24.0, 0.0))
        order = np.lexsort((code, who, hour))
        who, code, value, hour = who[order], code[order], value[order], hour[order]

        # Truth so far, from the events themselves.
        is_revenue = code == REVENUE
        self.revenue_total += np.bincount(who[is_revenue], value[is_revenue], minlength=n)
        self.clicks_total += np.bincount(who[code == CLICK], minlength=n)
        self.accepts_total += np.bincount(who[code == ACCEPT], minlength=n)

        # Move the hidden state on a day.
        row = self.day % HISTORY_DAYS
        self.usage_history[row] = usage
        self.spend_history[row] = np.where(stay, spend + self.extra_spend, 0.0)
        self.contact_history[row] = self.contacted_today
        self.alive = stay
        self.churn_day[churn] = self.day
        level = self.engagement_level
        self.engagement = (
            level
            + model.ENGAGEMENT_PERSISTENCE * (self.engagement - level)
            + model.ENGAGEMENT_NOISE * u.engagement
        )
        self.fatigue *= self._phi_fatigue
        self.nurture *= self._phi_nurture
        self.tenure += 1.0 / 30.44
        travel = 1.0 + 0.8 * self._season(0.25 * math.pi)
        start_trip = ~self.roaming & (u.roam < self.roam_propensity * travel)
        end_trip = self.roaming & (u.roam < _TRIP_END)
        self.roaming = (self.roaming | start_trip) & ~end_trip
        self.extra_spend[:] = 0.0
        self.contacted_today[:] = False
        self._step_drift()
        self.day += 1
        self._begin_day()
        return Events(who, _EVENT_ARRAY[code], value.astype(np.float64), hour)

    # ------------------------------------------------------------------ truth
    def kpis(self) -> dict[str, np.ndarray]:
        """Per-customer truth so far, each ``(n_customers,)``: ``revenue`` (sum of revenue
        events), ``retained`` (not churned), ``contacts``, ``clicks``, ``accepts`` (events
        emitted), ``churn_day`` (-1 while active)."""
        return {
            "revenue": self.revenue_total.copy(),
            "retained": self.alive.copy(),
            "contacts": self.contacts_total.copy(),
            "clicks": self.clicks_total.copy(),
            "accepts": self.accepts_total.copy(),
            "churn_day": self.churn_day.copy(),
        }

    def expected_reward(self, customers: np.ndarray, kind: str) -> np.ndarray:
        """True expected reward of every action for each customer if contacted now, shape
        ``(n, n_actions)`` float64; 0 for churned customers.

        ``kind``: ``"click"`` (probability of a click, at any delay), ``"accept"``,
        ``"revenue_<W>d"`` (revenue accruing in the W days from today, e.g. ``revenue_14d``)
        or ``"retained_<W>d"`` (probability of being active after W days, e.g.
        ``retained_30d``). The window kinds assume no further contacts and drift frozen at
        today; see :meth:`_projection` for the approximations.
        """
        rows = self._rows(customers, "customers")
        window = _WINDOW_KIND.fullmatch(kind) if isinstance(kind, str) else None
        if kind not in ("click", "accept") and window is None:
            raise ValueError(
                "'kind' must be 'click', 'accept', 'revenue_<W>d' or 'retained_<W>d' "
                f"(such as 'revenue_14d', 'retained_30d'); got {kind!r}"
            )
        days = int(window.group(2)) if window is not None else 0
        if window is not None and days < 1:
            raise ValueError(f"'kind' needs a window of at least one day; got {kind!r}")
        out = np.zeros((rows.shape[0], self.n_actions))
        every = np.arange(self.n_actions)[None, :]
        step = max(1, _CHUNK_CELLS // self.n_actions)
        for start in range(0, rows.shape[0], step):
            chunk = rows[start : start + step]
            terms = self._terms(chunk, every, full=kind != "click")
            if kind == "click":
                value = terms.p_click
            elif kind == "accept":
                value = terms.p_accept
            else:
                value = self._window_value(chunk, terms, window.group(1), days)  # type: ignore[union-attr]
            out[start : start + chunk.shape[0]] = value
        out[~self.alive[rows]] = 0.0
        return out

    def _projection(self, rows: np.ndarray, days: int) -> SimpleNamespace:
        """Moments of the W-day outlook of ``rows`` with no contact and after accepting each
        offer, from which :meth:`_window_value` assembles every action's value.

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
        cfg, offers = self.config, self.semantics.offers
        n = rows.shape[0]
        d = np.arange(days)
        phi = model.ENGAGEMENT_PERSISTENCE**d
        delta = self._phi_fatigue**d
        nu = self._phi_nurture**d
        e0 = self.engagement[rows][:, None]
        level = self.engagement_level[rows][:, None]
        e_path = level + phi * (e0 - level)
        f_path = self.fatigue[rows][:, None] * delta
        remaining = self.active_until[rows] - self.day  # (n, K); <= 0 inactive
        on = (d[None, None, :] < remaining[:, :, None]).astype(np.float64)  # (n, K, W)
        retention_path = np.einsum("nkw,k->nw", on, offers.retention)
        log_mult_path = np.einsum("nkw,k->nw", on, np.log1p(offers.spend_change))
        gamma = self._gamma
        h0 = self._hazard_prefactor(rows)[:, None] * self._churn_season(d)
        hazard0 = model.hazard(h0, e_path, f_path, retention_path, gamma)
        spend0 = (self.base_spend[rows][:, None] * self._spend_season(d)) * np.exp(
            model.SPEND_ENGAGEMENT * e_path + log_mult_path
        )
        fatigue_weight = gamma * delta / (1.0 + gamma * f_path)
        engagement_weight = model.HAZARD_ENGAGEMENT * phi

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
                (earned * (model.SPEND_ENGAGEMENT * phi + a_engage)).sum(-1),
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
        ready = self._readiness(rows, penalise_active=False)  # (n, K)
        renew_p = model.renew_probability(ready, e0)
        # A renewal happens on the offer's last day, d = end - 1, if the customer stays.
        expires_inside = (end <= days) & (offers.renewable & offers.is_offer)[None, :]
        at = np.clip(end - 1, 0, days - 1)
        survive_at = np.take_along_axis(accepted[-1], at[:, :, None], axis=2)[:, :, 0]
        renewal = np.where(expires_inside, renew_p * offers.price[None, :] * survive_at, 0.0)

        # Renewals of offers already held (the same whatever we do).
        held = (
            (remaining >= 1) & (remaining <= days) & (offers.renewable & offers.is_offer)[None, :]
        )
        at_held = np.clip(remaining - 1, 0, days - 1)
        held_value = np.where(
            held, renew_p * offers.price[None, :] * survive0[np.arange(n)[:, None], at_held], 0.0
        ).sum(axis=1)

        # Unprompted purchases: their level, and their first-order gain per unit of nurture.
        buyable = (offers.renewable & offers.is_offer)[None, :, None] * (1.0 - on)  # (n, K, W)
        p_buy = model.organic_probability(ready, cfg.organic_rate)  # (n, K)
        slope = (
            cfg.organic_rate
            * model.sigmoid(ready + model.ORGANIC_SHIFT)
            * (1.0 - model.sigmoid(ready + model.ORGANIC_SHIFT))
        )
        exposure = (buyable * survive0[:, None, :]).sum(-1)  # (n, K)
        decayed = (buyable * (survive0[:, None, :] * nu)).sum(-1)
        organic_level = (p_buy * offers.price[None, :] * exposure).sum(axis=1)
        room = np.maximum(1.0 - self.nurture[rows] / cfg.nurture_cap, 0.0)
        organic_slope = slope * offers.price[None, :] * decayed * room  # (n, K)
        return SimpleNamespace(
            base=base[:-1],
            accepted=accepted[:-1],
            renewal=renewal,
            constant=held_value + organic_level,
            nurture_value=organic_slope @ offers.spill.T,  # (n, K) per offer carried
        )

    def _window_value(
        self, rows: np.ndarray, terms: SimpleNamespace, what: str, days: int
    ) -> np.ndarray:
        """Every action's expected ``revenue`` or ``retained`` over ``days``, ``(n, A)``."""
        cfg, sem = self.config, self.semantics
        offers, messages = sem.offers, sem.messages
        p = self._projection(rows, days)
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
            read = cfg.nurture_gain * messages.nurture[m][None, :] * terms.attention
            value += read * p.nurture_value[:, k]
        return value
