"""OpenAPI pieces shared by both API surfaces.

- `AutoSchema`: drf-spectacular's, with component names after the serializers' naming
  convention (`component_name`);
- `enveloped()`: the response schema of a Voiceprint API reply, `{code, msg, data}`;
- example builders for envelope replies and Voice API errors;
- the bearer-token security scheme (an extension of drf-spectacular, registered on import);
- `describe_api`, a postprocessing hook that adds the business codes, the audio forms and
  the tag descriptions to the schema (settings.SPECTACULAR_SETTINGS).
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.utils import OpenApiExample, inline_serializer
from rest_framework import serializers
from rest_framework.fields import empty

from core.exceptions import ErrorCode

# --- component names ---------------------------------------------------------------------

_CONVENTION_SUFFIX = re.compile(r"(Input|Output)?(Serializer)?$")


def component_name(serializer_class: type) -> str:
    """The OpenAPI name of a serializer's shape: its class name without the `Input`/`Output`
    and `Serializer` of the naming convention (`DeviceOutputSerializer` -> `Device`,
    `DeviceCreateInputSerializer` -> `DeviceCreate`, which drf-spectacular names
    `DeviceCreateRequest` as a request body). A serializer nested in a view is named after
    the view (`DeviceCreateView.InputSerializer` -> `DeviceCreate`), so that the views'
    many `InputSerializer`s do not collide."""
    owner, name = ["", *serializer_class.__qualname__.split(".")][-2:]
    if owner.endswith("View"):
        name = owner.removesuffix("View") + name
    return _CONVENTION_SUFFIX.sub("", name)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema generator, naming components with `component_name`."""

    def get_serializer_name(self, serializer: serializers.Serializer, direction: str) -> str:
        return component_name(type(serializer))


# --- the envelope ------------------------------------------------------------------------

_ENVELOPES: dict[str, type[serializers.Serializer]] = {}


def _serializer_name(data: serializers.BaseSerializer | type[serializers.BaseSerializer]) -> str:
    if isinstance(data, serializers.ListSerializer):
        return f"{_serializer_name(data.child)}List"
    return component_name(data if isinstance(data, type) else type(data))


def enveloped(data: serializers.BaseSerializer | type[serializers.BaseSerializer] | None):
    """Response schema of a Voiceprint API reply whose `data` is `data` on success.

    Every reply is HTTP 200 and every failure has `data` null, so `data` is nullable in each
    (None: always null). One component per data shape (e.g. `VoiceEnvelope`,
    `VoiceListEnvelope`), built once: the same name must always be the same class for
    drf-spectacular."""
    name = "EmptyEnvelope" if data is None else f"{_serializer_name(data)}Envelope"
    if name not in _ENVELOPES:
        _ENVELOPES[name] = inline_serializer(
            name=name,
            fields={
                "code": serializers.IntegerField(help_text="0 on success, else a business code"),
                "msg": serializers.CharField(help_text='"" on success, else the error'),
                "data": _nullable(data),
            },
        )
    return {200: _ENVELOPES[name]}


def _nullable(data) -> serializers.Field:
    """The envelope's `data` field: the success shape, or null (failures, and replies that
    carry nothing)."""
    if data is None:
        return serializers.JSONField(allow_null=True, help_text="always null")
    help_text = "null when `code` is not 0"
    if isinstance(data, serializers.ListSerializer):
        child = type(data.child)()
        return serializers.ListSerializer(child=child, allow_null=True, help_text=help_text)
    cls = data if isinstance(data, type) else type(data)
    return cls(allow_null=True, help_text=help_text)


# --- examples ----------------------------------------------------------------------------


#: A valid, empty 16 kHz mono WAV, for examples: real requests carry seconds of speech.
EMPTY_WAV_BASE64 = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAgD4AAAB9AAACABAAZGF0YQAAAAA="


def _error_name(code: ErrorCode) -> str:
    return code.name.replace("_", " ").capitalize()  # "Not found", "Too little speech"


def envelope_example(name: str, data: Any = None, summary: str = "") -> OpenApiExample:
    """A Voiceprint API success reply."""
    return OpenApiExample(
        name,
        summary=summary or name,
        value={"code": 0, "msg": "", "data": data},
        response_only=True,
        status_codes=["200"],
    )


def envelope_error(code: ErrorCode, msg: str, name: str = "") -> OpenApiExample:
    """A Voiceprint API failure: HTTP 200, `data` null."""
    return OpenApiExample(
        name or _error_name(code),
        summary=f"{int(code)}: {msg}",
        value={"code": int(code), "msg": msg, "data": None},
        response_only=True,
        status_codes=["200"],
    )


