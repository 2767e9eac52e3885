"""Abuse limits counted in the shared cache (real Redis here): a rate per token beside the
tenant's, failed bearer-token attempts per client address, and what happens when Redis is
down (no limit rather than no API)."""

from __future__ import annotations

import time

import pytest
from django.test import RequestFactory

import core.limits
from config.settings import DEFAULT_TOKEN_RATE_LIMIT, token_rate_limit
from core.auth_guard import client_address
from core.throttling import TenantRateThrottle, TokenRateThrottle
from tenancy.models import ApiToken
from tenancy.services import token_issue
from tests.conftest import make_client, redis_caches
from tests.core.test_throttling import per_minute
from tests.helpers import VP, envelope
from tests.voice_api.conftest import error as voice_error

V = "/v1/voice/"


def rates(monkeypatch, *, token: str | None, tenant: str | None) -> None:
    monkeypatch.setattr(TokenRateThrottle, "rate", token, raising=False)
    monkeypatch.setattr(TenantRateThrottle, "rate", tenant, raising=False)


# --- per token -----------------------------------------------------------------------------------


def test_the_token_limit_is_on_by_default_generous_and_can_be_turned_off(monkeypatch):
    monkeypatch.delenv("VOICEPRINT_TOKEN_RATE_LIMIT", raising=False)
    assert token_rate_limit() == DEFAULT_TOKEN_RATE_LIMIT
    assert per_minute(token_rate_limit()) >= 1000

    monkeypatch.setenv("VOICEPRINT_TOKEN_RATE_LIMIT", "off")
    assert token_rate_limit() is None


@pytest.mark.django_db
def test_each_token_has_its_own_limit_within_its_tenant(
    api, tenant, other_api, counts_in_redis, monkeypatch
):
    rates(monkeypatch, token="5/min", tenant="8/min")
    second = make_client(token_issue(tenant).plaintext)

    codes = [api.get(VP + "roles").json()["code"] for _ in range(10)]

    assert codes == [0] * 5 + [42900] * 5
    refused = api.get(VP + "roles")
    assert 1 <= int(refused["Retry-After"]) <= 60, refused.headers
    voice_error(api.post(V + "forget", {"id": "x"}, format="json"), 429, 42900)
    # The second token of the tenant has its own count; the first one's refused requests
    # did not count against the tenant: 8 - 5 = 3 places are left for it.
    assert [second.get(VP + "roles").json()["code"] for _ in range(4)] == [0, 0, 0, 42900]
    envelope(other_api.get(VP + "roles"))


@pytest.mark.django_db
def test_the_token_limit_off_leaves_the_tenant_limit(api, counts_in_redis, monkeypatch):
    rates(monkeypatch, token=None, tenant="3/min")

    codes = [api.get(VP + "roles").json()["code"] for _ in range(4)]

    assert codes == [0, 0, 0, 42900]


# --- failed authentication per client address ------------------------------------------------


@pytest.fixture
def three_failures(settings):
    """Locked out after 3 failures within 2 s, for 2 s."""
    settings.VOICEPRINT_AUTH_FAILURE_LIMIT = 3
    settings.VOICEPRINT_AUTH_FAILURE_WINDOW = 2


def from_address(token: str | None, address: str, **headers: str):
    client = make_client(token)
    client.defaults.update(REMOTE_ADDR=address, **headers)
    return client


def bad_attempts(address: str, **headers: str) -> list[int]:
    """Three failed attempts of three kinds: an unknown token, another scheme, no token."""
    attempts = [("vp_00000000_" + "x" * 43, {}), (None, {"HTTP_AUTHORIZATION": "Basic Zm9v"}),
                (None, {"HTTP_AUTHORIZATION": "Bearer "})]  # fmt: skip
    return [
        from_address(token, address, **headers, **extra).get(VP + "roles").json()["code"]
        for token, extra in attempts
    ]


@pytest.mark.django_db
def test_an_address_that_failed_too_often_is_locked_out_and_no_other(
    tenant_and_token, counts_in_redis, three_failures
):
    tenant, token = tenant_and_token
    used_before = ApiToken.objects.get(tenant=tenant).last_used_at

    assert bad_attempts("203.0.113.7") == [40100] * 3
    # Even the good token is refused from there now, unchecked (it is not marked used).
    locked = from_address(token, "203.0.113.7").get(VP + "roles")
    envelope(locked, 42900)
    assert "failed authentication" in locked.json()["msg"]
    assert 1 <= int(locked["Retry-After"]) <= 2
    voice_error(from_address(token, "203.0.113.7").post(V + "forget", {"id": "x"}), 429, 42900)
    assert ApiToken.objects.get(tenant=tenant).last_used_at == used_before
    # A good client of another address is not affected; neither are its own failures.
    envelope(from_address(token, "198.51.100.2").get(VP + "roles"))
    assert bad_attempts("198.51.100.2")[:1] == [40100]


