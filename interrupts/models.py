"""Per agent and role, whether that role may interrupt the agent."""

from django.db import models

from roles.models import Role
from tenancy.models import TenantOwned


class RoleInterrupt(TenantOwned):
    """Whether a role's voice may interrupt an AI agent while it speaks.

    Agents need no record of their own: `agent_id` is the client's string. A role
    without a row for an agent may interrupt it (the default is "true").
    """

    agent_id = models.CharField(max_length=128, db_index=True)
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="interrupts")
    interrupt = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent_id", "role_id"]
        constraints = [
            models.UniqueConstraint(fields=["role", "agent_id"], name="one_setting_per_role_agent")
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.role}: {self.interrupt}"
