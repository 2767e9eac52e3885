"""POST /v1/voice/verify (1:1): decisions on real speech, thresholds, confidence, audio forms."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
import soundfile

import engine
from tests.voice_api.conftest import (
    ENGINE,
    b64,
    closed_port,
    data_uri,
    error,
    ok,
    post,
    silence,
)
from voiceprint.thresholds import default_similarity_threshold

VERIFY_FIELDS = {
    "verified",
    "distance",
    "threshold",
    "confidence",
    "model",
    "processing_time_ms",
    "decision",
    "quality",
}
INVALID, NO_AUDIO, UNDECODABLE, TOO_LITTLE_SPEECH = 40000, 40001, 40002, 40003
TOO_LARGE, FETCH_FAILED, UNAVAILABLE = 41300, 50200, 50300

pytestmark = pytest.mark.django_db


def verify(api, audio1, audio2, **fields) -> dict:
    return ok(post(api, "verify", {"audio1": audio1, "audio2": audio2, **fields}))


def pair(speech, first: str, second: str) -> tuple[str, str]:
    return b64(speech.speaker3d(first)), b64(speech.speaker3d(second))


def big_wav(speech_wav: bytes, size: int, channels: int = 4) -> bytes:
    """The same speech in a file of `size` bytes: 48 kHz, `channels` x 64-bit float samples,
    padded with silence (few seconds of audio, so cheap to decode and embed)."""
    samples, _ = soundfile.read(io.BytesIO(speech_wav), dtype="float64")
    padded = np.zeros(size // (8 * channels), dtype=np.float64)
    upsampled = np.repeat(samples, 3)[: len(padded)]
    padded[: len(upsampled)] = upsampled
    buffer = io.BytesIO()
    soundfile.write(
        buffer, np.tile(padded[:, None], channels), 48000, format="WAV", subtype="DOUBLE"
    )
    return buffer.getvalue()


def default_distance() -> float:
    return 1.0 - default_similarity_threshold(ENGINE)


# --------------------------------------------------------------------------- decisions


# Decisions at the default threshold on the held-out 3D-Speaker files (tests/conftest.py
# HELD_OUT_AUDIO). Measured with ge2e on 4 s clips against the default distance 0.25: the
# same speaker at 0.18 (en) and 0.22 (cn: a margin of 0.03), different speakers at 0.48 and
# more.


@pytest.mark.parametrize("language", ["en", "cn"])
def test_same_speaker_is_verified(api, speech, language):
    result = verify(api, *pair(speech, f"speaker1_a_{language}", f"speaker1_b_{language}"))
    assert set(result) == VERIFY_FIELDS
    assert result["verified"] is True and result["decision"] == "match"
    assert result["quality"]["speech_seconds"] >= 1.0
    assert result["distance"] <= result["threshold"]
    assert result["threshold"] == pytest.approx(default_distance())
    assert result["confidence"] > 0.5
    assert result["model"] == ENGINE
    assert isinstance(result["processing_time_ms"], int) and result["processing_time_ms"] >= 0


@pytest.mark.parametrize("language", ["en", "cn"])
def test_different_speakers_are_not_verified(api, speech, language):
    result = verify(api, *pair(speech, f"speaker1_a_{language}", f"speaker2_a_{language}"))
    assert result["verified"] is False and result["decision"] in ("no_match", "uncertain")
    assert result["distance"] > result["threshold"] == pytest.approx(default_distance())
    assert 0.0 <= result["confidence"] < 0.5


def test_explicit_threshold_decides(api, speech):
    same = pair(speech, "speaker1_a_en", "speaker1_b_en")
    different = pair(speech, "speaker1_a_en", "speaker2_a_en")
    strict = verify(api, *same, threshold=0.05)
    assert strict["threshold"] == 0.05 and strict["verified"] is False
    assert strict["confidence"] < 0.5
    lenient = verify(api, *different, threshold=0.9)
    assert lenient["threshold"] == 0.9 and lenient["verified"] is True
    assert lenient["confidence"] > 0.5


def test_a_distance_exactly_on_the_threshold_is_verified(api, speech):
    """`verified` is `distance <= threshold`, on the distance the reply gives (the service
    compares that same rounded value): on it verified, one float below it not."""
    same = pair(speech, "speaker1_a_en", "speaker1_b_en")
    distance = verify(api, *same)["distance"]
    at_threshold = verify(api, *same, threshold=distance)
    assert at_threshold["distance"] == distance
    assert at_threshold["verified"] is True
    assert at_threshold["confidence"] == pytest.approx(0.5, abs=1e-3)
    below = verify(api, *same, threshold=math.nextafter(distance, 0.0))
    assert below["distance"] == distance and below["verified"] is False


def test_confidence_falls_as_distance_grows(api, speech):
    pairs = [
        ("speaker1_a_en", "speaker1_b_en"),
        ("speaker1_a_cn", "speaker1_b_cn"),
        ("speaker1_a_en", "speaker2_a_en"),
        ("speaker1_a_cn", "speaker2_a_cn"),
    ]
    results = sorted((verify(api, *pair(speech, *p)) for p in pairs), key=lambda r: r["distance"])
    confidences = [r["confidence"] for r in results]
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert confidences == sorted(confidences, reverse=True)
    assert len(set(confidences)) == len(confidences), "a closer pair must be more confident"


def test_default_threshold_follows_the_setting(api, speech, settings):
    settings.VOICEPRINT_DEFAULT_THRESHOLDS = f"{ENGINE}=0.9"
    result = verify(api, *pair(speech, "speaker1_a_en", "speaker1_b_en"))
    assert result["threshold"] == pytest.approx(0.1)
    assert result["verified"] is (result["distance"] <= 0.1)


def test_model_can_be_named(api, speech, campplus_active):
    same = pair(speech, "speaker1_a_en", "speaker1_b_en")
    assert verify(api, *same)["model"] == campplus_active
    named = verify(api, *same, model=ENGINE)
    assert named["model"] == ENGINE and named["verified"] is True
    assert named["threshold"] == pytest.approx(default_distance())  # ge2e's, not CAM++'s


def test_anti_spoofing_adds_the_countermeasures_verdict(api, speech):
    same = pair(speech, "speaker1_a_en", "speaker1_b_en")
    reply = verify(api, *same, anti_spoofing=True)
    assert set(reply) == VERIFY_FIELDS | {"spoof"}  # more in tests/voiceprint/test_api_spoofing
    assert set(verify(api, *same)) == VERIFY_FIELDS


# --------------------------------------------------------------------------- audio forms


@pytest.mark.parametrize(
    "form", ["base64", "wrapped_base64", "data_uri", "data_uri_x_wav", "url", "flac_data_uri"]
)
def test_every_audio_form_gives_the_same_distance(api, speech, audio_server, form):
    first, second = speech.speaker3d("speaker1_a_en"), speech.speaker3d("speaker1_b_en")
    reference = verify(api, b64(first), b64(second))["distance"]
    if form == "flac_data_uri":  # a FLAC of another recording: just has to be read
        flac = speech.librispeech_flac("118-121721-0000")
        result = verify(api, data_uri(flac, "audio/flac"), b64(second))
        assert result["verified"] is False
        return
    audio1 = {
        "base64": lambda: b64(first),
        "wrapped_base64": lambda: base64.encodebytes(first).decode("ascii"),  # 76-char lines
        "data_uri": lambda: data_uri(first),
        "data_uri_x_wav": lambda: data_uri(first, "audio/x-wav"),
        "url": lambda: audio_server.serve("/speaker1_a.wav", first),
    }[form]()
    result = verify(api, audio1, b64(second))
    assert result["distance"] == pytest.approx(reference, abs=1e-5)
    assert result["verified"] is True
    if form == "url":
        assert audio_server.requests == ["/speaker1_a.wav"]


# --------------------------------------------------------------------------- refusals


def test_unknown_model_is_400_listing_the_engines(api, speech):
    response = post(api, "verify", {"audio1": "x", "audio2": "x", "model": "whisper-large"})
    message = error(response, 400, INVALID)
    assert "model" in message
    for name in engine.available_engines():
        assert name in message


def test_engine_without_weights_is_503(api, speech):
    same = pair(speech, "speaker1_a_en", "speaker1_b_en")
    response = post(api, "verify", {"audio1": same[0], "audio2": same[1], "model": "eres2net"})
    error(response, 503, UNAVAILABLE)


@pytest.mark.parametrize("audio1", [..., "", "   ", None], ids=["absent", "empty", "blank", "null"])
def test_no_audio_is_400_no_audio(api, speech, audio1):
    """API.md: 40001 "no audio given" (the Voiceprint API answers it for the same case)."""
    body = {"audio2": b64(speech.speaker3d("speaker1_b_en"))}
    if audio1 is not ...:
        body["audio1"] = audio1
    assert "audio1" in error(post(api, "verify", body), 400, NO_AUDIO)


def test_undecodable_audio_is_415(api, speech):
    body = {"audio1": b64(b"this is not audio at all " * 200), "audio2": b64(silence())}
    error(post(api, "verify", body), 415, UNDECODABLE)


def test_silence_is_422(api, speech):
    body = {"audio1": b64(speech.speaker3d("speaker1_a_en")), "audio2": b64(silence())}
    error(post(api, "verify", body), 422, TOO_LITTLE_SPEECH)


def test_invalid_base64_is_400_naming_the_field(api, speech):
    body = {"audio1": b64(speech.speaker3d("speaker1_a_en")), "audio2": "not*base64!at#all"}
    assert "audio2" in error(post(api, "verify", body), 400, INVALID)


@pytest.mark.parametrize("threshold", [-0.1, 2.5, "close"])
def test_invalid_threshold_is_400(api, speech, threshold):
    same = pair(speech, "speaker1_a_en", "speaker1_b_en")
    response = post(api, "verify", {"audio1": same[0], "audio2": same[1], "threshold": threshold})
    assert "threshold" in error(response, 400, INVALID)


def test_base64_over_10_mb_is_413(api, speech):
    too_big = "A" * ((10 * 1024 * 1024 + 3) * 4 // 3 + 8)
    body = {"audio1": b64(speech.speaker3d("speaker1_a_en")), "audio2": too_big}
    assert "audio2" in error(post(api, "verify", body), 413, TOO_LARGE)


def test_two_audios_within_the_limit_are_accepted(api, speech):
    """Each audio field may carry up to 10 MB (API.md), so one verify body carries two."""
    first, second = (
        big_wav(speech.speaker3d(name), 6 * 1024 * 1024)
        for name in ("speaker1_a_en", "speaker1_b_en")
    )
    assert verify(api, b64(first), data_uri(second))["verified"] is True


def test_url_not_allow_listed_is_400_without_connecting(
    api, speech, audio_server, forbidden_server, connects
):
    url = forbidden_server.serve("/a.wav", speech.speaker3d("speaker1_a_en"))
    body = {"audio1": b64(speech.speaker3d("speaker1_b_en")), "audio2": url}
    error(post(api, "verify", body), 400, INVALID)
    assert forbidden_server.requests == []
    assert not [address for address in connects if address[0] == "127.0.0.2"]


def test_url_refusal_names_the_audio_field(api, speech, forbidden_server):
    url = forbidden_server.serve("/a.wav", speech.speaker3d("speaker1_a_en"))
    body = {"audio1": b64(speech.speaker3d("speaker1_b_en")), "audio2": url}
    message = error(post(api, "verify", body), 400, INVALID)
    assert message.startswith("audio2"), f"msg must name the field (API.md 40000): {message!r}"


@pytest.mark.parametrize("scheme", ["file:///etc/passwd", "ftp://127.0.0.1/a.wav"])
def test_url_with_other_scheme_is_400(api, speech, audio_server, scheme):
    body = {"audio1": scheme, "audio2": b64(speech.speaker3d("speaker1_b_en"))}
    error(post(api, "verify", body), 400, INVALID)


def test_unreachable_url_is_502(api, speech, audio_server):
    url = f"http://127.0.0.1:{closed_port()}/a.wav"
    body = {"audio1": url, "audio2": b64(speech.speaker3d("speaker1_b_en"))}
    error(post(api, "verify", body), 502, FETCH_FAILED)


def test_url_answering_404_is_502(api, speech, audio_server):
    body = {
        "audio1": audio_server.url("/gone.wav"),
        "audio2": b64(speech.speaker3d("speaker1_b_en")),
    }
    error(post(api, "verify", body), 502, FETCH_FAILED)
    assert audio_server.requests == ["/gone.wav"]


def test_decision_is_the_voiceprint_apis_at_the_same_threshold(api, speech):
    """The Voice API's `decision` is the calibrated rule of the Voiceprint API, at the cosine
    its distance threshold states; `verified` keeps the seed's distance rule."""
    same = pair(speech, "speaker1_a_en", "speaker1_b_en")
    never = verify(api, *same, threshold=0.0)  # cosine threshold 1: never passes
    assert never["decision"] != "match"
    anyone = verify(api, *pair(speech, "speaker1_a_en", "speaker2_a_en"), threshold=1.9)
    assert anyone["verified"] is True and anyone["decision"] == "match"
