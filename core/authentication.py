"""The API's auth scheme: a bearer token resolves every request to exactly one tenant
(the tokens themselves, and their lookup, are tenancy's)."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions, permissions

from audit.context import set_actor, token_actor
from core.auth_guard import address_failure_record, address_lockout_check, client_address
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
        token = presented_token_find(bearer_plaintext(header), address=client_address(request))
        return token_principal(token), token

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


def presented_token_find(
    plaintext: str | None, *, address: str, malformed: str = BEARER_FORMAT
) -> ApiToken:
    """The active token a client address presented; `plaintext` None when what it sent was
    no token at all (an Authorization header of another scheme, a start message's "token"
    that is no string), which fails with `malformed`.

    Both surfaces authenticate here, so that they count alike: a locked-out address is
    refused (Throttled, 42900) before its token is even looked up, and every failure
    (AuthenticationFailed, 40100), malformed or unknown, counts towards its lockout."""
    address_lockout_check(address)
    plaintext = plaintext.strip() if plaintext is not None else None
    token = token_find_active(plaintext=plaintext) if plaintext else None
    if token is None:
        address_failure_record(address)
        reason = "invalid or revoked token" if plaintext else malformed
        raise exceptions.AuthenticationFailed(reason)
    return token


def authenticate_plaintext(
    plaintext: str | None, *, address: str, malformed: str = BEARER_FORMAT
) -> TenantPrincipal:
    """A token presented outside DRF (the WebSocket stream), counted as the API's are
    (presented_token_find)."""
    return token_principal(presented_token_find(plaintext, address=address, malformed=malformed))


class IsTenant(permissions.BasePermission):
    """Allows requests authenticated by a tenant token."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, TenantPrincipal)
