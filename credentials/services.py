"""Writes: issuing and revoking tokens by scope."""

from __future__ import annotations

from core.exceptions import invalid
from credentials.selectors import token_get
from devices.selectors import device_get
from tenancy.models import ApiToken, Tenant, TokenScope
from tenancy.services import TokenScopeError, token_issue, token_revoke
from tenancy.tokens import IssuedToken


def token_create(
    tenant: Tenant, *, scope: str = TokenScope.ADMIN, device_id: str = "", label: str = ""
) -> tuple[ApiToken, IssuedToken]:
    """A new token of `tenant` with `scope` (a `device` token: bound to the tenant's device
    `device_id`, which must exist: 40400 otherwise). The plaintext is returned once."""
    if scope == TokenScope.DEVICE and device_id:
        device_id = device_get(tenant, device_id=device_id).device_id
    try:
        issued = token_issue(tenant, label=label, scope=scope, device_id=device_id)
    except TokenScopeError as error:
        raise invalid("scope", str(error)) from None
    return ApiToken.objects.get(tenant=tenant, prefix=issued.prefix), issued


def token_revoke_by_prefix(tenant: Tenant, *, prefix: str) -> None:
    """Revoke the tenant's token with this prefix (40400 if it has none)."""
    token_revoke(token_get(tenant, prefix=prefix))
