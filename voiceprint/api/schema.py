"""OpenAPI declarations of the Voiceprint API's voice and recognition endpoints.

Each constant is the keyword arguments of one `extend_schema` in views.py. Endpoints that
take audio document its three forms (API.md, "Audio input"): a raw WAV body with the
parameters in `X-` headers, JSON with `audio_url` or `audio_base64`, and multipart with a
`file`; each with request examples. The `*FormInput` serializers below only describe the
multipart body: voiceprint.audio_input reads the request.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers

from core.envelope import VOICEPRINT_PREFIX
from core.exceptions import ErrorCode
from core.schema import (
    COMMON_ERRORS,
    EMPTY_WAV_BASE64,
    envelope_error,
    envelope_example,
    enveloped,
    request_example,
)
from voiceprint.api.serializers import (
    AudioInputMixin,
    FeatureExtractOutputSerializer,
    VoiceCreateInputSerializer,
    VoiceEnrollmentOutputSerializer,
    VoiceIdentifyInputSerializer,
    VoiceIdentifyOutputSerializer,
    VoiceOutputSerializer,
    VoiceSampleAddInputSerializer,
    VoiceSampleListItemSerializer,
    VoiceUpdateInputSerializer,
    VoiceVerifyOutputSerializer,
)

VOICES = ["voices"]
RECOGNITION = ["recognition"]

# --- request bodies ----------------------------------------------------------------------


class AudioInputSerializer(AudioInputMixin):
    """JSON body of the endpoints whose only parameter is the audio: `audio_url` or
    `audio_base64`."""


class FileInputMixin(serializers.Serializer):
    file = serializers.FileField(help_text="the audio file (WAV, FLAC, OGG), at most 10 MB")


class AudioFormInputSerializer(FileInputMixin):
    """multipart/form-data body of the endpoints whose only parameter is the audio."""


class VoiceSampleAddFormInputSerializer(FileInputMixin, VoiceSampleAddInputSerializer):
    """multipart/form-data body of voices/{id}/samples: the file and `force`."""

    audio_url = None
    audio_base64 = None


class VoiceCreateFormInputSerializer(FileInputMixin, VoiceCreateInputSerializer):
    """multipart/form-data body of voices/create: the file and the parameters as fields,
    the consent's as `consent_*` fields."""

    audio_url = None
    audio_base64 = None
    consent = None
    consent_subject = serializers.CharField(max_length=128, required=False)
    consent_text_version = serializers.CharField(max_length=64, required=False)
    consent_channel = serializers.CharField(max_length=32, required=False)
    consent_time = serializers.DateTimeField(required=False, help_text="ISO 8601; default: now")


class VoiceIdentifyFormInputSerializer(FileInputMixin, VoiceIdentifyInputSerializer):
    """multipart/form-data body of voices/identify: the file and the parameters as fields."""

    audio_url = None
    audio_base64 = None


def _header(name: str, kind, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name, kind, OpenApiParameter.HEADER, required=False, description=description
    )


#: Media types of a raw audio body (voiceprint.audio_input also takes any other audio/*).
RAW_AUDIO_TYPES = ("audio/wav", "audio/x-wav", "application/octet-stream")

