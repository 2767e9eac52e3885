"""OpenAPI declarations of the devices endpoints (applied with extend_schema in views)."""

from __future__ import annotations

from core.exceptions import ErrorCode
from core.schema import (
    COMMON_ERRORS,
    envelope_error,
    envelope_example,
    enveloped,
    request_example,
)
from devices.api.serializers import (
    DeviceCreateInputSerializer,
    DeviceOutputSerializer,
    DeviceUpdateInputSerializer,
)

TAGS = ["devices"]

DEVICE = {
    "device_id": "AA:BB:CC:DD:EE:FF",
    "device_name": "living-room speaker",
    "voices": ["9c2e7a1b4d6f8e0a3c5b7d91"],
    "stats": {
        "voice_count": 1,
        "identify_count": 42,
        "matched_count": 37,
        "last_identify_at": "2025-01-02T08:30:00Z",
    },
    "created_at": "2025-01-01T12:00:00Z",
}
NEW_DEVICE = {
    **DEVICE,
    "voices": [],
    "stats": {"voice_count": 0, "identify_count": 0, "matched_count": 0, "last_identify_at": None},
}
DEVICE_NOT_FOUND = envelope_error(ErrorCode.NOT_FOUND, "device not found")

LIST = {
    "tags": TAGS,
    "operation_id": "devices_list",
    "summary": "List the tenant's devices",
    "responses": enveloped(DeviceOutputSerializer(many=True)),
    "examples": [envelope_example("Devices", [DEVICE]), *COMMON_ERRORS],
}
CREATE = {
    "tags": TAGS,
    "operation_id": "devices_create",
    "summary": "Register a device",
    "description": "`device_id` is chosen by the client (e.g. a MAC address), unique in the "
    "tenant.",
    "request": DeviceCreateInputSerializer,
    "responses": enveloped(DeviceOutputSerializer),
    "examples": [
        request_example(
            "New device", {"device_id": "AA:BB:CC:DD:EE:FF", "device_name": "living-room speaker"}
        ),
        envelope_example("Created", NEW_DEVICE),
        envelope_error(ErrorCode.CONFLICT, "device_id: device 'AA:BB:CC:DD:EE:FF' already exists"),
        envelope_error(ErrorCode.INVALID_PARAMETER, "device_id: This field is required."),
        *COMMON_ERRORS,
    ],
}
GET = {
    "tags": TAGS,
    "operation_id": "devices_get",
    "summary": "Get a device and its identify stats",
    "responses": enveloped(DeviceOutputSerializer),
    "examples": [envelope_example("Device", DEVICE), DEVICE_NOT_FOUND, *COMMON_ERRORS],
}
UPDATE = {
    "tags": TAGS,
    "operation_id": "devices_update",
    "summary": "Rename a device",
    "request": DeviceUpdateInputSerializer,
    "responses": enveloped(DeviceOutputSerializer),
    "examples": [
        request_example("Rename", {"device_name": "kitchen speaker"}),
        envelope_example("Renamed", {**DEVICE, "device_name": "kitchen speaker"}),
        DEVICE_NOT_FOUND,
        *COMMON_ERRORS,
    ],
}
DELETE = {
    "tags": TAGS,
    "operation_id": "devices_delete",
    "summary": "Delete a device",
    "description": "Its bindings go; its voices stay.",
    "responses": enveloped(None),
    "examples": [envelope_example("Deleted"), DEVICE_NOT_FOUND, *COMMON_ERRORS],
}
