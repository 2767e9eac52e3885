"""The cap on enrollments per device and hour (VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR):
voices created on a device and samples added to voices bound to it, through the API. A
token read out of one device cannot fill it (and its household's identifications) with
voices of its own choosing at the speed of the API.

Each enrollment takes a place per device before its recording is embedded, atomically in the
shared cache (core.limits), so that concurrent requests cannot pass the cap together; an
enrollment that fails gives its places back. The console and `enroll_folder` are the
operator's and are not capped. The cache unreachable, the cap is not enforced.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

from core.limits import RateLimitedError, failing_open, window_release, window_take
from devices.models import Device

LIMIT_NAME = "enrollment cap"
HOUR = 3600


@contextmanager
def device_enrollments_reserve(devices: Iterable[Device]) -> Iterator[None]:
    """Take one enrollment place on each of `devices` for the block, refusing (42900) when
    one of them has had VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR in the last hour; the
    places are given back when the block raises."""
    slots = _take_places(list(devices))
    try:
        yield
    except BaseException:
        _give_back(slots)
        raise


def _take_places(devices: list[Device]) -> list[str]:
    limit = settings.VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR
    slots: list[str] = []
    if limit is None:
        return slots
    with failing_open(LIMIT_NAME):
        for device in devices:
            place = window_take(cache, f"enroll:device:{device.pk}", limit=limit, duration=HOUR)
            if not place.taken:
                _give_back(slots)
                raise RateLimitedError(
                    f"device {device.device_id} has had {limit} enrollments in the last hour "
                    f"(VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR); try again in "
                    f"{max(1, round(place.retry_after))} seconds",
                    wait=place.retry_after,
                )
            slots.append(place.slot)
    return slots


def _give_back(slots: list[str]) -> None:
    with failing_open(LIMIT_NAME):
        for slot in slots:
            window_release(cache, slot)
