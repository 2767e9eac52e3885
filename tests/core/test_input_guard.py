"""Hostile inputs: each answers its documented code naming what is wrong, changes nothing
stored, logs no error or trace, and costs bounded work (decoded frames are counted, not timed).

The table is issue 9's (parts 3 and 4): JSON nested 1000 deep, NUL characters in a path, a
query, a header, a body or a Voice API label key, more than 1000 form fields, and audio whose
header claims half an hour.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile
from django.apps import apps

import engine
from engine.audio import SAMPLE_RATE, frame_budget
from tests.conftest import stored_files
from tests.engine.conftest import long_flac
from tests.helpers import VP, envelope
from tests.voice_api.conftest import error as voice_error
from tests.voiceprint.conftest import create_device, create_role, enroll, raw_headers

V = "/v1/voice/"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
DEVICE = "dev-1"
AGENT = "agent-1"
DEEP_JSON = "[" * 1000 + "]" * 1000
#: One more than Django's DATA_UPLOAD_MAX_NUMBER_FIELDS (1000).
MANY_FIELDS = {f"f{i}": "1" for i in range(1001)}
OUR_APPS = ("tenancy", "roles", "devices", "interrupts", "voiceprint")


@dataclass
class Stored:
    """What the `stored` fixture put in place: ids the hostile requests aim at."""

    voice_id: str
    role_id: str
    audio: bytes


@dataclass(frozen=True)
class Hostile:
    name: str
    send: Callable[..., object]  # (api, stored) -> response
    #: Words the message must hold: the field, or what is wrong.
    names: str
    voice_api: bool = False


def _b64(audio: bytes) -> str:
    return base64.b64encode(audio).decode("ascii")


def _register(labels: dict) -> Callable:
    def send(api, stored: Stored):
        body = {"audio": _b64(stored.audio), "name": "mother", "labels": labels}
        return api.post(V + "register", body, format="json")

    return send


HOSTILE = [
    # JSON nested 1000 deep, on both surfaces.
    Hostile(
        "deep-json-roles",
        lambda api, s: api.post(VP + "roles", DEEP_JSON, content_type=JSON),
        "nested",
    ),
    Hostile(
        "deep-json-voice-update",
        lambda api, s: api.put(VP + f"voices/{s.voice_id}", DEEP_JSON, content_type=JSON),
        "nested",
    ),
    Hostile(
        "deep-json-voice-api",
        lambda api, s: api.post(V + "register", DEEP_JSON, content_type=JSON),
        "nested",
        voice_api=True,
    ),
    # NUL in a path parameter.
    Hostile("nul-voice-id", lambda api, s: api.get(VP + "voices/a%00b"), "voice_id"),
    Hostile("nul-voice-delete", lambda api, s: api.delete(VP + "voices/a%00b"), "voice_id"),
    Hostile("nul-agent-id", lambda api, s: api.get(VP + "roleinterrupt/a%00b"), "agent_id"),
    Hostile(
        "nul-agent-id-update",
        lambda api, s: api.put(
            VP + "roleinterrupt/a%00b",
            {"roleinterrupt": [{"role_id": s.role_id, "interrupt": "false"}]},
            format="json",
        ),
        "agent_id",
    ),
    Hostile("nul-role-delete", lambda api, s: api.delete(VP + "roles/a%00b"), "role_id"),
    Hostile("nul-device-id", lambda api, s: api.get(VP + "devices/a%00b"), "device_id"),
    # NUL in a query parameter's value or name.
    Hostile("nul-query", lambda api, s: api.get(VP + "voices?device_id=a%00b"), "device_id"),
    Hostile("nul-query-name", lambda api, s: api.get(VP + "voices?a%00b=1"), "parameter names"),
    # NUL in the X- header of a raw-body request (percent-encoded, as the API reads them).
    Hostile(
        "nul-header",
        lambda api, s: api.post(VP + "voices/identify", s.audio, **raw_headers(device_id="a\x00b")),
        "device_id",
    ),
    # NUL in a body: a JSON value, deep in a JSON value, a JSON field name, a form value.
    Hostile(
        "nul-json-value",
        lambda api, s: api.post(VP + "devices", {"device_id": "a\x00b"}, format="json"),
        "device_id",
    ),
    Hostile(
        "nul-json-nested",
        lambda api, s: api.put(
            VP + f"voices/{s.voice_id}", {"dev_bind": [{"device_id": "a\x00b"}]}, format="json"
        ),
        "dev_bind",
    ),
    Hostile(
        "nul-json-field-name",
        lambda api, s: api.post(VP + "roles", {"role\x00name": "x"}, format="json"),
        "field names",
    ),
    Hostile(
        "nul-form-value",
        lambda api, s: api.post(VP + "roles", "role_name=a%00b", content_type=FORM),
        "role_name",
    ),
    # A Voice API label key: NUL, or another control character.
    Hostile("nul-label-key", _register({"a\x00b": "v"}), "labels", voice_api=True),
    Hostile("control-label-key", _register({"a\nb": "v"}), "labels", voice_api=True),
    # More than 1000 fields: a form, a multipart upload, a query string.
    Hostile(
        "many-form-fields",
        lambda api, s: api.post(VP + "roles", MANY_FIELDS, format="multipart"),
        "1000",
    ),
    Hostile(
        "many-urlencoded-fields",
        lambda api, s: api.post(
            VP + "roles", "&".join(f"{k}=1" for k in MANY_FIELDS), content_type=FORM
        ),
        "1000",
    ),
    Hostile(
        "many-multipart-fields-with-audio",
        lambda api, s: api.post(
            VP + "voices/create",
            {**MANY_FIELDS, "device_id": DEVICE, "file": _upload(s.audio)},
            format="multipart",
        ),
        "1000",
    ),
    Hostile(
        "many-query-params",
        lambda api, s: api.get(VP + "voices?" + "&".join(f"{k}=1" for k in MANY_FIELDS)),
        "1000",
    ),
]


def _upload(audio: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("probe.wav", audio, content_type="audio/wav")


def snapshot(media_root) -> tuple:
    """Every row of the project's tables, and every stored audio file."""
    rows = {}
    for label in OUR_APPS:
        for model in apps.get_app_config(label).get_models():
            rows[model._meta.label] = [
                tuple(v.tolist() if isinstance(v, np.ndarray) else v for v in row)
                for row in model.objects.order_by("pk").values_list()
            ]
    return rows, stored_files(media_root)