def voice_error(code: ErrorCode, message: str, name: str = "") -> OpenApiExample:
    """A Voice API failure: `{"error": {code, message}}` with the code's HTTP status."""
    return OpenApiExample(
        name or _error_name(code),
        summary=f"{code.http_status} / {int(code)}: {message}",
        value={"error": {"code": int(code), "message": message}},
        response_only=True,
        status_codes=[str(code.http_status)],
    )


def request_example(name: str, value: Any = empty, summary: str = "", **kwargs) -> OpenApiExample:
    """A request example (no `value`: described only, e.g. a binary body)."""
    return OpenApiExample(name, summary=summary or name, value=value, request_only=True, **kwargs)


#: Replies every authenticated Voiceprint API endpoint can give (40300: a read or device
#: token outside its scope, core.scopes).
UNAUTHORIZED = envelope_error(ErrorCode.UNAUTHORIZED, "invalid or revoked token", "Bad token")
RATE_LIMITED = envelope_error(
    ErrorCode.RATE_LIMITED, "Request was throttled. Expected available in 12 seconds.", "Throttled"
)
FORBIDDEN = envelope_error(
    ErrorCode.FORBIDDEN, "this token may only act on device 'AA:BB:CC:DD:EE:FF'", "Out of scope"
)
COMMON_ERRORS = [UNAUTHORIZED, FORBIDDEN, RATE_LIMITED]


