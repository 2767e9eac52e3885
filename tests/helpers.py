"""Assertions shared by the API tests."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

VP = "/v1/voiceprint/"
QUALITY_FIELDS = {"speech_seconds", "snr_db", "clipping"}


def command_output(*args: str) -> str:
    """What a management command prints on stdout, run without its progress bar."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command(*args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def b64(audio: bytes) -> str:
    """Audio as the Voice API's base64 fields take it."""
    return base64.b64encode(audio).decode("ascii")


def post_raw(client, path: str, audio: bytes, **headers: str):
    """POST raw WAV to the Voiceprint API's `path`, parameters as `X-` headers
    (`device_id=...` -> `X-Device-Id`)."""
    extra = {f"HTTP_X_{name.upper()}": value for name, value in headers.items()}
    return client.post(VP + path, data=audio, content_type="audio/wav", **extra)


def envelope(response, code: int = 0) -> Any:
    """Check a Voiceprint API reply is an HTTP 200 envelope with `code`; return its data."""
    assert response.status_code == 200, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"code", "msg", "data"}, body
    assert body["code"] == code, body
    if code == 0:
        assert body["msg"] == ""
    else:
        assert body["data"] is None
        assert body["msg"], "an error must say what is wrong"
        assert "Traceback" not in body["msg"]
    return body["data"]


ENROLLMENT_FIELDS = {"speech_seconds", "target_speech_seconds", "progress", "issues"}


def voice_object(reply: dict) -> dict:
    """The voice object of an enrollment reply (voices/create, voices/{id}/samples): the
    reply less its `similar_voices`, which is checked to be a list of similar voices."""
    reply = dict(reply)
    similar = reply.pop("similar_voices")
    assert isinstance(similar, list), similar
    for entry in similar:
        assert set(entry) == {"voice_id", "voice_name", "score", "lookalike"}, entry
    assert set(reply["enrollment"]) == ENROLLMENT_FIELDS, reply["enrollment"]
    return reply


def check_quality(quality: dict, *, recording_seconds: float) -> dict:
    """A reply's `quality` of a probe of `recording_seconds`: its three fields, each in its
    range (at least the minimum speech of 1 s, at most the recording); returns it."""
    assert set(quality) == QUALITY_FIELDS, quality
    assert 1.0 <= quality["speech_seconds"] <= recording_seconds, quality
    assert -10.0 <= quality["snr_db"] <= 50.0, quality
    assert 0.0 <= quality["clipping"] <= 1.0, quality
    return quality


@contextmanager
def nothing_stored(media_root: Path) -> Iterator[None]:
    """Assert that the block adds or removes no voice, sample, binding or audio file, and
    moves no voice's centroid."""
    from tests.conftest import stored_files
    from voiceprint.models import Voice, VoiceBinding, VoiceSample

    def snapshot():
        return (
            list(Voice.objects.order_by("pk").values_list("pk", "centroid")),
            VoiceSample.objects.count(),
            VoiceBinding.objects.count(),
            stored_files(media_root),
        )

    before = snapshot()
    yield
    after = snapshot()
    assert [pk for pk, _ in after[0]] == [pk for pk, _ in before[0]]
    for (_, old), (_, new) in zip(before[0], after[0], strict=True):
        np.testing.assert_array_equal(new, old)
    assert after[1:] == before[1:]


def api_routes() -> set[tuple[str, str]]:
    """(route, method) of every endpoint of both API surfaces, from the URL conf itself
    (route as `v1/voiceprint/voices/<str:voice_id>`): what an endpoint table must cover."""
    from django.conf import settings
    from django.urls import get_resolver

    routes = set()
    for route, pattern in _api_patterns(get_resolver(settings.ROOT_URLCONF).url_patterns, ""):
        view = pattern.callback.view_class
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method) and method in view.http_method_names:
                routes.add((route, method))
    return routes


def _api_patterns(patterns, prefix: str):
    from django.urls import URLPattern, URLResolver

    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_patterns(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith(("v1/voiceprint/", "v1/voice/")):
            yield route, pattern
