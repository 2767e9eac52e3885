"""Per agent: whether each role may interrupt it, and whether an uncertain speaker may."""

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


class AgentPolicy(TenantOwned):
    """An AI agent's own interrupt settings, beside the per-role ones.

    `uncertain_interrupt`: whether a speaker identify could not tell apart with confidence
    (decision "uncertain") may interrupt the agent. An agent without a row uses the
    defaults, so agents still need no creation.
    """

    agent_id = models.CharField(max_length=128)
    uncertain_interrupt = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent_id"]
        verbose_name_plural = "agent policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "agent_id"], name="one_policy_per_agent")
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}: uncertain_interrupt={self.uncertain_interrupt}"
