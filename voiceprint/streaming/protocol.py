"""The wire rules of WS /v1/voiceprint/stream (docs/STREAMING.md): parameters, frames, the
close codes, and the shape of the events. No I/O here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.exceptions import ApiError, ErrorCode, invalid
from voiceprint.api.serializers import MAX_TOP_K

PATH = "/v1/voiceprint/stream"
#: Frame length allowed, in seconds of audio.
MIN_FRAME_SECONDS = 0.02
MAX_FRAME_SECONDS = 0.2
#: Sample rates a stream may declare (resampled to 16 kHz).
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 48_000
DEFAULT_SAMPLE_RATE = 16_000
DEFAULT_TOP_K = 3
MAX_ID_LENGTH = 128
#: A text message is a small JSON object; more is not a control message.
MAX_TEXT_BYTES = 4096

NORMAL_CLOSE = 1000
GOING_AWAY = 1001
IDLE_CLOSE = 4408
#: Close codes of the errors a stream can end with (the REST API's business codes).
_CLOSE_CODES = {
    ErrorCode.INTERNAL: 1011,
    ErrorCode.NOT_IMPLEMENTED: 1011,
    ErrorCode.FETCH_FAILED: 1011,
    ErrorCode.UNAVAILABLE: 1013,  # "try again later"
}
#: The protocol allows 123 bytes of close reason.
MAX_REASON_BYTES = 123


def close_code(error: ApiError) -> int:
    """4000 + the HTTP status of a client's error (4400, 4401, 4403, ...), or the
    protocol's own code for the server's (1011, 1013)."""
    return _CLOSE_CODES.get(error.code, 4000 + error.code.http_status)


def close_reason(message: str) -> str:
    """`message` cut to what a close frame carries, on a character boundary."""
    encoded = message.encode()[:MAX_REASON_BYTES]
    return encoded.decode(errors="ignore")


@dataclass(frozen=True)
class StreamParams:
    device_id: str
    agent_id: str | None
    sample_rate: int
    top_k: int
    #: Check the utterances for recorded or synthetic speech; None: the device's default.
    anti_spoofing: bool | None = None

    @property
    def frame_bytes(self) -> tuple[int, int]:
        """The least and most bytes of one audio message."""
        return (
            2 * round(self.sample_rate * MIN_FRAME_SECONDS),
            2 * round(self.sample_rate * MAX_FRAME_SECONDS),
        )


def start_message(text: str) -> dict[str, Any]:
    """A client's text message as a JSON object with a `type`; 40000 otherwise."""
    if len(text.encode()) > MAX_TEXT_BYTES:
        raise invalid(
            "message", f"a text message is a JSON object of at most {MAX_TEXT_BYTES} bytes"
        )
    try:
        message = json.loads(text)
    except ValueError:
        raise invalid("message", "a text message must be a JSON object") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise invalid("message", 'a text message must be a JSON object with a "type"')
    return message


def stream_params(query: Mapping[str, str], start: Mapping[str, Any] | None) -> StreamParams:
    """The stream's parameters: the query's, completed or replaced by the start message's."""
    merged = {**query, **{k: v for k, v in (start or {}).items() if v is not None}}
    device_id = merged.get("device_id")
    if not isinstance(device_id, str) or not device_id.strip():
        raise invalid("device_id", "is required (query or start message)")
    agent_id = merged.get("agent_id") or None
    if agent_id is not None and not isinstance(agent_id, str):
        raise invalid("agent_id", "must be a string")
    for name, value in (("device_id", device_id), ("agent_id", agent_id)):
        if value is not None and len(value) > MAX_ID_LENGTH:
            raise invalid(name, f"must be at most {MAX_ID_LENGTH} characters")
    return StreamParams(
        device_id=device_id.strip(),
        agent_id=agent_id,
        sample_rate=_bounded_int(merged, "sample_rate", DEFAULT_SAMPLE_RATE,
                                 MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
        top_k=_bounded_int(merged, "top_k", DEFAULT_TOP_K, 1, MAX_TOP_K),
        anti_spoofing=_optional_bool(merged, "anti_spoofing"),
    )  # fmt: skip


def _bounded_int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise invalid(name, f"must be an integer from {low} to {high}") from None
    if isinstance(raw, float | bool) or not low <= value <= high:
        raise invalid(name, f"must be an integer from {low} to {high}")
    return value


def _optional_bool(params: Mapping[str, Any], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise invalid(name, "must be true or false")


def frame_check(pcm: bytes, params: StreamParams) -> None:
    """An audio message is 20-200 ms of 16-bit mono PCM at the stream's rate."""
    least, most = params.frame_bytes
    if len(pcm) % 2:
        raise invalid("audio", f"a frame of {len(pcm)} bytes is not 16-bit PCM (odd length)")
    if not least <= len(pcm) <= most:
        raise invalid(
            "audio",
            f"a frame of {len(pcm)} bytes is not 20-200 ms of 16-bit mono PCM at "
            f"{params.sample_rate} Hz ({least}-{most} bytes)",
        )


def error_event(error: ApiError) -> dict[str, Any]:
    return {"type": "error", "code": int(error.code), "msg": error.message}
