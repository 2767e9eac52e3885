"""Reads: devices, always scoped to one tenant."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from devices.models import Device
from tenancy.models import Tenant
from tenancy.scoping import get_owned, owned


def _with_voices(queryset: QuerySet[Device]) -> QuerySet[Device]:
    # The voices bound to a device, through the relation voiceprint declares on Device:
    # devices sits below voiceprint and does not import it.
    voices = Device._meta.get_field("voices").related_model._default_manager
    return queryset.annotate(voice_count=Count("voices", distinct=True)).prefetch_related(
        Prefetch("voices", queryset=voices.only("voice_id").order_by("created_at", "pk"))
    )


def device_list(tenant: Tenant) -> QuerySet[Device]:
    """The tenant's devices, each with its bound voices and their count."""
    return _with_voices(owned(Device, tenant))


def device_get(tenant: Tenant, *, device_id: str) -> Device:
    """The device alone, for writes."""
    return get_owned(Device, tenant, "device", device_id=device_id)


def device_get_with_voices(tenant: Tenant, *, device_id: str) -> Device:
    """The device with its bound voices and their count, for the device object."""
    return get_owned(_with_voices(owned(Device, tenant)), tenant, "device", device_id=device_id)
