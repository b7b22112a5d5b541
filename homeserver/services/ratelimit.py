"""Token-bucket rate limiting, in memory, keyed by whatever is limited (an address, an account).

Configured with Synapse's `rc_*` shapes; refusals are 429 `M_LIMIT_EXCEEDED`
with `retry_after_ms`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable

from homeserver.config import RateLimit
from homeserver.errors import MatrixError

# Buckets are forgotten least-recently-used first beyond this many keys.
MAX_KEYS = 100_000


class RateLimiter:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.limit.burst_count, now))
        return min(self.limit.burst_count, tokens + (now - at) * self.limit.per_second)

    def check(self, key: str, cost: float = 1.0, update: bool = True) -> None:
        """Take `cost` from the bucket, or raise 429 without taking anything."""
        now = self.clock()
        tokens = self._tokens(key, now)
        if tokens < cost:
            wait_ms = int((cost - tokens) / self.limit.per_second * 1000) + 1
            raise MatrixError(429, "M_LIMIT_EXCEEDED", "Too many requests", retry_after_ms=wait_ms)
        if update:
            self._buckets[key] = (tokens - cost, now)
            self._buckets.move_to_end(key)
            if len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)

    def record(self, key: str, cost: float = 1.0) -> None:
        """Count an action that already happened (a failed login) without refusing it."""
        now = self.clock()
        self._buckets[key] = (max(0.0, self._tokens(key, now) - cost), now)
        self._buckets.move_to_end(key)
