"""A device of a tenant (a client-chosen id such as a MAC address) and its usage counters."""

from django.core.validators import RegexValidator
from django.db import models

from tenancy.models import TenantOwned

device_id_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9:._\-]*$",
    "use letters, digits and : . _ - (for example a MAC address)",
)


class Device(TenantOwned):
    """A piece of firmware that sends audio. `device_id` is chosen by the client."""

    device_id = models.CharField(max_length=128, validators=[device_id_validator])
    device_name = models.CharField(max_length=128, blank=True)
    #: Check this device's probes for spoofing; None: as its tenant's default.
    anti_spoofing = models.BooleanField(
        null=True,
        blank=True,
        default=None,
        help_text="Check this device's probes for recorded or synthetic speech when a request "
        "does not say. Unknown: as the tenant's default.",
    )
    identify_count = models.PositiveBigIntegerField(default=0, editable=False)
    matched_count = models.PositiveBigIntegerField(default=0, editable=False)
    last_identify_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "device_id"], name="device_id_unique_in_tenant"
            )
        ]

    def __str__(self) -> str:
        return self.device_name or self.device_id
