"""What offer level names mean to the simulated customers.

Per level (``K`` levels; ``none`` means no offer and cannot be accepted). Price is booked on
accept (and on each renewal); "while active" lasts the duration after an accept; readiness (a
logit) is linear in the customer's features
(:data:`~experiments.simulate.semantics.common.FEATURES`):

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
for content and devices). Any other name gets effects drawn by a generator seeded by the
factor and level names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from experiments.simulate.semantics.common import FEATURE_INDEX, FEATURES, named_rng


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
        w[FEATURE_INDEX["intercept"]] = -1.4 - 0.3 * log_size
        w[FEATURE_INDEX["need"]] = 0.8 + 0.2 * log_size
        w[FEATURE_INDEX["roaming"]] = 1.5
        w[FEATURE_INDEX["feature_phone"]] = -2.5
        w[FEATURE_INDEX["prepaid"]] = 0.3
        w[FEATURE_INDEX["engagement"]] = 0.2
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
        w[FEATURE_INDEX["intercept"]] = -1.6 + 0.04 * percent
        w[FEATURE_INDEX["prepaid"]] = 0.6
        w[FEATURE_INDEX["engagement"]] = -0.5
        w[FEATURE_INDEX["tenure_years"]] = -0.1
        w[FEATURE_INDEX["log_spend"]] = 0.3
        row.update(
            duration=60,
            spend_change=-percent / 100.0,
            retention=0.04 * percent,
            engagement_gain=0.05,
            click_appeal=0.15 + 0.01 * percent,
            season_phase=math.pi,
        )
    elif kind == "loyalty_points":
        w[FEATURE_INDEX["intercept"]] = -1.6
        w[FEATURE_INDEX["tenure_years"]] = 0.3
        w[FEATURE_INDEX["postpaid"]] = 0.4
        w[FEATURE_INDEX["engagement"]] = 0.3
        row.update(
            duration=90,
            spend_change=0.03,
            retention=0.3,
            engagement_gain=0.15,
            click_appeal=0.05,
            season_phase=0.5 * math.pi,
        )
    elif kind == "device_upgrade":
        w[FEATURE_INDEX["intercept"]] = -3.2
        w[FEATURE_INDEX["tenure_years"]] = 0.4
        w[FEATURE_INDEX["feature_phone"]] = 1.0
        w[FEATURE_INDEX["postpaid"]] = 0.5
        w[FEATURE_INDEX["log_spend"]] = 0.3
        w[FEATURE_INDEX["ios"]] = 0.2
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
        w[FEATURE_INDEX["intercept"]] = -2.0
        w[FEATURE_INDEX["ios"]] = 0.5
        w[FEATURE_INDEX["feature_phone"]] = -2.0
        w[FEATURE_INDEX["need"]] = 0.5
        w[FEATURE_INDEX["engagement"]] = 0.5
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
        rng = named_rng(seed, factor, name)
        w[:] = rng.normal(0.0, 0.3, len(FEATURES))
        w[FEATURE_INDEX["intercept"]] = rng.normal(-2.0, 0.4)
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
        weights=np.stack([np.asarray(row["weights"]) for row in rows]),
        spill=spill,
        season_amplitude=column("season_amplitude"),
        season_phase=column("season_phase"),
    )
