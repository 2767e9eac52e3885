"""Writes of the audit log: one event, and the purge of those past the retention period."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone

from audit.context import current_actor
from audit.models import AuditEvent
from tenancy.models import Tenant


def audit_record(
    tenant: Tenant | None,
    *,
    action: str,
    object_type: str = "",
    object_id: str = "",
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
    actor: str | None = None,
) -> AuditEvent:
    """Record that `actor` (the current one when None) did `action` to an object of
    `tenant`. `details` must hold only ids, names and numbers: never audio, embeddings or
    tokens."""
    return AuditEvent.objects.create(
        tenant=tenant,
        actor=actor or current_actor(),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        outcome=outcome,
        request_id=_request_id(),
        details=details or {},
    )


def audit_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the events older than VOICEPRINT_AUDIT_RETENTION_DAYS; how many went."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.VOICEPRINT_AUDIT_RETENTION_DAYS)
    deleted, _ = AuditEvent.objects.filter(at__lt=cutoff).delete()
    return deleted


def _request_id() -> str:
    from config.logs import NO_REQUEST_ID, current_request_id  # the request's, set by config

    request_id = current_request_id()
    return "" if request_id == NO_REQUEST_ID else request_id