_RAW_ONLY = "Raw-body requests only; non-ASCII values percent-encoded UTF-8."
X_DEVICE_ID = _header("X-Device-ID", str, f"`device_id`. {_RAW_ONLY}")
X_ROLE_ID = _header("X-Role-ID", str, f"`role_id`. {_RAW_ONLY}")
X_THRESHOLD = _header("X-Threshold", float, f"`threshold` (0-1). {_RAW_ONLY}")
X_VOICE_NAME = _header("X-Voice-Name", str, f"`voice_name`. {_RAW_ONLY}")
X_AGENT_ID = _header("X-Agent-ID", str, f"`agent_id`. {_RAW_ONLY}")
X_TOP_K = _header("X-Top-K", int, f"`top_k` (default 3). {_RAW_ONLY}")
X_AUDIO_URL = _header("X-Audio-URL", str, f"`audio_url`: fetched instead of the body. {_RAW_ONLY}")
X_FORCE = _header("X-Force", bool, f"`force` (true/false). {_RAW_ONLY}")
X_CONSENT = [
    _header("X-Consent-Subject", str, f"`consent.subject`. {_RAW_ONLY}"),
    _header("X-Consent-Text-Version", str, f"`consent.text_version`. {_RAW_ONLY}"),
    _header("X-Consent-Channel", str, f"`consent.channel`. {_RAW_ONLY}"),
    _header("X-Consent-Time", str, f"`consent.time` (ISO 8601). {_RAW_ONLY}"),
]

AUDIO_FORMS = """

**Audio**, in one of three forms:
- raw body: `Content-Type: audio/wav` (also `audio/x-wav`, `audio/*`,
  `application/octet-stream`), at most 512 KB, the other parameters in `X-` headers;
- JSON: `audio_url` (http/https, fetched by the server, at most 10 MB) or `audio_base64`
  (raw base64 or a `data:audio/...;base64,` URI, at most 10 MB decoded);
- multipart/form-data: `file` (at most 10 MB), the other parameters as form fields.
"""


def _audio_request_examples(path: str, params: dict, headers: dict) -> list[OpenApiExample]:
    header_lines = "".join(f" \\\n  -H '{name}: {value}'" for name, value in headers.items())
    curl = (
        f'curl -X POST "$BASE{VOICEPRINT_PREFIX}{path}" -H "Authorization: Bearer $TOKEN" \\\n'
        f"  -H 'Content-Type: audio/wav'{header_lines} \\\n  --data-binary @voice.wav"
    )
    return [
        request_example(
            "Raw WAV body",
            summary="Raw WAV body, parameters in X- headers",
            description=f"The body is the audio file itself.\n\n```\n{curl}\n```",
            media_type="audio/wav",
        ),
        request_example(
            "JSON with audio_url",
            {**params, "audio_url": "https://example.com/audio/mother.wav"},
        ),
        request_example(
            "JSON with audio_base64",
            {**params, "audio_base64": f"data:audio/wav;base64,{EMPTY_WAV_BASE64}"},
            description="Raw base64 (without the `data:` prefix) is accepted as well.",
        ),
        request_example(
            "Multipart with file",
            {**params, "file": "(binary content of voice.wav)"},
            description="`curl -F file=@voice.wav"
            + "".join(f" -F {name}={value}" for name, value in params.items())
            + " ...`",
            media_type="multipart/form-data",
        ),
    ]


def audio_operation(
    *,
    operation_id: str,
    summary: str,
    description: str,
    path: str,
    json: type[serializers.Serializer],
    form: type[serializers.Serializer],
    headers: list[OpenApiParameter],
    example_params: dict,
    responses: dict,
    examples: list[OpenApiExample],
    tags: list[str],
) -> dict:
    """extend_schema arguments of an endpoint that takes audio in the three forms."""
    header_values = {
        parameter.name: example_params[parameter.name[2:].lower().replace("-", "_")]
        for parameter in headers
        if parameter.name[2:].lower().replace("-", "_") in example_params
    }
    return {
        "operation_id": operation_id,
        "summary": summary,
        "description": description + AUDIO_FORMS,
        "tags": tags,
        "request": {
            "application/json": json,
            "multipart/form-data": form,
            **dict.fromkeys(RAW_AUDIO_TYPES, OpenApiTypes.BINARY),
        },
        "parameters": headers,
        "responses": responses,
        "examples": [
            *_audio_request_examples(path, example_params, header_values),
            *examples,
            *AUDIO_ERRORS,
            *COMMON_ERRORS,
        ],
    }


# --- example replies ---------------------------------------------------------------------

