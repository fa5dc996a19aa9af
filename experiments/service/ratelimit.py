"""Per-API-key rate limiting: a token bucket per key, refused with 429 and Retry-After.

Each key may make ``rate`` requests per second on average and ``burst`` at once; the bucket
refills continuously. The state is per process, so with N workers a key gets up to N times
the rate: the limit protects each worker, not a global quota.
"""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """Token buckets keyed by API key id."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key_id: int, now: float | None = None) -> float:
        """Take one token; return 0 when admitted, else the seconds until one is available."""
        if not self.enabled:
            return 0.0
        moment = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.burst), moment))
            tokens = min(float(self.burst), tokens + (moment - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, moment)
                return 0.0
            self._buckets[key_id] = (tokens, moment)
            return (1.0 - tokens) / self.rate


def retry_after_header(wait: float) -> str:
    """Whole seconds to wait, at least 1 (Retry-After takes integers)."""
    return str(max(1, math.ceil(wait)))
