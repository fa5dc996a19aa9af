"""What the level names of a decision space mean to the simulated customers.

The world reads four factors by name: ``offer``, ``message``, ``channel`` and ``timing``
(a few aliases are accepted, see ``_FACTOR_ALIASES``). Known level names get the semantics
below; any other level, and every level of any other factor, gets effects drawn from a
generator seeded by ``(seed, factor name, level name)``, so renaming or adding one level
does not change the others. A missing factor behaves as one neutral level.

Offers (per level; ``K`` levels; ``none`` means no offer and cannot be accepted). Price is
booked on accept (and on each renewal); "while active" lasts the duration after an accept;
readiness (a logit) is linear in the customer's features:

- ``data_bundle_<X>gb``: price 3 + 1.8X, 30 days, renewable; adds 0.8X/30 GB a day and a
  little retention; ready: heavy data users, roaming; not feature phones; a bigger X needs
  heavier use.
- ``discount_<P>``: price 0, 60 days; spend x (1 - P/100), retention 0.04P (log-hazard);
  ready: prepaid, disengaged, and more so for a bigger P.
- ``loyalty_points``: price 0, 90 days; retention 0.3, spend +3%; ready: long tenure,
  postpaid, engaged.
- ``device_upgrade``: price 30, 365 days; spend +30%, retention 0.8; ready: long tenure (an
  old handset), feature phones, postpaid.
- ``content_pass``: price 6, 30 days, renewable; +0.1 GB a day, retention 0.2; ready:
  smartphones, data users, engaged.

A renewable offer renews at expiry with a probability that grows with readiness, and is
sometimes bought unprompted (see the world). Accepting also bumps engagement a little (more
for content and devices).

Messages: ``informational`` and ``educational`` earn fewer clicks and accepts now but
nurture (raise readiness for the offer they carry, some for its kind and a little for every
offer; with offer ``none``, some for every offer) and, with nurturing on, raise engagement;
``promotional`` and ``urgency`` earn more clicks and slightly more accepts now but cost the
most fatigue (x1.3 and x2.2, against x0.5-0.8 for the others) and nurture nothing;
``personalised`` earns more where the offer fits the customer (``relevance x tanh(readiness
+ 1.5)``). Under drift urgency and promotional framing wear out (lose click appeal daily).

Channels: fit depends on the device (feature phones cannot see push or in-app; they read
SMS), on a personal preference and, for in-app and push, on engagement; SMS tires the most
and in-app the least. Under drift, push and in-app gain and SMS and email lose over time.

Timing: each slot is a local delivery hour (morning 9, lunch 12.5, afternoon 15.5, evening
19.5, night 23); the fit falls with the squared distance to the customer's preferred hour;
night slots (22:00-07:00) cost clicks and double the fatigue.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bandit import DecisionSpace

#: Columns of the customer feature matrix that readiness is linear in (see the world).
FEATURES = (
    "intercept",
    "need",  # log of (daily data use / 0.25 GB): 0 for a typical smartphone user
    "tenure_years",  # capped at 6
    "prepaid",
    "postpaid",
    "ios",
    "feature_phone",
    "roaming",
    "engagement",
    "log_spend",  # log of (daily spend / 1.0)
)
_F = {name: position for position, name in enumerate(FEATURES)}

#: Device classes the world knows, and their column in the channel fit table.
DEVICES = ("android", "ios", "feature_phone")

_FACTOR_ALIASES = {
    "offer": ("offer", "offers", "product"),
    "message": ("message", "messages", "creative", "framing", "copy"),
    "channel": ("channel", "channels"),
    "timing": ("timing", "time", "send_time", "slot"),
}
_NIGHT_START, _NIGHT_END = 22.0, 7.0


def _named_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on the seed and the names (stable across runs)."""
    words = [zlib.crc32(name.encode("utf-8")) for name in names]
    return np.random.default_rng(np.random.SeedSequence([int(seed) % 2**32, 7919, *words]))


def is_night(hour: np.ndarray | float) -> np.ndarray:
    """True for local hours in the night window [22:00, 07:00)."""
    hour = np.asarray(hour, dtype=np.float64) % 24.0
    return (hour >= _NIGHT_START) | (hour < _NIGHT_END)


