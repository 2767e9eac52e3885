"""The audit log: an append-only record, per tenant, of what was done to its voices,
devices, tokens and settings, and of every identify and verify call.

Never audio, embeddings or tokens: an event names its objects by their public ids and
its actor by a token's public prefix or a console user's name.
"""

from __future__ import annotations

from django.db import models

from tenancy.models import Tenant


class AuditEvent(models.Model):
    #: None for events of no tenant (a console login of staff without one).
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    #: "token:<prefix>", "console:<username>", "command:<name>" or "system".
    actor = models.CharField(max_length=160)
    #: What was done, "<object>.<verb>": voice.create, voice.delete, identify, token.issue...
    action = models.CharField(max_length=48, db_index=True)
    object_type = models.CharField(max_length=32, blank=True)
    object_id = models.CharField(max_length=128, blank=True)
    #: "ok", a decision ("match", "no_match", "uncertain") or what refused it.
    outcome = models.CharField(max_length=64, default="ok")
    request_id = models.CharField(max_length=64, blank=True)
    #: A few words more (the device of an identify, the fields an update changed).
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["tenant", "at"], name="audit_tenant_time_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)