VOICE_ID = "9c2e7a1b4d6f8e0a3c5b7d91"
DEVICE_ID = "AA:BB:CC:DD:EE:FF"
ROLE = {"role_id": "5f0c8e2a9b7d4c1e3a6f8b20", "role_name": "mother"}
VOICE = {
    "voice_id": VOICE_ID,
    "voice_name": "mother",
    "voice_url": f"https://api.example.com{VOICEPRINT_PREFIX}voices/{VOICE_ID}/audio",
    "status": "activate",
    "threshold": 0.7,
    "role_bind": ROLE,
    "dev_bind": [{"device_id": DEVICE_ID, "device_name": "living-room speaker"}],
    "model": "eres2net",
    "sample_count": 1,
    "enrollment": {
        "speech_seconds": 3.2,
        "target_speech_seconds": 6.0,
        "progress": 0.533,
        "issues": ["add 3 s more speech"],
    },
    "consent": {
        "subject": "customer-4711",
        "text_version": "2025-01",
        "time": "2025-01-01T11:58:00Z",
        "channel": "app",
    },
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-01T12:00:00Z",
}
ENROLLED = {
    **VOICE,
    "similar_voices": [
        {"voice_id": "3b1f", "voice_name": "father", "score": 0.41, "lookalike": False}
    ],
}
ENROLLMENT_NOTE = (
    " The reply also carries `similar_voices`: the existing voices closest to this one on "
    "its devices and in its store, most similar first (`lookalike`: that voice would already "
    "match it; the enrollment `issues` then name it). A recording too short, too noisy or too "
    'clipped to help is refused with 40003 (README, "Enrollment").'
)
#: The `quality` of a probe in the recognition replies' examples, and what it is.
QUALITY = {"speech_seconds": 2.37, "snr_db": 18.4, "clipping": 0.0}
QUALITY_NOTE = " `quality`: the probe's seconds of speech, estimated SNR (dB), clipped share."

VOICE_NOT_FOUND = envelope_error(ErrorCode.NOT_FOUND, "voice not found", "Voice not found")
DEVICE_NOT_FOUND = envelope_error(ErrorCode.NOT_FOUND, "device not found", "Device not found")
MODEL_MISMATCH = envelope_error(
    ErrorCode.CONFLICT,
    f"voice {VOICE_ID} was enrolled with engine 'ge2e' but the active engine is 'eres2net'; "
    "run `python manage.py reembed` to recompute it",
    "Engine mismatch",
)
AUDIO_ERRORS = [
    envelope_error(
        ErrorCode.NO_AUDIO,
        "no audio given: send a WAV body, audio_url, audio_base64 or a multipart file",
    ),
    envelope_error(ErrorCode.UNDECODABLE_AUDIO, "cannot decode audio: Format not recognised."),
    envelope_error(
        ErrorCode.TOO_LITTLE_SPEECH,
        "audio has 0.42 s of speech after silence removal; at least 1.00 s is required",
    ),
    envelope_error(ErrorCode.AUDIO_TOO_LARGE, "raw audio body is larger than 512 KB"),
    envelope_error(ErrorCode.FETCH_FAILED, "The URL host could not be resolved."),
    envelope_error(ErrorCode.UNAVAILABLE, "the embedding worker did not answer within 30 s"),
]


# --- voices ------------------------------------------------------------------------------

