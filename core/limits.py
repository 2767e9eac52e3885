"""Limits counted in the shared cache: the request rates (core.throttling), failed
authentications per client address (core.auth_guard) and enrollments per device
(voiceprint.services.enrollment_limits) all count here.

A window is counted in slices, each an atomic counter (`cache.incr`, atomic in Redis and in
local memory), so that every event is counted whatever process sees it and exactly the limit
is let through; an event is forgotten between 90% and 100% of the window after it happened.

Concurrent places (the open streams of a tenant) are leases: `limit` keys, each taken with an
atomic `cache.add` and kept alive by its holder, so a holder that dies frees its place when
its lease runs out.

When the cache cannot be reached a limit is not enforced (with a WARNING, at most once a
minute per process and limit): an unreachable Redis must not take the API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.cache.backends.base import BaseCache
from redis.exceptions import RedisError

from core.exceptions import ApiError, ErrorCode

logger = logging.getLogger(__name__)

#: Seconds between two warnings that the cache is unreachable, per process and limit.
CACHE_WARNING_INTERVAL = 60.0
#: What a cache that cannot be reached raises (Redis's errors, a refused socket).
CACHE_ERRORS = (RedisError, OSError)
#: A window is counted in this many slices.
SLICES = 10

_last_warning: dict[str, float] = {}


class RateLimitedError(ApiError):
    """42900 with the seconds to wait, which both surfaces send as `Retry-After`."""

    def __init__(self, message: str, *, wait: float) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, message)
        self.wait = wait


@dataclass(frozen=True)
class Place:
    """The outcome of counting one event: the slice it was counted in (`slot`), or None
    when the window was full, and then the seconds until its oldest event leaves it."""

    slot: str | None
    retry_after: float = 0.0

    @property
    def taken(self) -> bool:
        return self.slot is not None


def window_take(
    cache: BaseCache, key: str, *, limit: int, duration: float, now: float | None = None
) -> Place:
    """Count one event under `key` when fewer than `limit` are counted in the last
    `duration` seconds; otherwise count nothing and say how long to wait."""
    now = time.time() if now is None else now
    width = duration / SLICES
    current = int(now // width)
    first = current - SLICES + 1
    window = {index: f"{key}:{index}" for index in range(first, current + 1)}
    # Counted first, decided after on the place the count gave this event: of events arriving
    # together, in any process, exactly the first free places are let through.
    if cache.add(window[current], 1, timeout=math.ceil(duration + width)):
        place = 1
    else:
        place = cache.incr(window[current])
    earlier = cache.get_many([window[index] for index in range(first, current)])
    if sum(earlier.values()) + place <= limit:
        return Place(window[current])
    cache.decr(window[current])  # a refused event does not count
    counted = {**earlier, window[current]: place}
    oldest = min(index for index, name in window.items() if counted.get(name))
    return Place(None, max((oldest + SLICES) * width - now, 0.0))


def window_release(cache: BaseCache, slot: str) -> None:
    """Give back a place `window_take` took (the event it counted did not happen)."""
    try:
        cache.decr(slot)
    except ValueError:
        pass  # the slice has already left the window


@contextmanager
def failing_open(limit_name: str) -> Iterator[None]:
    """Run a limit's cache calls; when the cache is unreachable, log it (at most once a
    minute) and go on as if the limit had let the request through."""
    try:
        yield
    except CACHE_ERRORS as exc:
        warn_cache_unreachable(limit_name, exc)


def warn_cache_unreachable(limit_name: str, exc: Exception) -> None:
    now = time.monotonic()
    if now - _last_warning.get(limit_name, -math.inf) >= CACHE_WARNING_INTERVAL:
        _last_warning[limit_name] = now
        logger.warning("%s not enforced: the cache is unreachable (%s)", limit_name, exc)


def lease_take(cache: BaseCache, key: str, *, limit: int, holder: str, ttl: float) -> str | None:
    """Take one of `limit` places under `key` for `holder`, for `ttl` seconds unless renewed
    (lease_renew); the place's name, or None when all are held. A holder that dies without
    lease_release frees its place when the lease expires."""
    for index in range(limit):
        place = f"{key}:{index}"
        if cache.add(place, holder, timeout=math.ceil(ttl)):
            return place
    return None


def lease_renew(cache: BaseCache, place: str, *, holder: str, ttl: float) -> bool:
    """Keep `place` for `ttl` more seconds; False when it was lost (expired, taken over)."""
    if cache.get(place) != holder:
        return False
    return cache.touch(place, timeout=math.ceil(ttl))


def lease_release(cache: BaseCache, place: str, *, holder: str) -> None:
    if cache.get(place) == holder:
        cache.delete(place)
