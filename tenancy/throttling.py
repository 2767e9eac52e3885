"""The per-tenant request rate limit (DRF throttle; beyond it the API answers 42900)."""

from rest_framework.throttling import SimpleRateThrottle

from tenancy.authentication import TenantPrincipal


class TenantRateThrottle(SimpleRateThrottle):
    """Per-tenant request rate (VOICEPRINT_RATE_LIMIT, e.g. "600/min"; default 3000/min;
    "off": unlimited). Beyond it the API answers 42900. Requests are counted in Django's
    default cache, i.e. per server process."""

    scope = "tenant"

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.user, TenantPrincipal):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.tenant.pk}
