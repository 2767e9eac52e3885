"""Writes: roles."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from core.exceptions import conflict
from roles.models import DEFAULT_ROLE_NAME, Role
from tenancy.models import Tenant


def create_default_role(tenant: Tenant) -> Role:
    return Role.objects.create(tenant=tenant, name=DEFAULT_ROLE_NAME, is_default=True)


def create_role(tenant: Tenant, name: str) -> Role:
    try:
        with transaction.atomic():
            return Role.objects.create(tenant=tenant, name=name)
    except IntegrityError:
        raise conflict(f"role_name: a role named {name!r} already exists") from None


def delete_role(role: Role) -> None:
    """Delete a role; its voices stay (their role_bind becomes {}), its interrupt settings go."""
    if role.is_default:
        raise conflict("the default role cannot be deleted")
    role.delete()
