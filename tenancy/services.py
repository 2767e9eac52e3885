"""Writes: tenants and their tokens."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from roles.services import create_default_role
from tenancy.models import ApiToken, Tenant
from tenancy.tokens import IssuedToken, generate_token


@transaction.atomic
def create_tenant(name: str) -> tuple[Tenant, IssuedToken]:
    """A new tenant with its default role and a first token (plaintext returned once)."""
    tenant = Tenant.objects.create(name=name)
    create_default_role(tenant)
    return tenant, issue_token(tenant)


def issue_token(tenant: Tenant, label: str = "") -> IssuedToken:
    issued = generate_token()
    ApiToken.objects.create(tenant=tenant, label=label, prefix=issued.prefix, digest=issued.digest)
    return issued


def revoke_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
