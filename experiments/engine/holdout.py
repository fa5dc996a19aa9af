"""Stable assignment of customers to the randomized holdout.

A customer's group is a pure function of (experiment key, customer id): the first 8 bytes of
``sha256(key \\x00 customer)`` read as an integer and scaled to [0, 1), compared with the
holdout share. The same customer therefore stays in one group across requests, servers and
restarts, and the assignment is independent of any other customer's.
"""

from __future__ import annotations

import hashlib

from experiments.vocabulary import Group


def unit_hash(experiment_key: str, customer_id: str) -> float:
    """A uniform number in [0, 1) determined by the experiment and the customer."""
    digest = hashlib.sha256(f"{experiment_key}\x00{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_group(experiment_key: str, customer_id: str, holdout_share: float) -> Group:
    """``Group.HOLDOUT`` for a stable ``holdout_share`` of customers, else ``Group.TREATMENT``."""
    if unit_hash(experiment_key, customer_id) < holdout_share:
        return Group.HOLDOUT
    return Group.TREATMENT


def in_panel(salt: str, customer_id: str, share: float) -> bool:
    """Whether a customer belongs to a strategy experiment's persistent panel: a stable
    ``share`` of customers, by a hash independent of the holdout's (salted apart)."""
    return unit_hash(f"{salt}\x00panel", customer_id) < share


def panel_strategy(salt: str, customer_id: str, candidates: int) -> int:
    """A panel customer's strategy, uniform over ``candidates`` (>= 1) and stable: a third,
    independent hash of the customer picks one of them."""
    return min(
        candidates - 1, int(unit_hash(f"{salt}\x00panel-strategy", customer_id) * candidates)
    )
