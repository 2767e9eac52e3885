"""Fixtures and helpers of the Voiceprint API voice tests.

Audio: the real speech in ../shared/audio/zh, read once per session (`speech`), plus a few
synthetic recordings made here (silence, a too-short clip). The default threshold was chosen
on the zh enroll/ and test/ files: decisions at it are tested on `speech.held_out(...)`.
Voices are enrolled through the API itself; helpers below keep each test short.
"""

from __future__ import annotations

import io
import math
from functools import cache
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import soundfile

from engine.scoring import Scorer
from tests.conftest import HELD_OUT_AUDIO, SHARED_AUDIO
from tests.factories import clip, silence  # noqa: F401 (re-exported)
from tests.factories import wav as wav_bytes  # noqa: F401 (re-exported)
from tests.helpers import VP, envelope, nothing_stored, voice_object  # noqa: F401 (re-exported)
from tests.local_servers import AudioServer, closed_port, running_server  # noqa: F401 (re-exported)
from voiceprint.decision import VoiceScore, cosine_floor

ZH = SHARED_AUDIO / "zh"
SPEAKERS = ("fangjun", "leijun", "liudehua")
ENGINE = "ge2e"
DIM = 256
PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


# --------------------------------------------------------------------------- storage


# --------------------------------------------------------------------------- audio


@cache
def _read(path: Path) -> bytes:
    return path.read_bytes()


class Speech:
    """Bytes of the shared recordings, e.g. `speech.enroll("fangjun", 1)`."""

    def enroll(self, speaker: str, n: int = 1) -> bytes:
        return _read(ZH / "enroll" / f"{speaker}-sr-{n}.wav")

    def test(self, speaker: str, n: int = 1) -> bytes:
        return _read(ZH / "test" / f"{speaker}-test-sr-{n}.wav")

    def held_out(self, name: str) -> bytes:
        """A 3D-Speaker trial file, e.g. "speaker1_a_en": speakers the default threshold
        was not chosen on (tests/conftest.py HELD_OUT_AUDIO)."""
        return _read(HELD_OUT_AUDIO / f"{name}_16k.wav")

    def enroll_files(self, speaker: str) -> list[bytes]:
        return [_read(p) for p in sorted((ZH / "enroll").glob(f"{speaker}-sr-*.wav"))]

    def test_files(self, speaker: str) -> list[tuple[str, bytes]]:
        paths = sorted((ZH / "test").glob(f"{speaker}-test-sr-*.wav"))
        return [(p.name, _read(p)) for p in paths]


@pytest.fixture
def speech(shared_audio) -> Speech:
    return Speech()


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    return samples, rate


# --------------------------------------------------------------------------- decisions


def threshold_above(score: VoiceScore, scorer: Scorer | None, *, snr_db: float) -> float:
    """The least cosine threshold `score` falls short of, by the rule in force: the next
    float above its cosine, or (with a scorer) the lesser of the threshold whose z threshold
    is just above its z (the map is linear and increasing) and the threshold whose cosine
    floor (for a probe of `snr_db`) is just above its cosine."""
    if scorer is None:
        return math.nextafter(score.cosine, 2.0)
    mapping = scorer.calibration.threshold_map
    by_z = mapping.cosine_mean + (score.z - mapping.z_mean) / mapping.z_std * mapping.cosine_std
    while scorer.z_threshold(by_z) <= score.z:
        by_z = math.nextafter(by_z, math.inf)
    by_cosine = score.cosine + (score.cosine - cosine_floor(score.cosine, snr_db=snr_db))
    while cosine_floor(by_cosine, snr_db=snr_db) <= score.cosine:
        by_cosine = math.nextafter(by_cosine, math.inf)
    return min(by_z, by_cosine)


# --------------------------------------------------------------------------- API helpers


def create_device(api, device_id: str, name: str = "") -> dict:
    body = {"device_id": device_id, **({"device_name": name} if name else {})}
    return envelope(api.post(VP + "devices", body, format="json"))


def create_role(api, name: str) -> str:
    return envelope(api.post(VP + "roles", {"role_name": name}, format="json"))["role_id"]


def default_role(api) -> dict:
    (role,) = [r for r in envelope(api.get(VP + "roles")) if r["role_name"] == "default"]
    return role


def device_stats(api, device_id: str) -> dict:
    return envelope(api.get(VP + f"devices/{device_id}"))["stats"]


def raw_headers(content_type: str = "audio/wav", **params) -> dict:
    """Django test-client keyword arguments for a raw-body request: X- headers from params
    (non-ASCII values percent-encoded UTF-8)."""
    headers = {"content_type": content_type}
    for name, value in params.items():
        if value is not None:  # voice_name -> X-Voice-Name (META key HTTP_X_VOICE_NAME)
            headers["HTTP_X_" + name.upper()] = quote(str(value), safe=PRINTABLE_ASCII)
    return headers


def post_raw(api, path: str, audio: bytes, content_type: str = "audio/wav", **params):
    return api.post(VP + path, data=audio, **raw_headers(content_type, **params))


def enroll(api, audio: bytes, device_id: str, **params) -> dict:
    """Enroll by raw body; returns the voice object."""
    return voice_object(
        envelope(post_raw(api, "voices/create", audio, device_id=device_id, **params))
    )


def enroll_speaker(api, speech: Speech, speaker: str, device_id: str, **params) -> dict:
    """Enroll every enroll/ file of `speaker`: the first creates, the rest are samples."""
    first, *more = speech.enroll_files(speaker)
    voice = enroll(api, first, device_id, voice_name=speaker, **params)
    for audio in more:
        voice = add_sample(api, voice["voice_id"], audio)
    return voice


def add_sample(api, voice_id: str, audio: bytes, **params) -> dict:
    """Add an enrollment sample by raw body; returns the voice object."""
    reply = envelope(post_raw(api, f"voices/{voice_id}/samples", audio, **params))
    return voice_object(reply)


def get_voice(api, voice_id: str) -> dict:
    return envelope(api.get(VP + f"voices/{voice_id}"))


def verify(api, voice_id: str, audio: bytes) -> dict:
    return envelope(post_raw(api, f"voices/{voice_id}/verify", audio))


def identify(api, audio: bytes, device_id: str, **params) -> dict:
    return envelope(post_raw(api, "voices/identify", audio, device_id=device_id, **params))


def update(api, voice_id: str, body: dict, path: str = "voices", code: int = 0):
    return envelope(api.put(VP + f"{path}/{voice_id}", body, format="json"), code)
