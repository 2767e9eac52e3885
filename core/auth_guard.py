"""Failed-authentication throttling per client address.

After VOICEPRINT_AUTH_FAILURE_LIMIT failed bearer-token attempts (a token unknown or
revoked, or an Authorization header that is no bearer token) from one address within
VOICEPRINT_AUTH_FAILURE_WINDOW seconds, that address is locked out for as long again: its
requests that present a token answer 42900, without the token being looked up. Other
addresses are not affected, and a request without an Authorization header is never
counted (it answers 40100 as before). The WebSocket stream counts and refuses alike, on
the same counts (its handshake's Authorization header, or its start message's "token").

The client address is REMOTE_ADDR, or with VOICEPRINT_TRUSTED_PROXIES = n the n-th address
from the right of X-Forwarded-For: the one the outermost trusted proxy saw. Addresses
further left are written by the client and never believed.

Counted in the shared cache (core.limits); unreachable, nobody is locked out.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.exceptions import Throttled

from core.limits import failing_open, window_take

LIMIT_NAME = "failed-authentication limit"


def client_address(request: HttpRequest) -> str:
    """The client's address, as far as trusted proxies vouch for it."""
    return forwarded_client_address(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""),
    )


def forwarded_client_address(*, remote_addr: str, forwarded_for: str) -> str:
    """The client's address from the peer's and the X-Forwarded-For header (see above)."""
    proxies = settings.VOICEPRINT_TRUSTED_PROXIES
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if proxies <= 0 or not hops:
        return remote_addr
    return hops[-min(proxies, len(hops))]


def address_lockout_check(address: str) -> None:
    """Refuse (42900) a locked-out client address (a request's, or a WebSocket's): checked
    before its token is even looked up (core.authentication.presented_token_find)."""
    if settings.VOICEPRINT_AUTH_FAILURE_LIMIT is None:
        return
    with failing_open(LIMIT_NAME):
        until = cache.get(_lock_key(address))
        if until is not None:
            raise _locked_out(until - time.time())


def address_failure_record(address: str) -> None:
    """Count one failed attempt of a client address; the one that reaches the limit locks
    the address out for the window."""
    limit = settings.VOICEPRINT_AUTH_FAILURE_LIMIT
    if limit is None:
        return
    window = settings.VOICEPRINT_AUTH_FAILURE_WINDOW
    with failing_open(LIMIT_NAME):
        # Counted with room for limit - 1: the limit-th failure is the one refused a place.
        place = window_take(cache, f"authfail:{address}", limit=limit - 1, duration=window)
        if not place.taken:
            cache.set(_lock_key(address), time.time() + window, timeout=window)


def _lock_key(address: str) -> str:
    return f"authfail:locked:{address}"


def _locked_out(wait: float) -> Throttled:
    # DRF's own exception: raised while authenticating, it leaves the request anonymous, and
    # both surfaces answer it 42900 with Retry-After like the rate limits.
    detail = "too many failed authentication attempts from this address."
    return Throttled(wait=max(wait, 1.0), detail=detail)
