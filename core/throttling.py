"""The per-tenant request rate (VOICEPRINT_RATE_LIMIT, e.g. "600/min"; default 3000/min;
"off": unlimited). Beyond it the API answers 42900.

Requests are counted in Django's default cache: Redis when a broker URL is set, so every web
process counts against one limit per tenant (config/settings.py CACHES); local memory
otherwise (one count per process).

DRF's SimpleRateThrottle reads a list of timestamps and writes it back, so two processes
answering the same tenant at once lose each other's request. Here a window is counted in
slices, each an atomic counter (`cache.incr`, atomic in Redis and in local memory): every
request is counted whatever process takes it, and exactly the rate is let through. A
request is forgotten between 90% and 100% of the window after it was made.

When the cache cannot be reached the limit is not enforced (with a WARNING, at most once a
minute per process): an unreachable Redis must not take the API down with it.
"""

from __future__ import annotations

import logging
import math
import time

from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

from core.authentication import TenantPrincipal

logger = logging.getLogger(__name__)

#: Seconds between two warnings that the cache is unreachable, per process.
CACHE_WARNING_INTERVAL = 60.0
_last_cache_warning = -math.inf


class TenantRateThrottle(SimpleRateThrottle):
    scope = "tenant"
    #: The window is counted in this many slices.
    slices = 10

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.user, TenantPrincipal):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.tenant.pk}

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        try:
            return self._count(key)
        except (RedisError, OSError) as exc:
            _warn_cache_unreachable(exc)
            return True

    def wait(self) -> float | None:
        """Seconds until the oldest request counted leaves the window (DRF's Retry-After)."""
        return getattr(self, "_retry_after", None)

    def _count(self, key: str) -> bool:
        now = self.timer()
        width = self.duration / self.slices
        current = int(now // width)
        first = current - self.slices + 1
        window = {index: f"{key}:{index}" for index in range(first, current + 1)}
        # Counted first, decided after on the place the count gave this request: of requests
        # arriving together, in any process, exactly the first free places are let through.
        if self.cache.add(window[current], 1, timeout=self.duration + width):
            place = 1
        else:
            place = self.cache.incr(window[current])
        earlier = self.cache.get_many([window[index] for index in range(first, current)])
        if sum(earlier.values()) + place <= self.num_requests:
            return True
        self.cache.decr(window[current])  # a refused request does not count
        counted = {**earlier, window[current]: place}
        oldest = min(index for index, name in window.items() if counted.get(name))
        self._retry_after = max((oldest + self.slices) * width - now, 0.0)
        return False


def _warn_cache_unreachable(exc: Exception) -> None:
    global _last_cache_warning
    now = time.monotonic()
    if now - _last_cache_warning >= CACHE_WARNING_INTERVAL:
        _last_cache_warning = now
        logger.warning("rate limit not enforced: the cache is unreachable (%s)", exc)
