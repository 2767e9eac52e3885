"""OpenAPI declarations of the Voice API (/v1/voice/): each constant is the keyword
arguments of one `extend_schema` in views.py."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from core.exceptions import ErrorCode
from core.schema import BUSINESS_CODES, EMPTY_WAV_BASE64, request_example, voice_error
from voiceprint.api.schema import QUALITY, QUALITY_NOTE
from voiceprint.voice_api import serializers as s

TAGS = ["voice"]
#: What any operation can answer: a bad parameter, body or method (400), a bad token (401),
#: a token whose scope does not allow it (403: read and device tokens, core.scopes), a body
#: over the upload limit (413), the rate limit (429), an internal error (500).
COMMON_STATUSES = (400, 401, 403, 413, 429, 500)
#: What an operation that reads audio adds: undecodable audio (415), too little speech
#: (422), a URL that cannot be fetched (502), the engine unavailable (503).
AUDIO_STATUSES = (415, 422, 502, 503)


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """`{"error": {code, message}}` for each status, described by its business codes."""
    return {
        status: OpenApiResponse(
            s.VoiceErrorOutputSerializer,
            description="; ".join(
                f"{int(code)}: {meaning}"
                for code, meaning in BUSINESS_CODES.items()
                if code and code.http_status == status
            ),
        )
        for status in sorted(statuses)
    }


AUDIO_URL = "https://example.com/audio/mother.wav"
AUDIO_DATA_URI = f"data:audio/wav;base64,{EMPTY_WAV_BASE64}"
VOICE_ID = "9c2e7a1b4d6f8e0a3c5b7d91"

AUDIO_NOTE = (
    "\n\nAudio fields take an http(s) URL (fetched by the server, at most 10 MB), raw "
    "base64 or a `data:audio/...;base64,` URI (at most 10 MB decoded). Errors are "
    '`{"error": {"code", "message"}}` with the HTTP status of the business code.'
)

COMMON_ERRORS = [
    voice_error(ErrorCode.UNAUTHORIZED, "invalid or revoked token", "Bad token"),
    voice_error(ErrorCode.FORBIDDEN, "this token may only read (its scope is 'read')",
                "Out of scope"),
    voice_error(ErrorCode.INVALID_PARAMETER, "model: unknown model 'x'; available: eres2net, "
                "ge2e", "Unknown model"),
    voice_error(ErrorCode.RATE_LIMITED, "Request was throttled. Expected available in 12 "
                "seconds.", "Throttled"),
    voice_error(ErrorCode.INTERNAL, "internal error"),
]  # fmt: skip
AUDIO_ERRORS = [
    voice_error(ErrorCode.NO_AUDIO, "audio: no audio given"),
    voice_error(ErrorCode.UNDECODABLE_AUDIO, "cannot decode audio: Format not recognised."),
    voice_error(
        ErrorCode.TOO_LITTLE_SPEECH,
        "audio has 0.42 s of speech after silence removal; at least 1.00 s is required",
    ),
    voice_error(ErrorCode.AUDIO_TOO_LARGE, "audio is larger than 10240 KB"),
    voice_error(ErrorCode.FETCH_FAILED, "The URL host could not be resolved."),
    voice_error(ErrorCode.UNAVAILABLE, "the embedding worker did not answer within 30 s"),
]


def _operation(
    operation_id: str,
    summary: str,
    description: str,
    request,
    reply,
    examples: list[OpenApiExample],
    *,
    takes_audio: bool = True,
    status: int = 200,
    more_statuses: tuple[int, ...] = (),
) -> dict:
    statuses = (*COMMON_STATUSES, *(AUDIO_STATUSES if takes_audio else ()), *more_statuses)
    return {
        "operation_id": operation_id,
        "summary": summary,
        "description": description + (AUDIO_NOTE if takes_audio else ""),
        "tags": TAGS,
        "request": request,
        "responses": {status: reply, **error_responses(*statuses)},
        "examples": [*examples, *(AUDIO_ERRORS if takes_audio else []), *COMMON_ERRORS],
    }


VERIFY = _operation(
    "voice_verify",
    "1:1: are the two recordings the same speaker?",
    "`threshold` is a cosine distance (default per engine); `confidence` is 0.5 at it.",
    s.PairVerifyInputSerializer,
    s.PairVerifyOutputSerializer,
    [
        request_example("URLs", {"audio1": AUDIO_URL, "audio2": "https://example.com/b.wav"}),
        request_example(
            "Base64", {"model": "eres2net", "audio1": AUDIO_DATA_URI, "audio2": AUDIO_DATA_URI,
                       "threshold": 0.4},
        ),
        OpenApiExample(
            "Same speaker",
            value={"verified": True, "distance": 0.181245, "threshold": 0.4,
                   "confidence": 0.773444, "model": "eres2net", "processing_time_ms": 301,
                   "decision": "match", "quality": QUALITY},
            response_only=True,
        ),
    ],
)  # fmt: skip

REGISTER = _operation(
    "voice_register",
    "Register a voice in a store",
    "The voice joins the tenant's store (default `default`), the same store the Voiceprint "
    "API uses, bound to no device. The reply carries the voice's `enrollment` progress and "
    "issues and its `similar_voices` in the store; with VOICEPRINT_LOOKALIKE_POLICY=refuse a "
    "voice that an existing one would already match answers 409 unless `force`. A recording "
    "too short, noisy or clipped to help answers 422. `consent` records the person's consent "
    "(subject, text_version, channel, time); a tenant that requires it answers 400 without.",
    s.VoiceRegisterInputSerializer,
    s.VoiceRegisterOutputSerializer,
    [
        request_example(
            "Register",
            {"audio": AUDIO_URL, "name": "mother", "labels": {"household": "42"},
             "store": "default",
             "consent": {"subject": "customer-4711", "text_version": "2025-01",
                         "channel": "app", "time": "2025-01-01T11:58:00Z"}},
        ),
        OpenApiExample(
            "Registered",
            value={
                "id": VOICE_ID, "name": "mother", "registered_at": "2025-01-01T12:00:00Z",
                "enrollment": {"speech_seconds": 3.2, "target_speech_seconds": 6.0,
                               "progress": 0.533, "issues": ["add 3 s more speech"]},
                "similar_voices": [{"voice_id": "3b1f", "voice_name": "father", "score": 0.41,
                                    "lookalike": False}],
            },
            response_only=True,
        ),
        voice_error(ErrorCode.INVALID_PARAMETER, "name: This field is required."),
        voice_error(
            ErrorCode.INVALID_PARAMETER, "consent: required by this tenant", "Consent required"
        ),
    ],
)  # fmt: skip

IDENTIFY = _operation(
    "voice_identify",
    "1:N: the nearest voices of a store",
    "Matches in ascending distance; `match` is `distance <= threshold`." + QUALITY_NOTE,
    s.StoreIdentifyInputSerializer,
    s.StoreIdentifyOutputSerializer,
    [
        request_example("Identify", {"audio": AUDIO_URL, "top_k": 2, "store": "default"}),
        OpenApiExample(
            "Matches",
            value={
                "matches": [
                    {"id": VOICE_ID, "name": "mother", "labels": {"household": "42"},
                     "distance": 0.165488, "confidence": 0.793140, "match": True},
                    {"id": "3b8d0f2e4a6c1e9b7d5f3a10", "name": "father", "labels": {},
                     "distance": 0.687123, "confidence": 0.359116, "match": False},
                ],
                "model": "eres2net",
                "processing_time_ms": 212,
                "quality": QUALITY,
                "decision": "match",
            },
            response_only=True,
        ),
    ],
)  # fmt: skip

FORGET = _operation(
    "voice_forget",
    "Delete a voice",
    "Deletes the voice, its embeddings and its audio. 204 without a body.",
    s.VoiceForgetInputSerializer,
    None,
    [
        request_example("Forget", {"id": VOICE_ID}),
        voice_error(ErrorCode.NOT_FOUND, "voice not found"),
    ],
    takes_audio=False,
    status=204,
    more_statuses=(404,),
)

EMBED = _operation(
    "voice_embed",
    "The speaker embedding of a recording",
    "The L2-normalised embedding of the named engine (default: the server's)." + QUALITY_NOTE,
    s.RecordingEmbedInputSerializer,
    s.RecordingEmbedOutputSerializer,
    [
        request_example("Embed", {"model": "eres2net", "audio": AUDIO_URL}),
        OpenApiExample(
            "Embedding",
            summary="Embedding (shortened to 4 of 192 values)",
            value={"embedding": [0.0123, -0.0456, 0.0789, -0.0012], "dim": 192,
                   "model": "eres2net", "quality": QUALITY},
            response_only=True,
        ),
    ],
)  # fmt: skip

ANALYZE = _operation(
    "voice_analyze",
    "Speaker attributes (age, gender, emotion)",
    "Returns the asked attributes (all when `actions` is empty) that can be computed; 501 "
    "when none can.",
    s.RecordingAnalyzeInputSerializer,
    s.RecordingAnalyzeOutputSerializer,
    [
        request_example("Gender", {"audio": AUDIO_URL, "actions": ["gender"]}),
        OpenApiExample(
            "Gender",
            value={"gender": {"label": "female", "scores": {"female": 0.93, "male": 0.07}},
                   "model": "eres2net", "processing_time_ms": 95},
            response_only=True,
        ),
        voice_error(ErrorCode.NOT_IMPLEMENTED,
                    "none of emotion can be computed with model 'eres2net' on this server"),
    ],
    more_statuses=(501,),
)  # fmt: skip
