"""Writes: devices."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from audit.services import audit_record
from core.exceptions import conflict
from devices.models import Device
from tenancy.models import Tenant
from tenancy.services import tokens_revoke_for_device


def device_create(
    tenant: Tenant, *, device_id: str, device_name: str = "", anti_spoofing: bool | None = None
) -> Device:
    """A new device of `tenant`; without a name it is named after its id."""
    try:
        with transaction.atomic():
            device = Device.objects.create(
                tenant=tenant,
                device_id=device_id,
                device_name=device_name or device_id,
                anti_spoofing=anti_spoofing,
            )
    except IntegrityError:
        raise conflict(f"device_id: device {device_id!r} already exists") from None
    audit_record(tenant, action="device.create", object_type="device", object_id=device_id)
    return device


#: device_update's "leave it as it is".
UNCHANGED = object()


def device_update(device: Device, *, device_name: str | object = UNCHANGED,
                  anti_spoofing: bool | object | None = UNCHANGED) -> Device:  # fmt: skip
    """Rename the device, or set its anti-spoofing default (None: the tenant's)."""
    changed = ["updated_at"]
    if device_name is not UNCHANGED:
        device.device_name = device_name
        changed.append("device_name")
    if anti_spoofing is not UNCHANGED:
        device.anti_spoofing = anti_spoofing
        changed.append("anti_spoofing")
    device.save(update_fields=changed)
    return device


@transaction.atomic
def device_delete(device: Device) -> None:
    """Delete a device; its voice bindings go with it, the voices stay, and the tokens
    bound to it are revoked."""
    tokens_revoke_for_device(device.tenant, device_id=device.device_id)
    device.delete()
    audit_record(device.tenant, action="device.delete", object_type="device",
                 object_id=device.device_id)  # fmt: skip
