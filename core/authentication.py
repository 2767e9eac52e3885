"""The API's auth scheme: a bearer token resolves every request to exactly one tenant
(the tokens themselves, and their lookup, are tenancy's)."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions, permissions

from audit.context import set_actor, token_actor
from core.auth_guard import (
    address_failure_record,
    address_lockout_check,
    auth_failure_record,
    auth_lockout_check,
)
from core.exceptions import ApiError, ErrorCode
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
        return token_principal(token), token

    def _find_token(self, header: str) -> ApiToken:
        plaintext = bearer_plaintext(header)
        if plaintext is None:
            raise exceptions.AuthenticationFailed(BEARER_FORMAT)
        token = token_find_active(plaintext=plaintext)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid or revoked token")
        return token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


#: What a malformed Authorization header is told.
BEARER_FORMAT = "Authorization must be 'Bearer <token>'"


def bearer_plaintext(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when it holds none."""
    scheme, _, plaintext = header.partition(" ")
    plaintext = plaintext.strip()
    return plaintext if scheme.lower() == "bearer" and plaintext else None


def token_principal(token: ApiToken) -> TenantPrincipal:
    """The principal of a token just found active: noted as used, and the audit's actor."""
    token_mark_used(token)
    set_actor(token_actor(token.prefix))
    return TenantPrincipal(
        tenant=token.tenant, token_id=token.pk, scope=token.scope, device_id=token.device_id
    )


def authenticate_plaintext(plaintext: str, *, address: str) -> TenantPrincipal:
    """A bearer token presented outside DRF (the WebSocket stream), with the same lockout
    and failure counting per client address: ApiError 40100 for a token that is unknown
    or revoked, Throttled (42900) for a locked-out address."""
    address_lockout_check(address)
    token = token_find_active(plaintext=plaintext.strip()) if plaintext.strip() else None
    if token is None:
        address_failure_record(address)
        raise ApiError(ErrorCode.UNAUTHORIZED, "invalid or revoked token")
    return token_principal(token)


class IsTenant(permissions.BasePermission):
    """Allows requests authenticated by a tenant token."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, TenantPrincipal)
