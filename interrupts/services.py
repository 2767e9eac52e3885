"""Writes: an agent's interrupt settings (per role, and for uncertain speakers)."""

from __future__ import annotations

from django.db import transaction

from audit.services import audit_record
from core.exceptions import not_found
from interrupts.models import AgentPolicy, RoleInterrupt
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


def agent_uncertain_interrupt_update(
    tenant: Tenant, *, agent_id: str, uncertain_interrupt: bool
) -> AgentPolicy:
    """Store whether a speaker identify is uncertain about may interrupt the agent."""
    policy, _ = AgentPolicy.objects.update_or_create(
        tenant=tenant, agent_id=agent_id, defaults={"uncertain_interrupt": uncertain_interrupt}
    )
    return policy


@transaction.atomic
def agent_interrupts_update(
    tenant: Tenant,
    *,
    agent_id: str,
    role_settings: dict[str, bool] | None = None,
    uncertain_interrupt: bool | None = None,
) -> None:
    """An agent's settings in one write (one API PUT, one console form): the roles'
    `{role_id: interrupt}` and the uncertain speaker's. None leaves that part as it is;
    an unknown role refuses both parts."""
    if role_settings is not None:
        role_interrupt_update(tenant, agent_id=agent_id, settings=role_settings)
    if uncertain_interrupt is not None:
        agent_uncertain_interrupt_update(
            tenant, agent_id=agent_id, uncertain_interrupt=uncertain_interrupt
        )
    audit_record(
        tenant, action="interrupt.update", object_type="agent", object_id=agent_id,
        details={"roles": role_settings, "uncertain_interrupt": uncertain_interrupt},
    )  # fmt: skip
