"""Where a request's audio comes from: the one place that reads it (API.md, "Audio input").

Three forms, for every endpoint that takes audio:
1. raw body (`audio/wav`, `audio/x-wav`, `audio/*`, `application/octet-stream`), at most
   512 KB, parameters in `X-` headers (non-ASCII values percent-encoded UTF-8);
2. JSON with `audio_url` (fetched server-side, at most 10 MB) or `audio_base64`
   (raw base64 or a `data:audio/...;base64,` URI, at most 10 MB decoded);
3. multipart/form-data with a `file` field, at most 10 MB.
A URL wins over any other form.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from core.exceptions import ApiError, ErrorCode, invalid
from core.input_guard import check_parameters
from utilities.url_fetch import FetchPolicy, UrlNotAllowedError, fetch_url, parse_allowlist
from voiceprint.limits import KB, MAX_AUDIO_BYTES, MAX_RAW_BODY_BYTES

RAW_MEDIA_TYPES = ("audio/", "application/octet-stream")

#: Parameters a raw-body request carries in headers, and their names in JSON / forms.
HEADER_PARAMETERS = {
    "HTTP_X_DEVICE_ID": "device_id",
    "HTTP_X_ROLE_ID": "role_id",
    "HTTP_X_THRESHOLD": "threshold",
    "HTTP_X_VOICE_NAME": "voice_name",
    "HTTP_X_AGENT_ID": "agent_id",
    "HTTP_X_TOP_K": "top_k",
    "HTTP_X_AUDIO_URL": "audio_url",
    "HTTP_X_FORCE": "force",
    "HTTP_X_ANTI_SPOOFING": "anti_spoofing",
    "HTTP_X_CONSENT_SUBJECT": "consent_subject",
    "HTTP_X_CONSENT_TEXT_VERSION": "consent_text_version",
    "HTTP_X_CONSENT_CHANNEL": "consent_channel",
    "HTTP_X_CONSENT_TIME": "consent_time",
}

_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.I)


@dataclass
class AudioRequest:
    """A request's parameters, and its audio, read on first use: a URL is fetched only
    after the caller has checked the parameters (an unknown device costs no download)."""

    params: dict[str, Any]
    source: Callable[[], bytes | None]
    _audio: bytes | None = field(default=None, init=False, repr=False)

    def audio(self) -> bytes | None:
        if self._audio is None:
            self._audio = self.source() or None
        return self._audio


class RawAudioParser(BaseParser):
    """Reads a raw audio body, refusing it (41300) before reading when it is too large."""

    media_type = "audio/*"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        request = parser_context["request"]
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > MAX_RAW_BODY_BYTES:
            raise _too_large("raw audio body", MAX_RAW_BODY_BYTES)
        return _read_raw_body(stream) if stream is not None else b""


def _read_raw_body(stream) -> bytes:
    """At most MAX_RAW_BODY_BYTES bytes; a longer body is refused (41300) after one byte more
    has been read, never the rest of it."""
    data = stream.read(MAX_RAW_BODY_BYTES + 1)
    if len(data) > MAX_RAW_BODY_BYTES:
        raise _too_large("raw audio body", MAX_RAW_BODY_BYTES)
    return data


def _body_without_length(request: Request) -> bytes:
    """A raw body sent without Content-Length (Transfer-Encoding: chunked), which Django
    reads as empty. Where the server has de-chunked it and marks where it ends
    (`wsgi.input_terminated`: gunicorn) it is read here, capped like any raw body; the
    development server passes the chunks undecoded, and there it stays empty."""
    meta = request.META
    if meta.get("CONTENT_LENGTH") or not meta.get("wsgi.input_terminated"):
        return b""
    return _read_raw_body(meta["wsgi.input"])


class OctetStreamAudioParser(RawAudioParser):
    media_type = "application/octet-stream"


AUDIO_PARSERS = [RawAudioParser, OctetStreamAudioParser]


def read_audio_request(request: Request) -> AudioRequest:
    """The audio and parameters of a Voiceprint API request, in any of the three forms."""
    content_type = request.content_type.split(";")[0].strip().lower()
    if content_type.startswith(RAW_MEDIA_TYPES):
        params = header_parameters(request)
        body = request.data if isinstance(request.data, bytes) else _body_without_length(request)
        url = params.pop("audio_url", None)
        return AudioRequest(params, (lambda: _audio_from_url(url)) if url else (lambda: body))
    data = request.data
    if hasattr(data, "dict"):  # a QueryDict (form / multipart): one value per key
        params = {key: value for key, value in data.items() if key != "file"}
    elif isinstance(data, dict):
        params = dict(data)
    else:
        raise invalid("body", "expected a JSON object")
    url, encoded = params.pop("audio_url", None), params.pop("audio_base64", None)
    upload = request.FILES.get("file")
    return AudioRequest(params, lambda: _audio_from_fields(url, encoded, upload))


def request_parameter(request: Request, name: str) -> Any:
    """One parameter of a Voiceprint API audio request (`device_id`, ...), in any of the
    three forms, without reading the audio (for checks that run before the view)."""
    content_type = request.content_type.split(";")[0].strip().lower()
    if content_type.startswith(RAW_MEDIA_TYPES):
        return header_parameters(request).get(name)
    data = request.data
    return data.get(name) if hasattr(data, "get") else None


def header_parameters(request: Request) -> dict[str, str]:
    params = {}
    for header, name in HEADER_PARAMETERS.items():
        if header in request.META:
            params[name] = _decode_header(name, request.META[header])
    return params


def _decode_header(name: str, raw: str) -> str:
    """Header values may be percent-encoded UTF-8 (X-Voice-Name: %E5%A6%88%E5%A6%88)."""
    try:
        # WSGI hands headers over as latin-1; undo that for clients that sent raw UTF-8.
        raw = raw.encode("latin-1").decode("utf-8")
        value = unquote(raw, errors="strict").strip()
    except (UnicodeError, ValueError):
        raise invalid(name, "header is not valid (percent-encoded) UTF-8") from None
    check_parameters([(name, value)])  # "%00" decodes to a NUL
    return value


def _audio_from_fields(url: Any, encoded: Any, upload) -> bytes | None:
    if url:
        return _audio_from_url(url)
    if encoded:
        return decode_base64_audio(encoded, "audio_base64")
    if upload is not None:
        if upload.size > MAX_AUDIO_BYTES:
            raise _too_large("file", MAX_AUDIO_BYTES)
        return upload.read() or None
    return None


def audio_from_reference(value: Any, field_name: str) -> bytes:
    """An audio field of the Voice API: an http(s) URL, raw base64 or a data URI."""
    if not isinstance(value, str) or not value.strip():
        raise no_audio(field_name)
    value = value.strip()
    if re.match(r"^[a-z][a-z0-9+.-]*://", value, re.I):
        try:
            return _audio_from_url(value)
        except UrlNotAllowedError as exc:
            raise invalid(field_name, exc.message) from exc
    return decode_base64_audio(value, field_name)


def decode_base64_audio(value: Any, field_name: str) -> bytes:
    if not isinstance(value, str):
        raise invalid(field_name, "must be a base64 string")
    match = _DATA_URI.match(value)
    payload = value[match.end() :] if match else value
    payload = re.sub(r"\s+", "", payload)
    if len(payload) * 3 // 4 > MAX_AUDIO_BYTES:
        raise _too_large(field_name, MAX_AUDIO_BYTES)
    try:
        audio = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid(field_name, "is not valid base64") from None
    if not audio:
        raise no_audio(field_name)
    return audio


def _audio_from_url(url: Any) -> bytes:
    if not isinstance(url, str):
        raise invalid("audio_url", "must be a string")
    return fetch_url(url.strip(), fetch_policy()).content


def fetch_policy() -> FetchPolicy:
    return FetchPolicy(
        max_bytes=MAX_AUDIO_BYTES, allowlist=parse_allowlist(settings.VOICEPRINT_URL_ALLOWLIST)
    )


def require_audio(audio_request: AudioRequest) -> bytes:
    audio = audio_request.audio()
    if not audio:
        raise ApiError(
            ErrorCode.NO_AUDIO,
            "no audio given: send a WAV body, audio_url, audio_base64 or a multipart file",
        )
    return audio


def no_audio(field_name: str) -> ApiError:
    """40001 for an audio field that is missing, null or empty."""
    return ApiError(ErrorCode.NO_AUDIO, f"{field_name}: no audio given")


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(ErrorCode.AUDIO_TOO_LARGE, f"{what} is larger than {limit // KB} KB")
