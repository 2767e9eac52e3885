"""Writes: role-interrupt settings."""

from __future__ import annotations

from django.db import transaction

from core.exceptions import not_found
from interrupts.models import RoleInterrupt
from roles.models import Role
from tenancy.models import Tenant
from tenancy.scoping import owned


@transaction.atomic
def role_interrupt_update(tenant: Tenant, *, agent_id: str, settings: dict[str, bool]) -> None:
    """Store `{role_id: interrupt}` for an agent. Every role must be the tenant's;
    one unknown role refuses the whole update, so nothing is half-applied."""
    roles = {role.role_id: role for role in owned(Role, tenant).filter(role_id__in=settings)}
    unknown = [role_id for role_id in settings if role_id not in roles]
    if unknown:
        raise not_found(f"role {unknown[0]!r}")
    for role_id, interrupt in settings.items():
        RoleInterrupt.objects.update_or_create(
            tenant=tenant, agent_id=agent_id, role=roles[role_id], defaults={"interrupt": interrupt}
        )