# --------------------------------------------------------------------------- offers
@dataclass(frozen=True)
class OfferTable:
    """Per offer level (shape ``(K,)`` unless said otherwise)."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    is_offer: np.ndarray  # bool: False for "none" (nothing to accept)
    price: np.ndarray  # one-off revenue on accept and on each renewal
    duration: np.ndarray  # int, days the offer stays active after an accept
    renewable: np.ndarray  # bool: renews at expiry with probability sigmoid(readiness + ...)
    spend_change: np.ndarray  # relative change of the daily base spend while active
    usage_add: np.ndarray  # GB per day added while active
    retention: np.ndarray  # log-hazard reduction while active
    engagement_gain: np.ndarray  # engagement bump on accept
    click_appeal: np.ndarray  # click logit shift of the offer itself
    weights: np.ndarray  # (K, len(FEATURES)) readiness logit on customer features
    spill: np.ndarray  # (K, K) share of a nurture on row's offer landing on column's offer
    season_amplitude: np.ndarray  # readiness seasonality amplitude (drift)
    season_phase: np.ndarray  # its phase, radians


def _bundle_size(name: str) -> float:
    match = re.search(r"(\d+(?:\.\d+)?)\s*gb", name)
    if match:
        return max(float(match.group(1)), 0.1)
    match = re.search(r"(\d+(?:\.\d+)?)\s*mb", name)
    if match:
        return max(float(match.group(1)) / 1024.0, 0.1)
    return 2.0


def _discount_percent(name: str) -> float:
    match = re.search(r"(\d+(?:\.\d+)?)", name)
    return min(max(float(match.group(1)), 1.0), 90.0) if match else 15.0


def offer_kind(name: str) -> str:
    """The semantic kind of an offer level name (``other`` when unknown)."""
    text = name.lower()
    if text in ("none", "no_offer", "nothing", "no-offer", "control"):
        return "none"
    if text.startswith(("data_bundle", "bundle", "data")):
        return "data_bundle"
    if text.startswith(("discount", "price_cut")):
        return "discount"
    if text.startswith(("loyalty", "points")):
        return "loyalty_points"
    if text.startswith(("device_upgrade", "upgrade", "handset")):
        return "device_upgrade"
    if text.startswith(("content", "streaming")):
        return "content_pass"
    return "other"


def _offer_row(name: str, kind: str, seed: int, factor: str) -> dict[str, object]:
    """Semantics of one offer level as a dict of scalars plus a weight vector."""
    w = np.zeros(len(FEATURES))
    row: dict[str, object] = {
        "is_offer": True,
        "price": 0.0,
        "duration": 30,
        "renewable": False,
        "spend_change": 0.0,
        "usage_add": 0.0,
        "retention": 0.0,
        "engagement_gain": 0.0,
        "click_appeal": 0.0,
        "season_amplitude": 0.5,
        "season_phase": 0.0,
    }
    if kind == "none":
        row.update(is_offer=False, duration=0, click_appeal=-0.2, season_amplitude=0.0)
    elif kind == "data_bundle":
        size = _bundle_size(name.lower())
        log_size = math.log2(size)
        w[_F["intercept"]] = -1.4 - 0.3 * log_size
        w[_F["need"]] = 0.8 + 0.2 * log_size
        w[_F["roaming"]] = 1.5
        w[_F["feature_phone"]] = -2.5
        w[_F["prepaid"]] = 0.3
        w[_F["engagement"]] = 0.2
        row.update(
            price=3.0 + 1.8 * size,
            renewable=True,
            usage_add=0.8 * size / 30.0,
            retention=0.1,
            engagement_gain=0.05,
            season_phase=0.0,  # peaks with the travel season
        )
    elif kind == "discount":
        percent = _discount_percent(name.lower())
        w[_F["intercept"]] = -1.6 + 0.04 * percent
        w[_F["prepaid"]] = 0.6
        w[_F["engagement"]] = -0.5
        w[_F["tenure_years"]] = -0.1
        w[_F["log_spend"]] = 0.3
        row.update(
            duration=60,
            spend_change=-percent / 100.0,
            retention=0.04 * percent,
            engagement_gain=0.05,
            click_appeal=0.15 + 0.01 * percent,
            season_phase=math.pi,
        )
    elif kind == "loyalty_points":
        w[_F["intercept"]] = -1.6
        w[_F["tenure_years"]] = 0.3
        w[_F["postpaid"]] = 0.4
        w[_F["engagement"]] = 0.3
        row.update(
            duration=90,
            spend_change=0.03,
            retention=0.3,
            engagement_gain=0.15,
            click_appeal=0.05,
            season_phase=0.5 * math.pi,
        )
    elif kind == "device_upgrade":
        w[_F["intercept"]] = -3.2
        w[_F["tenure_years"]] = 0.4
        w[_F["feature_phone"]] = 1.0
        w[_F["postpaid"]] = 0.5
        w[_F["log_spend"]] = 0.3
        w[_F["ios"]] = 0.2
        row.update(
            price=30.0,
            duration=365,
            spend_change=0.3,
            usage_add=0.05,
            retention=0.8,
            engagement_gain=0.2,
            click_appeal=0.2,
            season_phase=1.5 * math.pi,
        )
    elif kind == "content_pass":
        w[_F["intercept"]] = -2.0
        w[_F["ios"]] = 0.5
        w[_F["feature_phone"]] = -2.0
        w[_F["need"]] = 0.5
        w[_F["engagement"]] = 0.5
        row.update(
            price=6.0,
            renewable=True,
            usage_add=0.1,
            retention=0.2,
            engagement_gain=0.2,
            click_appeal=0.1,
            season_phase=0.75 * math.pi,
        )
    else:
        rng = _named_rng(seed, factor, name)
        w[:] = rng.normal(0.0, 0.3, len(FEATURES))
        w[_F["intercept"]] = rng.normal(-2.0, 0.4)
        row.update(
            price=float(rng.uniform(2.0, 15.0)),
            duration=int(rng.choice([30, 60, 90])),
            renewable=bool(rng.random() < 0.5),
            spend_change=float(rng.normal(0.0, 0.05)),
            usage_add=float(rng.uniform(0.0, 0.05)),
            retention=float(rng.uniform(0.0, 0.4)),
            engagement_gain=float(rng.uniform(0.0, 0.15)),
            click_appeal=float(rng.normal(0.0, 0.2)),
            season_amplitude=float(rng.uniform(0.2, 0.7)),
            season_phase=float(rng.uniform(0.0, 2 * math.pi)),
        )
    row["weights"] = w
    return row


def offer_table(levels: Sequence[str], seed: int, factor: str = "offer") -> OfferTable:
    """Semantics of every offer level, in order."""
    kinds = tuple(offer_kind(name) for name in levels)
    rows = [_offer_row(name, kind, seed, factor) for name, kind in zip(levels, kinds, strict=True)]

    def column(key: str, dtype: type = np.float64) -> np.ndarray:
        return np.array([row[key] for row in rows], dtype=dtype)

    n = len(levels)
    is_offer = column("is_offer", bool)
    spill = np.full((n, n), 0.1)
    for i in range(n):
        for j in range(n):
            if kinds[i] == kinds[j] and kinds[i] != "other":
                spill[i, j] = 0.5
        spill[i, i] = 1.0
        if not is_offer[i]:  # a message without an offer educates about everything a little
            spill[i, :] = 0.3
    spill[:, ~is_offer] = 0.0
    return OfferTable(
        names=tuple(levels),
        kinds=kinds,
        is_offer=is_offer,
        price=column("price"),
        duration=column("duration", np.int64),
        renewable=column("renewable", bool),
        spend_change=column("spend_change"),
        usage_add=column("usage_add"),
        retention=column("retention"),
        engagement_gain=column("engagement_gain"),
        click_appeal=column("click_appeal"),
        weights=np.stack([row["weights"] for row in rows]),  # type: ignore[misc]
        spill=spill,
        season_amplitude=column("season_amplitude"),
        season_phase=column("season_phase"),
    )


# --------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class MessageTable:
    """Per message level (shape ``(M,)``)."""

    names: tuple[str, ...]
    click: np.ndarray  # click logit shift
    accept: np.ndarray  # accept-given-click logit shift
    relevance: np.ndarray  # weight of tanh(readiness + 1.5) in both logits
    nurture: np.ndarray  # readiness gain per read message (x WorldConfig.nurture_gain)
    fatigue: np.ndarray  # fatigue multiplier
    engagement: np.ndarray  # engagement gain per read message (nurturing only)
    wear_out: np.ndarray  # click appeal lost per day under drift


_MESSAGES = {
    #               click accept relev nurture fatigue engage wear_out
    "informational": (0.0, -0.5, 0.0, 0.6, 0.7, 0.03, 0.0),
    "educational": (-0.3, -0.8, 0.0, 1.0, 0.5, 0.06, 0.0),
    "promotional": (0.4, 0.25, 0.0, 0.0, 1.3, 0.0, 0.003),
    "urgency": (0.8, 0.35, 0.0, 0.0, 2.2, 0.0, 0.006),
    "personalised": (0.15, 0.1, 0.6, 0.3, 0.8, 0.02, 0.0),
}
_MESSAGE_ALIASES = {
    "info": "informational",
    "information": "informational",
    "education": "educational",
    "tutorial": "educational",
    "how_to": "educational",
    "promo": "promotional",
    "promotion": "promotional",
    "urgent": "urgency",
    "scarcity": "urgency",
    "personalized": "personalised",
    "personal": "personalised",
}
_NEUTRAL_MESSAGE = (0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def message_table(levels: Sequence[str] | None, seed: int, factor: str = "message") -> MessageTable:
    """Semantics of every message level; ``None`` (no message factor) is one neutral level."""
    rows = []
    names = tuple(levels) if levels is not None else ("(neutral)",)
    for name in names:
        if levels is None:
            rows.append(_NEUTRAL_MESSAGE)
            continue
        key = _MESSAGE_ALIASES.get(name.lower(), name.lower())
        if key in _MESSAGES:
            rows.append(_MESSAGES[key])
            continue
        rng = _named_rng(seed, factor, name)
        rows.append(
            (
                rng.normal(0.0, 0.3),
                rng.normal(0.0, 0.3),
                rng.uniform(0.0, 0.3),
                rng.uniform(0.0, 0.5),
                rng.uniform(0.6, 1.6),
                abs(rng.normal(0.0, 0.02)),
                abs(rng.normal(0.0, 0.002)),
            )
        )
    table = np.array(rows, dtype=np.float64)
    return MessageTable(names, *(table[:, column].copy() for column in range(7)))


# --------------------------------------------------------------------------- channels
@dataclass(frozen=True)
class ChannelTable:
    """Per channel level (shape ``(C,)``)."""

    names: tuple[str, ...]
    device_fit: np.ndarray  # (C, len(DEVICES)) click logit shift by device class
    engaged: np.ndarray  # weight of engagement in the fit
    fatigue: np.ndarray  # fatigue per contact
    trend: np.ndarray  # fit gained per day under drift


_CHANNELS = {
    #         android ios  feature engaged fatigue trend
    "sms": (0.0, -0.1, 0.6, 0.0, 1.0, -0.006),
    "email": (-0.3, -0.2, -1.0, 0.1, 0.4, -0.004),
    "push": (0.2, 0.3, -4.0, 0.3, 0.8, 0.006),
    "in_app": (0.0, 0.1, -4.0, 0.6, 0.25, 0.004),
}
_CHANNEL_ALIASES = {"text": "sms", "e-mail": "email", "inapp": "in_app", "app": "in_app"}
_NEUTRAL_CHANNEL = (0.0, 0.0, 0.0, 0.0, 0.6, 0.0)


def channel_table(levels: Sequence[str] | None, seed: int, factor: str = "channel") -> ChannelTable:
    """Semantics of every channel level; ``None`` (no channel factor) is one neutral level."""
    rows = []
    names = tuple(levels) if levels is not None else ("(neutral)",)
    for name in names:
        if levels is None:
            rows.append(_NEUTRAL_CHANNEL)
            continue
        key = _CHANNEL_ALIASES.get(name.lower(), name.lower())
        if key in _CHANNELS:
            rows.append(_CHANNELS[key])
            continue
        rng = _named_rng(seed, factor, name)
        rows.append(
            (
                *rng.normal(0.0, 0.4, 3),
                rng.normal(0.2, 0.2),
                rng.uniform(0.3, 1.0),
                rng.normal(0.0, 0.003),
            )
        )
    table = np.array(rows, dtype=np.float64)
    return ChannelTable(names, table[:, 0:3].copy(), table[:, 3], table[:, 4], table[:, 5])


# --------------------------------------------------------------------------- timing
_SLOTS = {
    "morning": 9.0,
    "breakfast": 8.0,
    "lunch": 12.5,
    "midday": 12.5,
    "noon": 12.0,
    "afternoon": 15.5,
    "evening": 19.5,
    "night": 23.0,
    "late": 23.0,
}


def timing_hours(levels: Sequence[str] | None, seed: int, factor: str = "timing") -> np.ndarray:
    """Local delivery hour of every timing level, shape ``(T,)``; NaN means "at the visit"
    (no timing factor). Level names like ``h18`` or ``18:00`` give that hour."""
    if levels is None:
        return np.array([np.nan])
    hours = []
    for name in levels:
        key = name.lower()
        if key in _SLOTS:
            hours.append(_SLOTS[key])
            continue
        match = re.fullmatch(r"h?(\d{1,2})(?::(\d{2}))?h?", key)
        if match and int(match.group(1)) < 24:
            hours.append(int(match.group(1)) + int(match.group(2) or 0) / 60.0)
            continue
        hours.append(float(_named_rng(seed, factor, name).uniform(7.0, 22.0)))
    return np.array(hours, dtype=np.float64)


# --------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class ActionTable:
    """Each action's level of the four known factors, and the summed effects of the others.

    All arrays have shape ``(A,)``.
    """

    offer: np.ndarray
    message: np.ndarray
    channel: np.ndarray
    timing: np.ndarray
    extra_click: np.ndarray
    extra_accept: np.ndarray
    extra_fatigue: np.ndarray  # multiplier


@dataclass(frozen=True)
class Semantics:
    offers: OfferTable
    messages: MessageTable
    channels: ChannelTable
    timing_hour: np.ndarray  # (T,)
    actions: ActionTable
    factor_roles: dict[str, str]  # factor name -> role ("offer", ..., or "other")


def _role_of(name: str) -> str:
    for role, aliases in _FACTOR_ALIASES.items():
        if name.lower() in aliases:
            return role
    return "other"


def build_semantics(space: DecisionSpace, seed: int) -> Semantics:
    """Read a decision space's factors and levels into effect tables."""
    roles: dict[str, str] = {}
    taken: set[str] = set()
    for name in space.factor_names:
        role = _role_of(name)
        if role != "other" and role in taken:
            role = "other"
        taken.add(role)
        roles[name] = role
    by_role = {role: name for name, role in roles.items() if role != "other"}
    index = space.level_index
    n_actions = space.n_actions
    zeros = np.zeros(n_actions, dtype=np.int64)

    def column(role: str) -> np.ndarray:
        if role not in by_role:
            return zeros
        return index[:, space.factor_names.index(by_role[role])].copy()

    offer_levels = space.factors[by_role["offer"]] if "offer" in by_role else ("offer",)
    offers = offer_table(offer_levels, seed, by_role.get("offer", "offer"))
    if "offer" not in by_role:
        # Without an offer factor every action carries one generic product.
        offers = offer_table(("(generic)",), seed, "offer")
    messages = message_table(space.factors.get(by_role.get("message", "")), seed)
    channels = channel_table(space.factors.get(by_role.get("channel", "")), seed)
    hours = timing_hours(space.factors.get(by_role.get("timing", "")), seed)

    extra_click = np.zeros(n_actions)
    extra_accept = np.zeros(n_actions)
    extra_fatigue = np.ones(n_actions)
    for position, name in enumerate(space.factor_names):
        if roles[name] != "other":
            continue
        levels = space.factors[name]
        effects = np.array(
            [
                (
                    (rng := _named_rng(seed, name, level)).normal(0.0, 0.25),
                    rng.normal(0.0, 0.25),
                    rng.lognormal(0.0, 0.2),
                )
                for level in levels
            ]
        )
        codes = index[:, position]
        extra_click += effects[codes, 0]
        extra_accept += effects[codes, 1]
        extra_fatigue *= effects[codes, 2]
    actions = ActionTable(
        offer=column("offer"),
        message=column("message"),
        channel=column("channel"),
        timing=column("timing"),
        extra_click=extra_click,
        extra_accept=extra_accept,
        extra_fatigue=extra_fatigue,
    )
    return Semantics(offers, messages, channels, hours, actions, roles)
