"""The cap on enrollments per device and hour (VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR):
voices created on a device and samples added to voices bound to it, counted in the shared
cache (real Redis here), refused with 42900 beyond it, another device unaffected."""

from __future__ import annotations

import threading

import pytest

import core.limits
from core.limits import RateLimitedError
from tests import factories
from tests.conftest import redis_caches
from tests.helpers import VP, envelope
from tests.voiceprint.conftest import (
    add_sample,
    create_device,
    enroll,
    nothing_stored,
    post_raw,
    silence,
)
from voiceprint.services import device_enrollments_reserve


@pytest.fixture
def two_an_hour(settings) -> None:
    settings.VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR = 2


@pytest.mark.django_db
def test_a_device_takes_its_cap_of_enrollments_and_no_more(
    api, speech, media_root, counts_in_redis, two_an_hour
):
    create_device(api, "kitchen")
    create_device(api, "hall")
    # A refused recording (no speech) takes no place.
    envelope(post_raw(api, "voices/create", silence(), device_id="kitchen"), 40003)
    voice = enroll(api, speech.enroll("fangjun", 1), "kitchen")
    add_sample(api, voice["voice_id"], speech.enroll("fangjun", 2))

    with nothing_stored(media_root):
        refused = post_raw(api, "voices/create", speech.enroll("leijun", 1), device_id="kitchen")
        refused_sample = post_raw(
            api, f"voices/{voice['voice_id']}/samples", speech.enroll("fangjun", 3)
        )
    for response in (refused, refused_sample):
        envelope(response, 42900)
        message = response.json()["msg"]
        assert "kitchen" in message and "VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR" in message
        assert 1 <= int(response["Retry-After"]) <= 3600
    # Another device has its own count; reading and identifying are not enrollments.
    enroll(api, speech.enroll("leijun", 1), "hall")
    envelope(api.get(VP + "devices/kitchen"))


@pytest.mark.django_db
def test_the_cap_off_lets_enrollments_through(api, speech, counts_in_redis, settings):
    settings.VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR = None
    create_device(api, "kitchen")
    voice = enroll(api, speech.enroll("fangjun", 1), "kitchen")
    for n in (2, 3):
        add_sample(api, voice["voice_id"], speech.enroll("fangjun", n))


@pytest.mark.django_db(transaction=True)
def test_enrollments_at_once_cannot_pass_the_cap_together(tenant, counts_in_redis, settings):
    """24 enrollments of one device at once (threads, each its own Redis connection): the
    cap's 5 places go to exactly 5 of them."""
    settings.VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR = 5
    device = factories.device(tenant, "kitchen")
    admitted: list[bool] = []
    start = threading.Barrier(24)

    def enrollment() -> None:
        start.wait()
        try:
            with device_enrollments_reserve([device]):
                admitted.append(True)
        except RateLimitedError:
            admitted.append(False)

    threads = [threading.Thread(target=enrollment) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert admitted.count(True) == 5 and len(admitted) == 24


@pytest.mark.django_db
def test_with_redis_down_the_cap_is_not_enforced(tenant, settings, monkeypatch, caplog):
    settings.CACHES = redis_caches("redis://127.0.0.1:1/0", "down")  # nothing listens there
    settings.VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR = 1
    monkeypatch.setattr(core.limits, "_last_warning", {})
    caplog.set_level("WARNING", logger="core.limits")
    device = factories.device(tenant, "kitchen")

    for _ in range(3):
        with device_enrollments_reserve([device]):
            pass

    warnings = [r for r in caplog.records if "enrollment cap not enforced" in r.getMessage()]
    assert len(warnings) == 1
