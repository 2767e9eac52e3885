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
    ],
    "uncertain_interrupt": "false",
}

GET = {
    "tags": TAGS,
    "operation_id": "roleinterrupt_get",
    "summary": "An agent's interrupt settings: every role's, and an uncertain speaker's",
    "description": (
        'One entry per role of the tenant; a role with no setting shows "true". '
        "`uncertain_interrupt`: whether a speaker identify is uncertain about may interrupt "
        'the agent ("false" until set).'
    ),
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
    "summary": "Set an agent's interrupt settings per role and for uncertain speakers",
    "description": (
        'In `roleinterrupt` only `role_id` and `interrupt` ("true"/"false" or booleans) are '
        "read. `uncertain_interrupt` (the same values) is optional: left out, it is unchanged; "
        "`roleinterrupt` may then be left out too, not both. Nothing is stored when any part "
        "is refused."
    ),
    "request": RoleInterruptUpdateInputSerializer,
    "responses": enveloped(None),
    "examples": [
        request_example(
            "Settings",
            {"roleinterrupt": [{"role_id": "5f0c8e2a9b7d4c1e3a6f8b20", "interrupt": "false"}]},
        ),
        request_example(
            "Roles and uncertain speakers",
            {
                "roleinterrupt": [{"role_id": "5f0c8e2a9b7d4c1e3a6f8b20", "interrupt": "true"}],
                "uncertain_interrupt": "true",
            },
        ),
        request_example("Uncertain speakers only", {"uncertain_interrupt": False}),
        envelope_example("Saved"),
        envelope_error(
            ErrorCode.INVALID_PARAMETER,
            'uncertain_interrupt: must be "true", "false" or a boolean',
        ),
        envelope_error(ErrorCode.NOT_FOUND, "role 'unknown-role' not found"),
        *COMMON_ERRORS,
    ],
}
