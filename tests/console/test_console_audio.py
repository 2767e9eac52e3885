"""Enrollment, samples and the identify test page with real speech (the active engine)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.conftest import stored_files
from tests.console.test_operator_isolation import admin_url

pytestmark = pytest.mark.django_db


def upload(path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type="audio/wav")


def enroll(client, world, path, name: str):
    from voiceprint.models import Voice

    response = client.post(
        admin_url("voiceprint_voice", "add"),
        {"tenant": world.tenant.pk, "device": world.device.pk, "name": name, "audio": upload(path)},
    )
    assert response.status_code == 302, response.context["form"].errors
    voice = Voice.objects.get(tenant=world.tenant, name=name)
    assert response.url == admin_url("voiceprint_voice", "change", voice.pk)
    return voice


def test_enroll_add_sample_and_identify(superuser_client, acme, speech):
    fangjun = enroll(superuser_client, acme, speech("enroll", "fangjun-sr-1.wav"), "fangjun")
    enroll(superuser_client, acme, speech("enroll", "leijun-sr-1.wav"), "leijun")
    assert list(fangjun.devices.all()) == [acme.device]
    assert fangjun.role.is_default

    response = superuser_client.post(
        admin_url("voiceprint_voice", "add_sample", fangjun.pk),
        {"audio": upload(speech("enroll", "fangjun-sr-2.wav"))},
    )
    assert response.status_code == 302
    assert fangjun.samples.count() == 2

    response = superuser_client.post(
        reverse("admin:identify"),
        {
            "device": acme.device.pk,
            "audio": upload(speech("test", "fangjun-test-sr-1.wav")),
            "top_k": 3,
            "agent_id": "robot",
        },
    )
    assert response.status_code == 200
    result = response.context["result"]
    assert result.matched
    assert result.best.voice == fangjun
    names = [c.voice.name for c in result.candidates]
    assert names[0] == "fangjun" and "leijun" in names
    content = response.content.decode()
    assert 'id="matched-voice"' in content and ">fangjun</a>" in content
    acme.device.refresh_from_db()
    assert (acme.device.identify_count, acme.device.matched_count) == (1, 1)


def test_identify_without_speech_is_reported(superuser_client, acme, speech):
    silence = np.zeros(16000 * 2, dtype=np.int16)
    buffer = io.BytesIO()
    soundfile.write(buffer, silence, 16000, format="WAV", subtype="PCM_16")
    response = superuser_client.post(
        reverse("admin:identify"),
        {
            "device": acme.device.pk,
            "audio": SimpleUploadedFile("silence.wav", buffer.getvalue()),
            "top_k": 3,
        },
    )
    assert response.status_code == 200
    assert "(code 40003)" in response.context["error"]
    assert 'id="identify-error"' in response.content.decode()


def test_undecodable_upload_is_a_form_error(superuser_client, acme, media_root):
    from voiceprint.models import Voice

    before = stored_files(media_root)
    response = superuser_client.post(
        admin_url("voiceprint_voice", "add"),
        {
            "tenant": acme.tenant.pk,
            "name": "noise",
            "audio": SimpleUploadedFile("notes.wav", b"this is not audio"),
        },
    )
    assert response.status_code == 200
    assert "(code 40002)" in str(response.context["form"].non_field_errors())
    assert not Voice.objects.filter(name="noise").exists()
    assert stored_files(media_root) == before


def test_enroll_checks_device_and_role_tenant(superuser_client, acme, globex, speech):
    response = superuser_client.post(
        admin_url("voiceprint_voice", "add"),
        {
            "tenant": acme.tenant.pk,
            "device": globex.device.pk,
            "role": globex.role.pk,
            "audio": upload(speech("enroll", "fangjun-sr-1.wav")),
        },
    )
    assert set(response.context["form"].errors) == {"device", "role"}


def test_identify_shows_the_spoof_score_and_the_chart_counts_refusals(
    superuser_client, acme, speech, settings
):
    enroll(superuser_client, acme, speech("enroll", "fangjun-sr-1.wav"), "fangjun")

    def identify(anti_spoofing: str):
        return superuser_client.post(
            reverse("admin:identify"),
            {
                "device": acme.device.pk,
                "audio": upload(speech("test", "fangjun-test-sr-1.wav")),
                "top_k": 3,
                "anti_spoofing": anti_spoofing,
            },
        )

    settings.VOICEPRINT_SPOOF_THRESHOLD = -1000.0  # nothing is a spoof
    checked = identify("true").content.decode()
    assert 'id="identify-spoof"' in checked and "live" in checked
    assert 'id="matched-voice"' in checked
    settings.VOICEPRINT_SPOOF_THRESHOLD = 1000.0  # everything is
    refused = identify("true")
    assert refused.context["result"].decision.outcome == "spoof"
    assert "Refused as spoofed" in refused.content.decode()
    assert "not checked" in identify("unknown").content.decode()  # the device's default: off
    household = superuser_client.get(
        admin_url("voiceprint_voice", "household", acme.device.pk)
    ).content.decode()
    assert '<strong id="outcome-spoof">1</strong>' in household
