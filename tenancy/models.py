"""Tenants, their API tokens, and the base every tenant-owned record derives from."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


def new_public_id() -> str:
    """An opaque, unguessable id for records the API exposes (voices, roles)."""
    return secrets.token_hex(12)


class Tenant(models.Model):
    name = models.CharField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    require_consent = models.BooleanField(
        default=False,
        help_text="Refuse an enrollment that carries no consent record (subject, text "
        "version, channel).",
    )
    anti_spoofing = models.BooleanField(
        default=False,
        help_text="Check identify and verify probes for recorded or synthetic speech unless "
        "the request or the device says otherwise.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TokenScope(models.TextChoices):
    """What a token may do (enforced by core.scopes on every API request)."""

    #: Everything of its tenant (every token made before scopes existed).
    ADMIN = "admin", "admin"
    #: One device of its tenant: identify on it, verify and enroll its voices, read it.
    DEVICE = "device", "device"
    #: GET requests only, over the whole tenant.
    READ = "read", "read"


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 digest is stored; `prefix` finds the row and is
    safe to show (it is a few random characters, not enough to guess the rest).

    A `device` token names its device by the client's `device_id` (unique in the tenant):
    tenancy sits below devices and does not reference their table; deleting the device
    revokes its tokens (devices.services.device_delete)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tokens")
    label = models.CharField(max_length=100, blank=True)
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.ADMIN)
    device_id = models.CharField(
        max_length=128, blank=True, help_text="the device of a device-scoped token"
    )
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.tenant})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class OperatorProfile(models.Model):
    """Limits a staff user of the admin console to one tenant: an operator sees and edits
    only that tenant's records. Superusers need no profile and see every tenant."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_profile"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="operators")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "operator profile"

    def __str__(self) -> str:
        return f"{self.user} ({self.tenant})"


class TenantOwned(models.Model):
    """Abstract base of every record that belongs to one tenant.

    Reads go through tenancy.scoping (`owned`, `get_owned`), so a record of another
    tenant is never found, exactly like one that does not exist.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True
