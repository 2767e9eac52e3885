"""OpenAPI declarations of the token endpoints (applied with extend_schema in views)."""

from __future__ import annotations

from core.exceptions import ErrorCode
from core.schema import (
    COMMON_ERRORS,
    envelope_error,
    envelope_example,
    enveloped,
    request_example,
)
from credentials.api.serializers import (
    TokenCreateInputSerializer,
    TokenCreateOutputSerializer,
    TokenOutputSerializer,
)

TAGS = ["tokens"]
ADMIN_ONLY = " Admin-scope tokens only (40300 for the others)."

TOKEN = {
    "prefix": "3f9a1c07",
    "label": "kitchen speaker firmware",
    "scope": "device",
    "device_id": "AA:BB:CC:DD:EE:FF",
    "created_at": "2025-01-01T12:00:00Z",
    "last_used_at": "2025-01-02T08:30:00Z",
    "revoked_at": None,
}
TOKEN_NOT_FOUND = envelope_error(ErrorCode.NOT_FOUND, "token not found")

LIST = {
    "tags": TAGS,
    "operation_id": "tokens_list",
    "summary": "List the tenant's API tokens (prefixes, never the tokens)",
    "description": "Revoked tokens included (`revoked_at` set), newest first." + ADMIN_ONLY,
    "responses": enveloped(TokenOutputSerializer(many=True)),
    "examples": [envelope_example("Tokens", [TOKEN]), *COMMON_ERRORS],
}
CREATE = {
    "tags": TAGS,
    "operation_id": "tokens_create",
    "summary": "Issue an API token; the reply is the only time it is shown",
    "description": "`scope`: `admin` (everything), `read` (GET only) or `device` (one "
    "device, named by `device_id`: identify on it, enroll onto it, verify and add samples to "
    "its voices, read it). Only the token's SHA-256 digest is stored." + ADMIN_ONLY,
    "request": TokenCreateInputSerializer,
    "responses": enveloped(TokenCreateOutputSerializer),
    "examples": [
        request_example(
            "Device token",
            {"scope": "device", "device_id": "AA:BB:CC:DD:EE:FF", "label": "kitchen speaker"},
        ),
        envelope_example(
            "Issued",
            {
                "token": "vp_3f9a1c07_Qm9vbGVhbi1mYWtlLXRva2VuLWZvci1kb2Nz",
                **TOKEN,
                "last_used_at": None,
            },
        ),
        envelope_error(ErrorCode.NOT_FOUND, "device not found"),
        envelope_error(
            ErrorCode.INVALID_PARAMETER,
            "scope: a device token needs a device_id, and only a device token has one",
        ),
        *COMMON_ERRORS,
    ],
}
DELETE = {
    "tags": TAGS,
    "operation_id": "tokens_revoke",
    "summary": "Revoke an API token by its prefix",
    "description": "It answers 40100 from then on." + ADMIN_ONLY,
    "responses": enveloped(None),
    "examples": [envelope_example("Revoked"), TOKEN_NOT_FOUND, *COMMON_ERRORS],
}