# --- security and field extensions -------------------------------------------------------


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <token>` (core.authentication.BearerTokenAuthentication)."""

    target_class = "core.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "vp_<prefix>_<secret>",
            "description": (
                "A tenant's API token, from `python manage.py create_tenant NAME` or "
                "`create_token TENANT [--scope admin|read|device --device ID]`, the console "
                "or `POST /v1/voiceprint/tokens`. Missing or invalid: code 40100 (HTTP 401 "
                "on the Voice API). Outside its scope (a `read` token writing, a `device` "
                "token beyond its device): 40300 (HTTP 403)."
            ),
        }


class TrueFalseStringFieldExtension(OpenApiSerializerFieldExtension):
    """ "true"/"false" strings in replies; those strings or booleans in requests."""

    target_class = "core.fields.TrueFalseStringField"

    def map_serializer_field(self, auto_schema, direction):
        as_string = {"type": "string", "enum": ["true", "false"]}
        if direction == "response":
            return as_string
        return {"oneOf": [as_string, {"type": "boolean"}]}


# --- the API description -----------------------------------------------------------------

BUSINESS_CODES = {
    ErrorCode.OK: "success",
    ErrorCode.INVALID_PARAMETER: "invalid parameter (msg names the field)",
    ErrorCode.NO_AUDIO: "no audio given",
    ErrorCode.UNDECODABLE_AUDIO: "audio cannot be decoded",
    ErrorCode.TOO_LITTLE_SPEECH: "audio has too little speech (after silence removal)",
    ErrorCode.UNAUTHORIZED: "missing or invalid token",
    ErrorCode.FORBIDDEN: "the token's scope does not allow this request (a `read` token "
    "writing, a `device` token outside its device)",
    ErrorCode.NOT_FOUND: "voice / role / device / agent not found (or another tenant's)",
    ErrorCode.CONFLICT: "conflict (duplicate device_id, device full, embedding model mismatch)",
    ErrorCode.AUDIO_TOO_LARGE: "audio too large",
    ErrorCode.RATE_LIMITED: "rate limited (tenant or token rate, failed authentications from "
    "this address, enrollments per device; `Retry-After` says when to try again)",
    ErrorCode.INTERNAL: "internal error (never shows a stack trace)",
    ErrorCode.NOT_IMPLEMENTED: "not implemented (Voice API analyze: no asked attribute "
    "can be computed)",
    ErrorCode.FETCH_FAILED: "audio_url could not be fetched",
    ErrorCode.UNAVAILABLE: "engine or queue unavailable / timed out",
}

OVERVIEW = """
Two surfaces over one store and one tenant model. Every request carries
`Authorization: Bearer <token>`; another tenant's ids answer exactly like ids that do not exist.

- **Voiceprint API** `/v1/voiceprint/`: every reply is HTTP 200 with the envelope
  `{"code": int, "msg": str, "data": ...}`; `code` 0 is success (`msg` ""), any other
  code is a failure (`data` null), e.g. `{"code": 40400, "msg": "voice not found", "data": null}`.
- **Voice API** `/v1/voice/`: plain JSON with real HTTP statuses; failures are
  `{"error": {"code": int, "message": str}}` with the same business codes.

### Audio input (Voiceprint API)
Every endpoint that takes audio accepts three forms:
1. **raw body**: `Content-Type: audio/wav` (also `audio/x-wav`, `audio/*`,
   `application/octet-stream`), at most 512 KB, parameters in `X-` headers (`X-Device-ID`,
   `X-Role-ID`, `X-Threshold`, `X-Voice-Name`, `X-Agent-ID`, `X-Top-K`, `X-Audio-URL`;
   non-ASCII values percent-encoded UTF-8);
2. **JSON**: `audio_url` (http/https, fetched by the server, at most 10 MB) or
   `audio_base64` (raw base64 or a `data:audio/...;base64,` URI, at most 10 MB decoded);
3. **multipart/form-data**: field `file` (at most 10 MB), other parameters as form fields.

A URL wins over any other form. WAV, FLAC and OGG at any sample rate are accepted; silence
is removed before embedding. Only the start of a long recording is used (by default its
first 2 minutes, fewer for many channels at a high rate). Voice API audio fields take a URL,
raw base64 or a data URI.

### Input rules
Parameters (path, query, `X-` headers, body fields) must not contain NUL characters, JSON
bodies must not nest deeper than 32 levels, and a request carries at most 1000 query or form
fields: each answers 40000 naming what is wrong. Each tenant may send 3000 requests a minute
by default (`VOICEPRINT_RATE_LIMIT`), and each token 1200 (`VOICEPRINT_TOKEN_RATE_LIMIT`); an
address with 20 failed bearer-token attempts in 5 minutes is refused for 5 minutes; a device
takes 60 enrollments (voices and samples) an hour. Beyond any of these the API answers 42900
with `Retry-After`.

### Streaming (WebSocket, not part of this schema)
`WS /v1/voiceprint/stream?device_id=...&agent_id=...`, with the bearer token in the
`Authorization` header or in a first text message `{"type": "start", "token": ...}`. The device
sends 16 kHz 16-bit mono PCM in binary messages of 20-200 ms; the server answers JSON events:
`ready`, `speech_start`, `partial` (who is speaking, with decision and interrupt, at most every
500 ms once a second of speech is heard), `speech_end`, `final` (per utterance, the fields of
`voices/identify`), `speaker_change`, `error`, `end`. Failures close the socket with
4000 + the HTTP status of the business code (4400, 4401, 4403, 4404, 4408 idle, 4413 too long,
4429 too many streams) or 1013 (unavailable, retry). The protocol: `docs/STREAMING.md`;
a reference client: `python -m voiceprint.stream_client FILE --device D`.

### Operations (not part of this schema)
`GET /healthz` (no token), `GET /metrics` (Prometheus text format; no token unless
`VOICEPRINT_METRICS_TOKEN` is set). Every reply carries `X-Request-ID` (the client's, when
it sends a sane one, else a new one): quote it when reporting a problem.
"""

TAGS = [
    {"name": "voices", "description": "Voiceprint API: enroll and manage voices."},
    {"name": "recognition", "description": "Voiceprint API: identify, verify, extract."},
    {"name": "devices", "description": "Voiceprint API: devices and their identify stats."},
    {"name": "roles", "description": "Voiceprint API: roles a voice can be bound to."},
    {"name": "roleinterrupt", "description": "Voiceprint API: per-agent interrupt settings."},
    {"name": "tokens", "description": "Voiceprint API: issue, list and revoke API tokens "
     "(admin scope)."},
    {"name": "voice", "description": "Voice API: verify, register, identify, forget, embed, "
     "analyze; plain JSON and real HTTP statuses."},
]  # fmt: skip


def business_codes_table() -> str:
    rows = [
        f"| {int(code)} | {code.http_status} | {meaning} |"
        for code, meaning in BUSINESS_CODES.items()
    ]
    header = "| code | HTTP (Voice API) | meaning |\n|---|---|---|"
    return "\n".join([header, *rows])


def describe_api(result: dict, generator, request, public) -> dict:
    """POSTPROCESSING_HOOKS entry: the overview, the business codes and the tags."""
    info = result.setdefault("info", {})
    info["description"] = "\n\n".join(
        part
        for part in (
            info.get("description", ""),
            OVERVIEW.strip(),
            "### Business codes\n" + business_codes_table(),
        )
        if part
    )
    result["tags"] = TAGS
    return result
