"""Per-tenant rate limiting: on by default with a generous rate, per tenant, 42900 beyond it,
and off with VOICEPRINT_RATE_LIMIT=off."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from config.settings import DEFAULT_RATE_LIMIT, tenant_rate_limit
from tenancy.throttling import TenantRateThrottle
from tests.helpers import VP, envelope
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

    envelope(api.get(VP + "roles"), 42900)
    voice_error(api.post(V + "forget", {"id": "x"}, format="json"), 429, 42900)
    envelope(other_api.get(VP + "roles"))  # another tenant has its own count
