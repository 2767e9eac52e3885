"""Reads of the audit log: a tenant's events, filtered, and their export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet

from audit.models import AuditEvent
from tenancy.models import Tenant

EXPORT_FIELDS = (
    "at", "tenant_id", "actor", "action", "object_type", "object_id", "outcome",
    "request_id", "details",
)  # fmt: skip


def audit_event_list(
    tenant: Tenant | None,
    *,
    action: str | None = None,
    object_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The events of `tenant` (every tenant's for None: the platform's staff), newest first."""
    events = (
        AuditEvent.objects.all() if tenant is None else AuditEvent.objects.filter(tenant=tenant)
    )
    if action:
        events = events.filter(action=action)
    if object_id:
        events = events.filter(object_id=object_id)
    if since:
        events = events.filter(at__gte=since)
    if until:
        events = events.filter(at__lt=until)
    return events


def audit_event_data(event: AuditEvent) -> dict:
    """An event as exports write it."""
    return {
        "at": event.at.isoformat().replace("+00:00", "Z"),
        "tenant_id": event.tenant_id,
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "outcome": event.outcome,
        "request_id": event.request_id,
        "details": event.details,
    }


def audit_export_jsonl(events: Iterable[AuditEvent]) -> Iterator[str]:
    """One JSON object per event and line."""
    for event in events:
        yield json.dumps(audit_event_data(event), ensure_ascii=False) + "\n"


def audit_export_csv(events: Iterable[AuditEvent]) -> Iterator[str]:
    """A header line, then one line per event (details as JSON)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for event in events:
        row = audit_event_data(event)
        row["details"] = json.dumps(row["details"], ensure_ascii=False)
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
