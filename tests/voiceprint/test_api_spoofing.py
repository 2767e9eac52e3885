"""Anti-spoofing through the APIs (issue 16): identify and verify of both surfaces, the
request/device/tenant defaults, enrollment, and the outcome counts, with the real AASIST
countermeasure on real speech (../shared/audio) and espeak-ng's synthesis.

Which probes the model flags is measured in docs/ACCURACY.md (`make bench-spoof`); here the
rules are checked: a threshold above every score flags every probe, one below none.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from devices.models import Device
from tests import factories as make
from tests.helpers import b64, envelope, post_raw
from voiceprint.models import IdentifyOutcomeCount, Voice

pytestmark = pytest.mark.django_db

SPOOF_FIELDS = {"score", "is_spoof", "threshold", "model"}
#: Thresholds beyond any bona-fide logit: every probe is a spoof, or none is.
FLAG_ALL, FLAG_NONE = 1000.0, -1000.0


@pytest.fixture
def kitchen(tenant, shared_audio) -> Device:
    device = make.device(tenant, "kitchen")
    make.speaker_voice(tenant, "leijun", devices=[device])
    make.speaker_voice(tenant, "fangjun", devices=[device])
    return device


def _identify(api, audio: bytes, **headers: str) -> dict:
    return envelope(post_raw(api, "voices/identify", audio, device_id="kitchen", **headers))


def test_identify_checks_the_probe_when_asked_and_says_so(api, kitchen, settings):
    settings.VOICEPRINT_SPOOF_THRESHOLD = FLAG_NONE
    probe = make.probe_speech("leijun", 1)
    plain = _identify(api, probe)
    assert "spoof" not in plain  # not asked, off by default
    checked = _identify(api, probe, anti_spoofing="true", agent_id="butler")
    assert set(checked["spoof"]) == SPOOF_FIELDS
    assert checked["spoof"]["is_spoof"] is False and checked["spoof"]["threshold"] == FLAG_NONE
    assert checked["spoof"]["model"] in ("aasist", "aasist-l")
    assert checked["decision"] == "match" and checked["voice_name"] == "leijun"


def test_a_spoofed_probe_never_matches_and_never_interrupts(api, kitchen, settings):
    settings.VOICEPRINT_SPOOF_THRESHOLD = FLAG_ALL
    reply = _identify(api, make.probe_speech("leijun", 1), anti_spoofing="true", agent_id="a")
    assert reply["decision"] == "spoof" and reply["matched"] is False
    assert reply["voice_id"] is None and reply["interrupt"] == "false"
    assert reply["spoof"]["is_spoof"] is True
    assert reply["candidates"]  # the scores stay, for the record
    counted = IdentifyOutcomeCount.objects.get(device=kitchen)
    assert (counted.spoof, counted.match) == (1, 0)
    kitchen.refresh_from_db()
    assert (kitchen.identify_count, kitchen.matched_count) == (1, 0)


def test_json_field_and_the_defaults_decide_whether_to_check(api, tenant, kitchen, settings):
    settings.VOICEPRINT_SPOOF_THRESHOLD = FLAG_ALL
    probe = b64(make.probe_speech("fangjun", 1))

    def decision(**fields) -> str:
        body = {"device_id": "kitchen", "audio_base64": probe, **fields}
        return envelope(api.post("/v1/voiceprint/voices/identify", body, format="json"))["decision"]

    assert decision() == "match"  # tenant default off, device unset
    assert decision(anti_spoofing=True) == "spoof"
    tenant.anti_spoofing = True
    tenant.save()
    assert decision() == "spoof"  # the tenant's default
    kitchen.anti_spoofing = False
    kitchen.save()
    assert decision() == "match"  # the device's beats the tenant's
    assert decision(anti_spoofing=True) == "spoof"  # the request's beats both


def test_the_device_default_is_set_through_the_api(api, kitchen):
    reply = envelope(api.put("/v1/voiceprint/devices/kitchen", {"anti_spoofing": True},
                             format="json"))  # fmt: skip
    assert reply["anti_spoofing"] is True and reply["device_name"] == "kitchen"
    kitchen.refresh_from_db()
    assert kitchen.anti_spoofing is True
    bad = api.put("/v1/voiceprint/devices/kitchen", {}, format="json")
    envelope(bad, 40000)


def test_voiceprint_verify_refuses_a_spoofed_probe(api, tenant, kitchen, settings):
    voice = kitchen.voices.get(name="leijun")
    probe = make.probe_speech("leijun", 1)
    settings.VOICEPRINT_SPOOF_THRESHOLD = FLAG_NONE
    live = envelope(post_raw(api, f"voices/{voice.voice_id}/verify", probe, anti_spoofing="true"))
    assert live["verified"] is True and live["spoof"]["is_spoof"] is False
    settings.VOICEPRINT_SPOOF_THRESHOLD = FLAG_ALL
    spoofed = envelope(
        post_raw(api, f"voices/{voice.voice_id}/verify", probe, anti_spoofing="true")
    )
    assert spoofed["verified"] is False and spoofed["decision"] == "spoof"


def test_voice_api_verify_honours_anti_spoofing(api, settings, shared_audio):
    first, second = make.trial_speech("speaker1_a_en"), make.trial_speech("speaker1_b_en")
    body = {"audio1": b64(first), "audio2": b64(second)}
    settings.VOICEPRINT_SPOOF_THRESHOLD = FLAG_NONE
    live = api.post("/v1/voice/verify", {**body, "anti_spoofing": True}, format="json").json()
    assert live["verified"] is True and set(live["spoof"]) == SPOOF_FIELDS
    plain = api.post("/v1/voice/verify", body, format="json").json()
    assert "spoof" not in plain
    settings.VOICEPRINT_SPOOF_THRESHOLD = FLAG_ALL
    spoofed = api.post("/v1/voice/verify", {**body, "anti_spoofing": True}, format="json").json()
    assert spoofed["verified"] is False and spoofed["decision"] == "spoof"
    assert spoofed["distance"] == live["distance"]  # the same comparison, refused


def test_enrollment_refuses_a_spoofed_sample_when_configured(api, tenant, settings, media_root):
    make.device(tenant, "hall")
    settings.VOICEPRINT_ENROLL_ANTI_SPOOFING = True
    settings.VOICEPRINT_SPOOF_THRESHOLD = FLAG_ALL
    audio = make.speech("liudehua", 1)
    refused = post_raw(api, "voices/create", audio, device_id="hall", voice_name="l").json()
    assert refused["code"] == 40003 and "recorded or synthetic" in refused["msg"]
    assert not Voice.objects.filter(tenant=tenant).exists()  # nothing stored
    settings.VOICEPRINT_SPOOF_THRESHOLD = FLAG_NONE
    envelope(post_raw(api, "voices/create", audio, device_id="hall", voice_name="l"))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_synthesis_is_flagged_at_the_default_threshold(api, kitchen, tmp_path):
    path = tmp_path / "robot.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en", "-w", str(path),
         "Please open the front door and turn off the lights in the kitchen now."],
        check=True, timeout=60,
    )  # fmt: skip
    robot = _identify(api, path.read_bytes(), anti_spoofing="true")
    assert robot["spoof"]["is_spoof"] is True and robot["decision"] == "spoof"
    live = _identify(api, make.probe_speech("leijun", 1), anti_spoofing="true")
    assert live["spoof"]["score"] > robot["spoof"]["score"]
