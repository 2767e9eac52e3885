"""OpenAPI declarations of the roleinterrupt endpoints (applied with extend_schema in views)."""

from __future__ import annotations

from core.exceptions import ErrorCode
from core.schema import (
    COMMON_ERRORS,
    envelope_error,
    envelope_example,
    enveloped,
    request_example,
)
from interrupts.api.serializers import (
    RoleInterruptListOutputSerializer,
    RoleInterruptUpdateInputSerializer,
)

TAGS = ["roleinterrupt"]

SETTINGS = {
    "roleinterrupt": [
        {"role_id": "0d9e1c7b5a3f2e4d6c8b9a01", "role_name": "default", "interrupt": "false"},
        {"role_id": "5f0c8e2a9b7d4c1e3a6f8b20", "role_name": "mother", "interrupt": "true"},
    ]
}

GET = {
    "tags": TAGS,
    "operation_id": "roleinterrupt_get",
    "summary": "An agent's interrupt setting for every role",
    "description": 'One entry per role of the tenant; a role with no setting shows "true".',
    "responses": enveloped(RoleInterruptListOutputSerializer),
    "examples": [
        envelope_example("Settings", SETTINGS),
        envelope_error(ErrorCode.INVALID_PARAMETER, "agent_id: at most 128 characters"),
        *COMMON_ERRORS,
    ],
}
UPDATE = {
    "tags": TAGS,
    "operation_id": "roleinterrupt_update",
    "summary": "Set an agent's interrupt setting per role",
    "description": 'Only `role_id` and `interrupt` ("true"/"false" or booleans) are read.',
    "request": RoleInterruptUpdateInputSerializer,
    "responses": enveloped(None),
    "examples": [
        request_example(
            "Settings",
            {"roleinterrupt": [{"role_id": "5f0c8e2a9b7d4c1e3a6f8b20", "interrupt": "false"}]},
        ),
        envelope_example("Saved"),
        envelope_error(ErrorCode.NOT_FOUND, "role 'unknown-role' not found"),
        *COMMON_ERRORS,
    ],
}
