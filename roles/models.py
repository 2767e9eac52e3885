"""A role of a tenant; voices carry one, and role-interrupt settings refer to them."""

from django.db import models
from django.db.models import Q

from tenancy.models import TenantOwned, new_public_id

DEFAULT_ROLE_NAME = "default"


class Role(TenantOwned):
    """Who a voice is in the household ("mom", "dad"). Every tenant has one default role,
    which voices enrolled without a role get and which cannot be deleted."""

    role_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    name = models.CharField(max_length=64)
    is_default = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="role_name_unique_in_tenant"),
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(is_default=True), name="one_default_role_per_tenant"
            ),
        ]

    def __str__(self) -> str:
        return self.name
