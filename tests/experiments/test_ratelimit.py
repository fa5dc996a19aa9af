"""Token buckets per API key, with hand-computed refills."""

from __future__ import annotations

import pytest

from experiments.service.ratelimit import RateLimiter, retry_after_header


def test_burst_then_refill_at_the_rate() -> None:
    """rate 2/s, burst 3: three at t=0 pass; the fourth waits (1 - 0) / 2 = 0.5 s;
    at t=0.5 one token has refilled (0.5 s x 2/s) and the next passes."""
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.acquire(7, now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire(7, now=0.0) == pytest.approx(0.5)
    assert limiter.acquire(7, now=0.5) == 0.0
    assert limiter.acquire(8, now=0.5) == 0.0  # another key has its own bucket


def test_disabled_limiter_admits_everything() -> None:
    limiter = RateLimiter(rate=0.0, burst=1)
    assert not limiter.enabled
    assert all(limiter.acquire(1, now=0.0) == 0.0 for _ in range(100))


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"
