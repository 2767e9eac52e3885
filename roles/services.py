"""Writes: roles."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from audit.services import audit_record
from core.exceptions import conflict
from roles.models import DEFAULT_ROLE_NAME, Role
from tenancy.models import Tenant


def role_create_default(tenant: Tenant) -> Role:
    return Role.objects.create(tenant=tenant, name=DEFAULT_ROLE_NAME, is_default=True)


def role_create(tenant: Tenant, *, name: str) -> Role:
    try:
        with transaction.atomic():
            role = Role.objects.create(tenant=tenant, name=name)
    except IntegrityError:
        raise conflict(f"role_name: a role named {name!r} already exists") from None
    audit_record(tenant, action="role.create", object_type="role", object_id=role.role_id)
    return role


def role_delete(role: Role) -> None:
    """Delete a role; its voices stay (their role_bind becomes {}), its interrupt settings go."""
    if role.is_default:
        raise conflict("the default role cannot be deleted")
    role.delete()
    audit_record(role.tenant, action="role.delete", object_type="role", object_id=role.role_id)