CREATE = audio_operation(
    operation_id="voices_create",
    summary="Enroll a voice",
    description=(
        "`device_id` must exist; `role_id` defaults to the tenant's default role, "
        "`threshold` (similarity, 0-1) to the engine's. Returns the voice object. With "
        "VOICEPRINT_LOOKALIKE_POLICY=refuse, a voice that an existing one would already match "
        "is refused with 40900 unless `force`. `consent` records the person's consent "
        "(subject, text_version, channel, time); a tenant that requires it refuses an "
        "enrollment without one (40000)." + ENROLLMENT_NOTE
    ),
    path="voices/create",
    json=VoiceCreateInputSerializer,
    form=VoiceCreateFormInputSerializer,
    headers=[X_DEVICE_ID, X_ROLE_ID, X_THRESHOLD, X_VOICE_NAME, X_AUDIO_URL, X_FORCE, *X_CONSENT],
    example_params={"device_id": DEVICE_ID, "role_id": ROLE["role_id"], "voice_name": "mother"},
    responses=enveloped(VoiceEnrollmentOutputSerializer),
    examples=[
        envelope_example("Enrolled", ENROLLED),
        envelope_error(
            ErrorCode.CONFLICT,
            'already enrolled as voice 3b1f "father" (score 0.871): send force=true to enroll '
            "a second voice anyway",
            "Look-alike refused",
        ),
        DEVICE_NOT_FOUND,
        envelope_error(
            ErrorCode.CONFLICT,
            f"device {DEVICE_ID} already holds 16 voices (VOICEPRINT_MAX_VOICES_PER_DEVICE)",
            "Device full",
        ),
        envelope_error(ErrorCode.INVALID_PARAMETER, "device_id: This field is required."),
        envelope_error(
            ErrorCode.INVALID_PARAMETER, "consent: required by this tenant", "Consent required"
        ),
    ],
    tags=VOICES,
)

LIST = {
    "operation_id": "voices_list",
    "summary": "List the tenant's voices",
    "tags": VOICES,
    "parameters": [
        OpenApiParameter("device_id", str, description="only voices bound to this device"),
        OpenApiParameter("role_id", str, description="only voices bound to this role"),
    ],
    "responses": enveloped(VoiceOutputSerializer(many=True)),
    "examples": [envelope_example("Voices", [VOICE]), *COMMON_ERRORS],
}

GET = {
    "operation_id": "voices_get",
    "summary": "Get a voice",
    "tags": VOICES,
    "responses": enveloped(VoiceOutputSerializer),
    "examples": [envelope_example("Voice", VOICE), VOICE_NOT_FOUND, *COMMON_ERRORS],
}


def _update(operation_id: str, summary: str) -> dict:
    return {
        "operation_id": operation_id,
        "summary": summary,
        "description": (
            "Each field is optional: `threshold` (null: the engine default), `role_bind` "
            "(`{role_id}`, or `{}` to unbind), `dev_bind` (a list of `{device_id}` or of "
            "strings; replaces the set). `data` is null."
        ),
        "tags": VOICES,
        "request": VoiceUpdateInputSerializer,
        "responses": enveloped(None),
        "examples": [
            request_example(
                "Rebind",
                {
                    "threshold": 0.75,
                    "role_bind": {"role_id": ROLE["role_id"]},
                    "dev_bind": [{"device_id": DEVICE_ID}, "11:22:33:44:55:66"],
                },
            ),
            request_example("Unbind role", {"role_bind": {}}),
            envelope_example("Updated"),
            VOICE_NOT_FOUND,
            DEVICE_NOT_FOUND,
            envelope_error(ErrorCode.INVALID_PARAMETER, "threshold: Ensure this value is less "
                           "than or equal to 1.0."),
            *COMMON_ERRORS,
        ],
    }  # fmt: skip


UPDATE = _update("voices_update", "Update a voice's threshold and bindings")
BIND = _update("voicesbind_update", "Update a voice's bindings (the seed's path)")

DELETE = {
    "operation_id": "voices_delete",
    "summary": "Delete a voice, its embeddings and its audio",
    "tags": VOICES,
    "responses": enveloped(None),
    "examples": [envelope_example("Deleted"), VOICE_NOT_FOUND, *COMMON_ERRORS],
}

