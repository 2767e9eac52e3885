"""Writes: tenants and their tokens."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tenancy.models import ApiToken, Tenant, TokenScope
from tenancy.signals import tenant_created
from tenancy.tokens import IssuedToken, generate_token


@transaction.atomic
def tenant_create(*, name: str, token_label: str = "") -> tuple[Tenant, IssuedToken]:
    """A new tenant and its first token (plaintext returned once)."""
    tenant = Tenant.objects.create(name=name)
    return tenant, tenant_set_up(tenant, token_label=token_label)


@transaction.atomic
def tenant_set_up(tenant: Tenant, *, token_label: str = "") -> IssuedToken:
    """What a just-saved tenant starts with: whatever the apps add on `tenant_created`
    (roles: the default role), and a first token, returned once."""
    tenant_created.send(sender=Tenant, tenant=tenant)
    return token_issue(tenant, label=token_label)


class TokenScopeError(ValueError):
    """A scope and device that do not go together (a device token needs exactly one device)."""


def token_issue(
    tenant: Tenant, *, label: str = "", scope: str = TokenScope.ADMIN, device_id: str = ""
) -> IssuedToken:
    """A new token of `tenant`, returned once. A `device` token names one device of the
    tenant by its `device_id`; the caller has checked that the device exists (tenancy does
    not know devices: see credentials.services.token_create)."""
    if scope not in TokenScope.values:
        raise TokenScopeError(f"unknown scope {scope!r}; one of {', '.join(TokenScope.values)}")
    if (scope == TokenScope.DEVICE) != bool(device_id):
        raise TokenScopeError("a device token needs a device_id, and only a device token has one")
    issued = generate_token()
    # The prefix is how the console and the API name a token: keep it unique in its tenant.
    while ApiToken.objects.filter(tenant=tenant, prefix=issued.prefix).exists():
        issued = generate_token()
    ApiToken.objects.create(
        tenant=tenant,
        label=label,
        scope=scope,
        device_id=device_id,
        prefix=issued.prefix,
        digest=issued.digest,
    )
    return issued


def token_revoke(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def tokens_revoke_for_device(tenant: Tenant, *, device_id: str) -> int:
    """Revoke the active tokens bound to a device (it is being deleted: a device created
    later under the same id must not inherit them). Returns how many."""
    active = ApiToken.objects.filter(tenant=tenant, device_id=device_id, revoked_at__isnull=True)
    return active.update(revoked_at=timezone.now())


#: Recording every use would turn each read into a write; a minute's precision is plenty.
LAST_USED_PRECISION = timedelta(minutes=1)


def token_mark_used(token: ApiToken) -> None:
    """Note that `token` was used just now (to the minute)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
