"""OpenAPI declarations of the roles endpoints (applied with extend_schema in views)."""

from __future__ import annotations

from core.exceptions import ErrorCode
from core.schema import (
    COMMON_ERRORS,
    envelope_error,
    envelope_example,
    enveloped,
    request_example,
)
from roles.api.serializers import (
    RoleCreateInputSerializer,
    RoleCreateOutputSerializer,
    RoleOutputSerializer,
)

TAGS = ["roles"]

ROLE = {
    "role_id": "5f0c8e2a9b7d4c1e3a6f8b20",
    "role_name": "mother",
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-01T12:00:00Z",
}
DEFAULT_ROLE = {**ROLE, "role_id": "0d9e1c7b5a3f2e4d6c8b9a01", "role_name": "default"}
ROLE_NOT_FOUND = envelope_error(ErrorCode.NOT_FOUND, "role not found")

LIST = {
    "tags": TAGS,
    "operation_id": "roles_list",
    "summary": "List the tenant's roles",
    "responses": enveloped(RoleOutputSerializer(many=True)),
    "examples": [envelope_example("Roles", [DEFAULT_ROLE, ROLE]), *COMMON_ERRORS],
}
CREATE = {
    "tags": TAGS,
    "operation_id": "roles_create",
    "summary": "Create a role",
    "request": RoleCreateInputSerializer,
    "responses": enveloped(RoleCreateOutputSerializer),
    "examples": [
        request_example("New role", {"role_name": "mother"}),
        envelope_example("Created", {"role_id": ROLE["role_id"]}),
        envelope_error(ErrorCode.INVALID_PARAMETER, "role_name: This field is required."),
        envelope_error(ErrorCode.CONFLICT, "role_name: a role named 'mother' already exists"),
        *COMMON_ERRORS,
    ],
}
GET = {
    "tags": TAGS,
    "operation_id": "roles_get",
    "summary": "Get a role",
    "responses": enveloped(RoleOutputSerializer),
    "examples": [envelope_example("Role", ROLE), ROLE_NOT_FOUND, *COMMON_ERRORS],
}
DELETE = {
    "tags": TAGS,
    "operation_id": "roles_delete",
    "summary": "Delete a role",
    "description": "Its voices stay, with `role_bind` {}. The default role cannot be deleted.",
    "responses": enveloped(None),
    "examples": [
        envelope_example("Deleted"),
        ROLE_NOT_FOUND,
        envelope_error(ErrorCode.CONFLICT, "the default role cannot be deleted"),
        *COMMON_ERRORS,
    ],
}