ADD_SAMPLE = audio_operation(
    operation_id="voices_samples_add",
    summary="Add an enrollment sample",
    description=(
        "The voiceprint becomes the normalised mean of its samples. A sample that the voice "
        "would not match (below its decision point) is refused with 40900, so that two people "
        "never share a voiceprint, unless `force`." + ENROLLMENT_NOTE
    ),
    path=f"voices/{VOICE_ID}/samples",
    json=VoiceSampleAddInputSerializer,
    form=VoiceSampleAddFormInputSerializer,
    headers=[X_AUDIO_URL, X_FORCE],
    example_params={},
    responses=enveloped(VoiceEnrollmentOutputSerializer),
    examples=[
        envelope_example("Sample added", {**ENROLLED, "sample_count": 2}),
        envelope_error(
            ErrorCode.CONFLICT,
            f"sample does not match voice {VOICE_ID} (score 0.412; the voice needs 0.75): if "
            "it is the same speaker, send force=true",
            "Sample of someone else",
        ),
        VOICE_NOT_FOUND,
        MODEL_MISMATCH,
    ],
    tags=VOICES,
)

AUDIO = {
    "operation_id": "voices_audio",
    "summary": "Download an enrollment sample",
    "description": "The WAV bytes (16 kHz mono), not an envelope; errors are envelopes. "
    'Stored encrypted (README "Enrollment audio at rest"), decrypted here. A recording '
    "deleted after VOICEPRINT_AUDIO_RETENTION_DAYS answers 40400 (the voice keeps working).",
    "tags": VOICES,
    "parameters": [OpenApiParameter("sample", int, description="0-based sample index (default 0)")],
    "responses": {
        (200, "audio/wav"): OpenApiTypes.BINARY,
        (200, "application/json"): enveloped(None)[200],
    },
    "examples": [
        envelope_error(ErrorCode.NOT_FOUND, "sample not found", "Sample not found"),
        envelope_error(
            ErrorCode.NOT_FOUND,
            "sample audio was purged after 365 days (VOICEPRINT_AUDIO_RETENTION_DAYS)",
            "Sample audio purged",
        ),
        VOICE_NOT_FOUND,
        envelope_error(
            ErrorCode.UNAVAILABLE,
            "the stored audio 7Qm2xY.wav.enc was sealed with key id 1a2b3c4d, which is not "
            "among the configured keys: add that key to VOICEPRINT_AUDIO_KEY",
            "Audio key missing",
        ),
        envelope_error(
            ErrorCode.INTERNAL,
            "the stored audio 7Qm2xY.wav.enc failed authentication: altered or corrupt: it "
            "is refused",
            "Audio altered",
        ),
        *COMMON_ERRORS,
    ],
}

EXPORT = {
    "operation_id": "voices_export",
    "summary": "Export everything held about a voice (ZIP)",
    "description": (
        "A ZIP archive, not an envelope (errors are envelopes): `voice.json` (the voice's "
        "record, enrollment progress and samples' metadata), `samples/<n>.wav` (each "
        "recording, `n` as in voices/{id}/audio?sample=) and `audit.jsonl` (the audit "
        "events about the voice). The export is itself recorded in the audit log."
    ),
    "tags": VOICES,
    "responses": {
        (200, "application/zip"): OpenApiTypes.BINARY,
        (200, "application/json"): enveloped(None)[200],
    },
    "examples": [VOICE_NOT_FOUND, *COMMON_ERRORS],
}

