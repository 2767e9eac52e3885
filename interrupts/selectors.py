"""Reads: an agent's interrupt settings (per role, and for uncertain speakers)."""

from __future__ import annotations

from dataclasses import dataclass

from interrupts.models import AgentPolicy, RoleInterrupt
from roles.models import Role
from roles.selectors import role_list
from tenancy.models import Tenant
from tenancy.scoping import owned

DEFAULT_INTERRUPT = True
#: A speaker identify cannot tell apart with confidence does not interrupt unless allowed.
DEFAULT_UNCERTAIN_INTERRUPT = False


@dataclass(frozen=True)
class RoleInterruptSetting:
    role_id: str
    role_name: str
    interrupt: bool


def role_interrupt_list(tenant: Tenant, *, agent_id: str) -> list[RoleInterruptSetting]:
    """One entry per role of the tenant; roles without a setting may interrupt."""
    stored = dict(
        owned(RoleInterrupt, tenant).filter(agent_id=agent_id).values_list("role_id", "interrupt")
    )
    return [
        RoleInterruptSetting(role.role_id, role.name, stored.get(role.pk, DEFAULT_INTERRUPT))
        for role in role_list(tenant)
    ]


def role_interrupt_get(tenant: Tenant, *, agent_id: str, role: Role | None) -> bool:
    """Whether `role` may interrupt the agent: the decision identify returns. An unknown
    speaker (no role) never interrupts."""
    if role is None:
        return False
    setting = (
        owned(RoleInterrupt, tenant)
        .filter(agent_id=agent_id, role=role)
        .values_list("interrupt", flat=True)
        .first()
    )
    return DEFAULT_INTERRUPT if setting is None else setting


def agent_uncertain_interrupt_get(tenant: Tenant, *, agent_id: str) -> bool:
    """Whether a speaker identify is uncertain about (decision "uncertain") may interrupt
    the agent: its policy's setting, False for an agent without one."""
    setting = (
        owned(AgentPolicy, tenant)
        .filter(agent_id=agent_id)
        .values_list("uncertain_interrupt", flat=True)
        .first()
    )
    return DEFAULT_UNCERTAIN_INTERRUPT if setting is None else setting
