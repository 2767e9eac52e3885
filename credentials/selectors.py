"""Reads: a tenant's tokens (never their digests)."""

from __future__ import annotations

from django.db.models import QuerySet

from tenancy.models import ApiToken, Tenant
from tenancy.scoping import get_owned


def token_list(tenant: Tenant) -> QuerySet[ApiToken]:
    """The tenant's tokens, revoked ones included, newest first."""
    return ApiToken.objects.filter(tenant=tenant).order_by("-created_at", "-pk")


def token_get(tenant: Tenant, *, prefix: str) -> ApiToken:
    """The tenant's token with this prefix; 40400 when it has none (or another tenant has)."""
    return get_owned(token_list(tenant), tenant, "token", prefix=prefix)