SAMPLE = {
    "sample": 0,
    "kind": "enrollment",
    "duration_seconds": 5.1,
    "speech_seconds": 4.2,
    "snr_db": 31.5,
    "clipping": 0.0,
    "agreement": 0.86,
    "created_at": "2025-01-01T12:00:00Z",
    "audio_purged_at": None,
}
LIST_SAMPLES = {
    "operation_id": "voices_samples_list",
    "summary": "List a voice's samples with their quality and agreement",
    "description": (
        "In `sample` index order (that of voices/{id}/audio). `agreement`: the cosine of the "
        "sample to the mean of the voice's other samples; below the voice's threshold, it may "
        "be someone else's. `kind`: enrollment, or adaptation (added from a confident match)."
    ),
    "tags": VOICES,
    "responses": enveloped(VoiceSampleListItemSerializer(many=True)),
    "examples": [
        envelope_example("Samples", [SAMPLE, {**SAMPLE, "sample": 1, "agreement": 0.41}]),
        VOICE_NOT_FOUND,
        *COMMON_ERRORS,
    ],
}
DELETE_SAMPLE = {
    "operation_id": "voices_samples_delete",
    "summary": "Remove a sample (an outlier, an adaptation sample)",
    "description": (
        "Removes the sample at this index (later samples move down one) and its audio; the "
        "voiceprint is recomputed. Returns the voice object. A voice keeps at least one "
        "enrollment sample (40900: delete the voice instead)."
    ),
    "tags": VOICES,
    "responses": enveloped(VoiceOutputSerializer),
    "examples": [
        envelope_example("Removed", VOICE),
        envelope_error(ErrorCode.NOT_FOUND, "sample not found", "Sample not found"),
        envelope_error(
            ErrorCode.CONFLICT,
            f"that is the only enrollment sample of voice {VOICE_ID}; delete the voice instead",
            "Last enrollment sample",
        ),
        VOICE_NOT_FOUND,
        *COMMON_ERRORS,
    ],
}

# --- recognition -------------------------------------------------------------------------

DECISION_NOTE = (
    ' `decision` "uncertain": too little or too noisy speech for a confident answer, or two '
    "voices too close to tell apart (ask again); with an engine's calibration a voice's "
    "`threshold` is applied to the normalised score at the same false-accept rate "
    '(README, "Decisions").'
)

VERIFY = audio_operation(
    operation_id="voices_verify",
    summary="1:1: is this audio the voice?",
    description='`score` is the cosine similarity; `decision` is "match", "no_match" or '
    '"uncertain"; `verified` is `decision == "match"`; `probability` is the calibrated '
    "probability that the probe is the voice (null for an engine without calibration)."
    + DECISION_NOTE
    + QUALITY_NOTE,
    path=f"voices/{VOICE_ID}/verify",
    json=AudioInputSerializer,
    form=AudioFormInputSerializer,
    headers=[X_AUDIO_URL],
    example_params={},
    responses=enveloped(VoiceVerifyOutputSerializer),
    examples=[
        envelope_example(
            "Verified",
            {
                "voice_id": VOICE_ID,
                "score": 0.861234,
                "threshold": 0.7,
                "verified": True,
                "decision": "match",
                "probability": 0.9987,
                "model": "eres2net",
                "processing_time_ms": 152,
                "quality": QUALITY,
            },
        ),
        VOICE_NOT_FOUND,
        MODEL_MISMATCH,
    ],
    tags=RECOGNITION,
)

