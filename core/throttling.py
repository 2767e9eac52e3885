"""The request rates: per tenant (VOICEPRINT_RATE_LIMIT, default 3000/min) and per token
(VOICEPRINT_TOKEN_RATE_LIMIT, default 1200/min), each "off" for unlimited. Beyond either the
API answers 42900 with `Retry-After`.

Requests are counted in Django's default cache (core.limits): Redis when a broker URL is
set, so every web process counts against one limit per tenant and per token
(config/settings.py CACHES); local memory otherwise (one count per process). When the cache
cannot be reached the limits are not enforced: no limit rather than no API.

DRF's SimpleRateThrottle reads a list of timestamps and writes it back, so two processes
answering the same tenant at once lose each other's request; here every request is counted
atomically (core.limits.window_take), and exactly the rate is let through.
"""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from core.authentication import TenantPrincipal
from core.limits import failing_open, window_release, window_take

#: Where a request keeps the places its throttles took, to give them back when a later
#: throttle refuses it, and REFUSED once one has: a refused request counts against no limit.
PLACES_ATTRIBUTE = "_throttle_places"
REFUSED = "refused"


class TenantRateThrottle(SimpleRateThrottle):
    scope = "tenant"

    def get_ident_of(self, principal: TenantPrincipal) -> object:
        return principal.tenant.pk

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.user, TenantPrincipal):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident_of(request.user)}

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None or getattr(request, PLACES_ATTRIBUTE, None) == REFUSED:
            return True  # DRF asks every throttle; one refusal is enough
        with failing_open("rate limit"):
            return self._take(request, key)
        return True

    def wait(self) -> float | None:
        """Seconds until the oldest request counted leaves the window (DRF's Retry-After)."""
        return getattr(self, "_retry_after", None)

    def _take(self, request, key: str) -> bool:
        place = window_take(
            self.cache, key, limit=self.num_requests, duration=self.duration, now=self.timer()
        )
        places = getattr(request, PLACES_ATTRIBUTE, [])
        if place.taken:
            setattr(request, PLACES_ATTRIBUTE, [*places, (self.cache, place.slot)])
            return True
        self._retry_after = place.retry_after
        for cache, slot in places:  # the limits that let it through do not count it either
            window_release(cache, slot)
        setattr(request, PLACES_ATTRIBUTE, REFUSED)
        return False


class TokenRateThrottle(TenantRateThrottle):
    """One token's requests, whatever the tenant's other tokens do: a token read out of one
    device cannot spend its whole tenant's rate."""

    scope = "token"

    def get_ident_of(self, principal: TenantPrincipal) -> object:
        return principal.token_id
