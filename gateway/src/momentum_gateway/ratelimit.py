"""Token buckets and in-flight caps per key (a user's ``sub`` or a client address), per replica."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBuckets:
    """``rate`` tokens a second up to ``burst``; one request costs one token.

    State is a dict of ``key -> (tokens, last refill)``, bounded by ``max_keys``: when full,
    buckets that have refilled completely are forgotten first (they carry no information),
    then the oldest half.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> int:
        """0 when the request may pass, else the whole seconds until it may (``Retry-After``)."""
        if self.rate <= 0:
            return 0
        now = self._clock()
        state = self._buckets.get(key)
        if state is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            self._buckets[key] = (self.burst - 1.0, now)
            return 0
        tokens, last = state
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        idle = [k for k, (_, last) in self._buckets.items() if now - last >= full_after]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            for key in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[key]


class InFlight:
    """Requests in flight per key, at most ``limit`` each (0 switches the cap off).

    Only keys with a request in flight are kept, so the state is bounded by the number of
    requests the replica is serving.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def __len__(self) -> int:
        return len(self._counts)

    def count(self, key: str) -> int:
        return self._counts.get(key, 0)

    def enter(self, key: str) -> bool:
        """Count one more request for ``key``; False (and nothing counted) when at the cap."""
        count = self._counts.get(key, 0)
        if count >= self.limit:
            return False
        self._counts[key] = count + 1
        return True

    def leave(self, key: str) -> None:
        count = self._counts[key] - 1
        if count:
            self._counts[key] = count
        else:
            del self._counts[key]