IDENTIFY = audio_operation(
    operation_id="voices_identify",
    summary="1:N: who of the device's voices is speaking?",
    description=(
        "Searches the voices bound to `device_id`. `score` is the best voice's cosine "
        "similarity and `probability` its calibrated probability (null for an engine without "
        'calibration); `matched` is `decision == "match"`; ids are null when not matched. '
        '`interrupt` ("true"/"false") is given with `agent_id`: the matched role\'s setting '
        "for that agent, the agent's `uncertain_interrupt` for an uncertain speaker, "
        '"false" for an unknown speaker; null without `agent_id`.'
        + DECISION_NOTE + QUALITY_NOTE
    ),
    path="voices/identify",
    json=VoiceIdentifyInputSerializer,
    form=VoiceIdentifyFormInputSerializer,
    headers=[X_DEVICE_ID, X_AGENT_ID, X_TOP_K, X_AUDIO_URL],
    example_params={"device_id": DEVICE_ID, "agent_id": "agent-1", "top_k": 3},
    responses=enveloped(VoiceIdentifyOutputSerializer),
    examples=[
        envelope_example(
            "Matched",
            {
                "matched": True,
                "voice_id": VOICE_ID,
                "voice_name": "mother",
                "role_id": ROLE["role_id"],
                "role_name": "mother",
                "score": 0.834512,
                "threshold": 0.7,
                "decision": "match",
                "probability": 0.9962,
                "interrupt": "true",
                "candidates": [
                    {"voice_id": VOICE_ID, "voice_name": "mother", "score": 0.834512,
                     "probability": 0.9962},
                    {"voice_id": "3b8d0f2e4a6c1e9b7d5f3a10", "voice_name": "father",
                     "score": 0.312877, "probability": 0.0004},
                ],
                "model": "eres2net",
                "processing_time_ms": 184,
                "quality": QUALITY,
            },
        ),
        envelope_example(
            "Unknown speaker",
            {
                "matched": False,
                "voice_id": None,
                "voice_name": None,
                "role_id": None,
                "role_name": None,
                "score": 0.412003,
                "threshold": 0.7,
                "decision": "no_match",
                "probability": 0.0213,
                "interrupt": "false",
                "candidates": [
                    {"voice_id": VOICE_ID, "voice_name": "mother", "score": 0.412003,
                     "probability": 0.0213},
                ],
                "model": "eres2net",
                "processing_time_ms": 176,
                "quality": QUALITY,
            },
        ),
        envelope_example(
            "Uncertain: too little, too noisy speech",
            {
                "matched": False,
                "voice_id": None,
                "voice_name": None,
                "role_id": None,
                "role_name": None,
                "score": 0.652118,
                "threshold": 0.7,
                "decision": "uncertain",
                "probability": 0.3141,
                "interrupt": "false",
                "candidates": [
                    {"voice_id": VOICE_ID, "voice_name": "mother", "score": 0.652118,
                     "probability": 0.3141},
                ],
                "model": "eres2net",
                "processing_time_ms": 171,
                "quality": {"speech_seconds": 1.29, "snr_db": 6.2, "clipping": 0.0},
            },
        ),
        DEVICE_NOT_FOUND,
        envelope_error(ErrorCode.INVALID_PARAMETER, "top_k: Ensure this value is less than "
                       "or equal to 50."),
    ],
    tags=RECOGNITION,
)  # fmt: skip

EXTRACT = audio_operation(
    operation_id="features_extract",
    summary="The speaker embedding of the audio",
    description="The L2-normalised embedding (192 dims for the 3D-Speaker engines)." + QUALITY_NOTE,
    path="features/extract",
    json=AudioInputSerializer,
    form=AudioFormInputSerializer,
    headers=[X_AUDIO_URL],
    example_params={},
    responses=enveloped(FeatureExtractOutputSerializer),
    examples=[
        envelope_example(
            "Embedding",
            {
                "embedding": [0.0123, -0.0456, 0.0789, -0.0012],
                "dim": 192,
                "model": "eres2net",
                "quality": QUALITY,
            },
            summary="Embedding (shortened to 4 of 192 values)",
        ),
    ],
    tags=RECOGNITION,
)


# --- fields ------------------------------------------------------------------------------


class RoleRefFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "voiceprint.api.serializers.RoleRefField"

    def map_serializer_field(self, auto_schema, direction):
        return {
            "type": "object",
            "properties": {"role_id": {"type": "string"}},
            "description": '`{"role_id": "..."}` binds the role, `{}` unbinds',
        }


class DeviceRefFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "voiceprint.api.serializers.DeviceRefField"

    def map_serializer_field(self, auto_schema, direction):
        return {
            "oneOf": [
                {"type": "string", "description": "a device_id"},
                {
                    "type": "object",
                    "properties": {"device_id": {"type": "string"}},
                    "required": ["device_id"],
                },
            ]
        }