@pytest.mark.django_db
def test_the_lockout_ends_after_the_window(tenant_and_token, counts_in_redis, three_failures):
    _, token = tenant_and_token
    bad_attempts("203.0.113.7")
    envelope(from_address(token, "203.0.113.7").get(VP + "roles"), 42900)

    time.sleep(2.5)  # the window (2 s), and the failures counted in it, are over

    envelope(from_address(token, "203.0.113.7").get(VP + "roles"))
    assert bad_attempts("203.0.113.7") == [40100] * 3  # a fresh count
    envelope(from_address(token, "203.0.113.7").get(VP + "roles"), 42900)


@pytest.mark.django_db
def test_requests_without_a_token_are_not_counted(api, counts_in_redis, three_failures):
    anonymous = from_address(None, "203.0.113.7")
    assert [anonymous.get(VP + "roles").json()["code"] for _ in range(5)] == [40100] * 5
    api.defaults.update(REMOTE_ADDR="203.0.113.7")
    envelope(api.get(VP + "roles"))


@pytest.mark.django_db
def test_a_forwarded_for_header_is_not_believed_without_trusted_proxies(
    tenant_and_token, counts_in_redis, three_failures
):
    _, token = tenant_and_token
    for n in range(3):  # an attacker writing a new address in each request
        bad_attempts("203.0.113.7", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")

    envelope(from_address(token, "203.0.113.7", HTTP_X_FORWARDED_FOR="10.9.9.9").get(VP + "roles"),
             42900)  # fmt: skip


@pytest.mark.django_db
def test_behind_a_trusted_proxy_each_client_counts_alone(
    tenant_and_token, counts_in_redis, three_failures, settings
):
    settings.VOICEPRINT_TRUSTED_PROXIES = 1
    _, token = tenant_and_token
    proxy = "10.0.0.1"
    bad_attempts(proxy, HTTP_X_FORWARDED_FOR="203.0.113.7")

    envelope(
        from_address(token, proxy, HTTP_X_FORWARDED_FOR="203.0.113.7").get(VP + "roles"), 42900
    )
    # Another client behind the same proxy, even one that writes the locked address first.
    other = from_address(token, proxy, HTTP_X_FORWARDED_FOR="203.0.113.7, 198.51.100.2")
    envelope(other.get(VP + "roles"))


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "", "192.0.2.1"),
        (0, "203.0.113.7", "192.0.2.1"),
        (1, "", "192.0.2.1"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (3, "203.0.113.7, 10.0.0.2", "203.0.113.7"),  # fewer hops than proxies: the furthest
    ],
)
def test_the_client_address(settings, proxies, forwarded, expected):
    settings.VOICEPRINT_TRUSTED_PROXIES = proxies
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", **headers)

    assert client_address(request) == expected


@pytest.mark.django_db
def test_the_failure_limit_off_locks_nobody_out(tenant_and_token, counts_in_redis, settings):
    settings.VOICEPRINT_AUTH_FAILURE_LIMIT = None
    _, token = tenant_and_token
    for _ in range(3):
        bad_attempts("203.0.113.7")

    envelope(from_address(token, "203.0.113.7").get(VP + "roles"))


# --- Redis down ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_with_redis_down_every_limit_lets_requests_through(
    tenant_and_token, settings, monkeypatch, caplog
):
    settings.CACHES = redis_caches("redis://127.0.0.1:1/0", "down")  # nothing listens there
    monkeypatch.setattr(core.limits, "_last_warning", {})
    caplog.set_level("WARNING", logger="core.limits")
    rates(monkeypatch, token="2/min", tenant="2/min")
    settings.VOICEPRINT_AUTH_FAILURE_LIMIT = 1
    _, token = tenant_and_token

    assert bad_attempts("203.0.113.7") == [40100] * 3  # never 42900
    good = from_address(token, "203.0.113.7")
    assert [good.get(VP + "roles").json()["code"] for _ in range(4)] == [0] * 4

    warnings = [r.getMessage() for r in caplog.records if "not enforced" in r.getMessage()]
    assert sorted(message.split(" not ")[0] for message in warnings) == [
        "failed-authentication limit",
        "rate limit",
    ]  # one each, not one per request
