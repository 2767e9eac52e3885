"""Per-tenant rate limiting: on by default with a generous rate, per tenant, 42900 beyond it,
and off with VOICEPRINT_RATE_LIMIT=off. Counted in the default cache: Redis when a broker
(or cache) URL is set, every request counted once whatever thread takes it, and no limit
rather than no API when the cache is unreachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid

import pytest
import redis
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache

import core.limits
from config.settings import DEFAULT_RATE_LIMIT, tenant_rate_limit
from core.authentication import TenantPrincipal
from core.throttling import TenantRateThrottle
from tenancy.models import Tenant
from tests.conftest import PROJECT_ROOT
from tests.helpers import VP, envelope
from tests.integration.conftest import REDIS_URL, require_redis
from tests.voice_api.conftest import error as voice_error

V = "/v1/voice/"


def per_minute(rate: str) -> float:
    requests, seconds = TenantRateThrottle().parse_rate(rate)
    return requests * 60 / seconds


@pytest.fixture(autouse=True)
def fresh_counts():
    """Request counts live in the cache; each test starts from none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def five_a_minute(monkeypatch) -> None:
    monkeypatch.setattr(TenantRateThrottle, "rate", "5/min", raising=False)


def test_the_limit_is_on_by_default_and_generous(monkeypatch):
    monkeypatch.delenv("VOICEPRINT_RATE_LIMIT", raising=False)

    assert tenant_rate_limit() == DEFAULT_RATE_LIMIT
    assert per_minute(tenant_rate_limit()) >= 1000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", DEFAULT_RATE_LIMIT), ("off", None), (" OFF ", None), ("600/min", "600/min")],
)
def test_the_limit_is_read_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("VOICEPRINT_RATE_LIMIT", raw)
    assert tenant_rate_limit() == expected


@pytest.mark.parametrize("raw", ["600", "fast", "0/min", "600/fortnight"])
def test_a_misspelt_limit_stops_the_server_at_start(monkeypatch, raw):
    monkeypatch.setenv("VOICEPRINT_RATE_LIMIT", raw)
    with pytest.raises(ValueError, match="VOICEPRINT_RATE_LIMIT"):
        tenant_rate_limit()


@pytest.mark.django_db
def test_many_requests_of_one_tenant_pass_under_the_default(api):
    """The limit the server runs with (the default here) never trips a busy but ordinary
    client, nor this test suite."""
    codes = {api.get(VP + "roles").json()["code"] for _ in range(300)}

    assert codes == {0}


@pytest.mark.django_db
def test_beyond_the_limit_a_tenant_gets_42900_and_others_do_not(api, other_api, five_a_minute):
    for _ in range(5):
        envelope(api.get(VP + "roles"))

    refused = api.get(VP + "roles")
    envelope(refused, 42900)
    refused_voice = api.post(V + "forget", {"id": "x"}, format="json")
    voice_error(refused_voice, 429, 42900)
    # DRF's header survives on both surfaces: when to try again, in whole seconds.
    for response in (refused, refused_voice):
        assert 1 <= int(response["Retry-After"]) <= 60, response.headers
    envelope(other_api.get(VP + "roles"))  # another tenant has its own count


# --- where the counts live -----------------------------------------------------------------------


def default_cache_of(**env: str) -> dict:
    """settings.CACHES["default"] of a process started with `env` (and no other cache or
    broker variables)."""
    names = {"CELERY_BROKER_URL", "VOICEPRINT_CACHE_URL", "VOICEPRINT_CACHE_KEY_PREFIX"}
    environment = {key: value for key, value in os.environ.items() if key not in names}
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.CACHES['default']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env={**environment, **env},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_with_a_redis_broker_the_counts_are_shared_in_redis():
    default = default_cache_of(CELERY_BROKER_URL="redis://redis.internal:6379/0")

    assert default["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert default["LOCATION"] == "redis://redis.internal:6379/0"


def test_a_cache_url_of_its_own_wins_over_the_broker():
    default = default_cache_of(
        CELERY_BROKER_URL="redis://redis.internal:6379/0",
        VOICEPRINT_CACHE_URL="redis://cache.internal:6379/2",
        VOICEPRINT_CACHE_KEY_PREFIX="staging",
    )

    assert default["LOCATION"] == "redis://cache.internal:6379/2"
    assert default["KEY_PREFIX"] == "staging"


@pytest.mark.parametrize("broker", ["", "amqp://guest@rabbit//"])
def test_without_a_redis_url_each_process_counts_in_its_memory(broker):
    default = default_cache_of(CELERY_BROKER_URL=broker)

    assert default["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def redis_cache(location: str, prefix: str = "") -> RedisCache:
    """Django's Redis cache at `location`; given to the throttle alone (`cache` is DRF's
    own hook), so that the suite's default cache, which the tests clear, stays in memory."""
    return RedisCache(location, {"KEY_PREFIX": prefix, "OPTIONS": {"socket_connect_timeout": 1}})


@pytest.fixture
def counts_in_redis(monkeypatch):
    """The throttle counting on the real Redis, under a key prefix of this test's own."""
    require_redis()
    prefix = f"voiceprint-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(TenantRateThrottle, "cache", redis_cache(REDIS_URL, prefix))
    yield
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def tenant_request(pk: int):
    """What the throttle reads of a request: its authenticated tenant."""

    class Request:
        user = TenantPrincipal(tenant=Tenant(pk=pk), token_id=1)

    return Request()


@pytest.mark.parametrize("where", ["memory", "redis"])
def test_requests_at_once_are_each_counted_once(request, where, monkeypatch):
    """32 threads asking at once for one tenant: exactly the rate is let through."""
    if where == "redis":
        request.getfixturevalue("counts_in_redis")
    monkeypatch.setattr(TenantRateThrottle, "rate", "50/hour", raising=False)
    admitted: list[bool] = []
    start = threading.Barrier(32)

    def client() -> None:
        start.wait()
        for _ in range(6):
            admitted.append(TenantRateThrottle().allow_request(tenant_request(1), None))

    threads = [threading.Thread(target=client) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(admitted) == 32 * 6
    assert admitted.count(True) == 50
    assert TenantRateThrottle().allow_request(tenant_request(2), None)  # another tenant


@pytest.mark.django_db
def test_an_unreachable_cache_lifts_the_limit_instead_of_failing_requests(
    api, five_a_minute, monkeypatch, caplog
):
    unreachable = redis_cache("redis://127.0.0.1:1/0")  # nothing listens there
    monkeypatch.setattr(TenantRateThrottle, "cache", unreachable)
    monkeypatch.setattr(core.limits, "_last_warning", {})
    caplog.set_level("WARNING", logger="core.limits")

    codes = [api.get(VP + "roles").json()["code"] for _ in range(8)]

    assert codes == [0] * 8
    warnings = [r for r in caplog.records if "rate limit not enforced" in r.getMessage()]
    assert len(warnings) == 1  # not one per request
