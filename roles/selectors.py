"""Reads: roles, always scoped to one tenant."""

from __future__ import annotations

from django.db.models import QuerySet

from roles.models import Role
from tenancy.models import Tenant
from tenancy.scoping import get_owned, owned


def role_list(tenant: Tenant) -> QuerySet[Role]:
    return owned(Role, tenant)


def role_get(tenant: Tenant, *, role_id: str) -> Role:
    return get_owned(Role, tenant, "role", role_id=role_id)


def role_get_default(tenant: Tenant) -> Role:
    return owned(Role, tenant).get(is_default=True)