def assert_no_error_logged(caplog) -> None:
    bad = [
        (r.name, r.getMessage())
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info or "Traceback" in r.getMessage()
    ]
    assert not bad, bad


@pytest.fixture
def stored(api, shared_audio) -> Stored:
    """A device, a role with an interrupt setting, and an enrolled voice bound to both."""
    audio = (shared_audio / "zh" / "enroll" / "fangjun-sr-1.wav").read_bytes()
    create_device(api, DEVICE)
    role_id = create_role(api, "mother")
    body = {"roleinterrupt": [{"role_id": role_id, "interrupt": "false"}]}
    envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"))
    voice = enroll(api, audio, DEVICE, role_id=role_id, voice_name="mother")
    return Stored(voice_id=voice["voice_id"], role_id=role_id, audio=audio)


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_input_answers_40000_and_changes_nothing(api, stored, media_root, caplog, hostile):
    before = snapshot(media_root)
    caplog.clear()

    response = hostile.send(api, stored)

    if hostile.voice_api:
        message = voice_error(response, 400, 40000)
    else:
        envelope(response, 40000)
        message = response.json()["msg"]
    assert hostile.names in message, message
    assert snapshot(media_root) == before
    assert_no_error_logged(caplog)


# --- audio whose header claims a long recording ------------------------------------------------


def assert_decoding_bounded(decoded_frames: dict[soundfile.SoundFile, int]) -> None:
    """Every file decoded meanwhile (the upload, then the kept WAV) stayed in its budget."""
    settings = engine.current_settings()
    assert decoded_frames, "nothing was decoded"
    for sound, frames in decoded_frames.items():
        assert frames <= frame_budget(sound.samplerate, sound.channels, settings)
        assert frames * sound.channels <= settings.max_source_samples


def test_half_an_hour_of_silence_in_86_kb_costs_two_minutes(
    api, stored, media_root, decoded_frames, caplog
):
    data = long_flac(29 * 60, SAMPLE_RATE, 1)
    assert len(data) < 100 * 1024  # well under the 512 KB raw-body limit
    before = snapshot(media_root)

    response = api.post(VP + "voices/create", data, **raw_headers("audio/flac", device_id=DEVICE))

    envelope(response, 40003)  # no speech in what was decoded
    assert snapshot(media_root) == before
    assert_decoding_bounded(decoded_frames)
    assert_no_error_logged(caplog)


def test_eight_channels_at_192_khz_are_cut_after_seconds(
    api, stored, media_root, decoded_frames, caplog
):
    data = long_flac(30, 192_000, 8)
    before = snapshot(media_root)

    body = {"audio_base64": _b64(data), "device_id": DEVICE}
    envelope(api.post(VP + "voices/identify", body, format="json"), 40003)

    assert snapshot(media_root) == before
    assert_decoding_bounded(decoded_frames)
    (frames,) = [n for sound, n in decoded_frames.items() if sound.channels == 8]
    assert frames < 10 * 192_000  # cut long before the file's 30 s
    assert_no_error_logged(caplog)


def test_a_long_recording_is_truncated_not_refused(api, stored, shared_audio, decoded_frames):
    """Speech, then silence to 29 minutes: enrolled from its start; the kept audio is only
    what was decoded."""
    speech, rate = soundfile.read(shared_audio / "zh" / "enroll" / "leijun-sr-1.wav")
    data = long_flac(29 * 60, rate, 1, start=speech.astype(np.float32))
    decoded_frames.clear()  # reading the speech above is not the request's work

    voice = enroll(api, data, DEVICE, voice_name="leijun")

    assert voice["status"] == "activate"
    assert_decoding_bounded(decoded_frames)
    audio = api.get(VP + f"voices/{voice['voice_id']}/audio")
    kept = soundfile.info(io.BytesIO(b"".join(audio.streaming_content)))
    assert kept.duration == engine.current_settings().max_decoded_seconds
