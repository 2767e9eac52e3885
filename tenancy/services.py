"""Writes: tenants and their tokens."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tenancy.models import ApiToken, Tenant
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


def token_issue(tenant: Tenant, *, label: str = "") -> IssuedToken:
    issued = generate_token()
    ApiToken.objects.create(tenant=tenant, label=label, prefix=issued.prefix, digest=issued.digest)
    return issued


def token_revoke(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


#: Recording every use would turn each read into a write; a minute's precision is plenty.
LAST_USED_PRECISION = timedelta(minutes=1)


def token_mark_used(token: ApiToken) -> None:
    """Note that `token` was used just now (to the minute)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
