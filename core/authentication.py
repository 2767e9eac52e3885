"""The API's auth scheme: a bearer token resolves every request to exactly one tenant
(the tokens themselves, and their lookup, are tenancy's)."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions, permissions

from audit.context import set_actor, token_actor
from core.auth_guard import auth_failure_record, auth_lockout_check
from tenancy.models import ApiToken, Tenant, TokenScope
from tenancy.selectors import token_find_active
from tenancy.services import token_mark_used


@dataclass(frozen=True)
class TenantPrincipal:
    """`request.user` of an API request: the tenant the token belongs to, and what the
    token may do there (core.scopes)."""

    tenant: Tenant
    token_id: int
    scope: str = TokenScope.ADMIN
    #: The device of a `device` token, else "".
    device_id: str = ""

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
        # An address that failed too often is refused before its token is even looked up.
        auth_lockout_check(request)
        try:
            token = self._find_token(header)
        except exceptions.AuthenticationFailed:
            auth_failure_record(request)
            raise
        token_mark_used(token)
        set_actor(token_actor(token.prefix))
        principal = TenantPrincipal(
            tenant=token.tenant, token_id=token.pk, scope=token.scope, device_id=token.device_id
        )
        return principal, token

    def _find_token(self, header: str) -> ApiToken:
        scheme, _, plaintext = header.partition(" ")
        plaintext = plaintext.strip()
        if scheme.lower() != self.keyword.lower() or not plaintext:
            raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <token>'")
        token = token_find_active(plaintext=plaintext)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid or revoked token")
        return token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class IsTenant(permissions.BasePermission):
    """Allows requests authenticated by a tenant token."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, TenantPrincipal)
