"""Bearer-token authentication: every API request resolves to exactly one tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from tenancy.models import ApiToken, Tenant
from tenancy.tokens import digests_match, parse_prefix

# Recording every use would turn each read into a write; a minute's precision is plenty.
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class TenantPrincipal:
    """`request.user` of an API request: the tenant the token belongs to."""

    tenant: Tenant
    token_id: int

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> str:
        return f"tenant:{self.tenant.pk}"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request) -> tuple[TenantPrincipal, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, plaintext = header.partition(" ")
        plaintext = plaintext.strip()
        if scheme.lower() != self.keyword.lower() or not plaintext:
            raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <token>'")
        token = find_active_token(plaintext)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid or revoked token")
        _touch(token)
        return TenantPrincipal(tenant=token.tenant, token_id=token.pk), token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


def find_active_token(plaintext: str) -> ApiToken | None:
    """The active token with this plaintext, compared in constant time, else None."""
    prefix = parse_prefix(plaintext)
    if prefix is None:
        return None
    candidates = ApiToken.objects.select_related("tenant").filter(
        prefix=prefix, revoked_at__isnull=True, tenant__is_active=True
    )
    for token in candidates:
        if digests_match(plaintext, token.digest):
            return token
    return None


def _touch(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


class IsTenant(permissions.BasePermission):
    """Allows requests authenticated by a tenant token."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, TenantPrincipal)
