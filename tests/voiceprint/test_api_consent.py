"""Consent on enrollment (README, "Consent"): given in each request form, shown in the voice
object, the export and the audit log; required by a tenant setting (40000, nothing stored)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from tests.helpers import VP, b64, envelope, nothing_stored, voice_object
from tests.voiceprint.conftest import create_device, get_voice, post_raw
from voiceprint.models import Voice, VoiceConsent

pytestmark = pytest.mark.django_db

CREATE = VP + "voices/create"
DEV = "dev-a"
CONSENT = {
    "subject": "customer-4711",
    "text_version": "2025-01",
    "channel": "app",
    "time": "2025-01-02T03:04:05Z",
}


@pytest.fixture
def device(api) -> str:
    create_device(api, DEV, "kitchen")
    return DEV


@pytest.fixture
def requiring(tenant):
    tenant.require_consent = True
    tenant.save(update_fields=["require_consent"])
    return tenant


def refused(response) -> str:
    """The message of a 40000 reply."""
    envelope(response, 40000)
    return response.json()["msg"]


def json_create(api, audio: bytes, **fields):
    return api.post(CREATE, {"device_id": DEV, "audio_base64": b64(audio), **fields}, format="json")


def test_json_consent_is_stored_and_shown(api, speech, device):
    voice = voice_object(envelope(json_create(api, speech.enroll("fangjun"), consent=CONSENT)))
    assert voice["consent"] == CONSENT
    assert get_voice(api, voice["voice_id"])["consent"] == CONSENT
    listed = envelope(api.get(VP + "voices"))
    assert [v["consent"] for v in listed] == [CONSENT]
    record = VoiceConsent.objects.get(voice__voice_id=voice["voice_id"])
    assert (record.subject, record.text_version, record.channel) == (
        "customer-4711",
        "2025-01",
        "app",
    )


def test_multipart_consent_fields(api, speech, device):
    body = {
        "device_id": DEV,
        "file": SimpleUploadedFile("v.wav", speech.enroll("fangjun"), content_type="audio/wav"),
        **{f"consent_{name}": value for name, value in CONSENT.items()},
    }
    voice = voice_object(envelope(api.post(CREATE, body, format="multipart")))
    assert voice["consent"] == CONSENT


def test_raw_body_consent_headers_with_time_defaulting_to_now(api, speech, device):
    reply = post_raw(
        api,
        "voices/create",
        speech.enroll("fangjun"),
        device_id=DEV,
        consent_subject="Zhang Wěi",  # non-ASCII: percent-encoded by the helper
        consent_text_version="v3",
        consent_channel="voice",
    )
    voice = voice_object(envelope(reply))
    consent = voice["consent"]
    assert {k: consent[k] for k in ("subject", "text_version", "channel")} == {
        "subject": "Zhang Wěi", "text_version": "v3", "channel": "voice",
    }  # fmt: skip
    # No X-Consent-Time: the moment of enrollment.
    created = Voice.objects.get(voice_id=voice["voice_id"]).created_at
    given = VoiceConsent.objects.get(voice__voice_id=voice["voice_id"]).given_at
    assert abs((created - given).total_seconds()) < 60


def test_without_consent_the_voice_shows_null(api, speech, device):
    voice = voice_object(envelope(json_create(api, speech.enroll("fangjun"))))
    assert voice["consent"] is None
    assert not VoiceConsent.objects.exists()


@pytest.mark.parametrize(
    "consent, problem",
    [
        ({**CONSENT, "time": "yesterday"}, "consent.time"),
        ({**CONSENT, "subject": "x" * 129}, "consent.subject"),
        ({k: v for k, v in CONSENT.items() if k != "channel"}, "consent.channel"),
        ("customer-4711", "consent"),
    ],
)
def test_invalid_consent_is_40000_and_stores_nothing(
    api, speech, device, media_root, consent, problem
):
    with nothing_stored(media_root):
        message = refused(json_create(api, speech.enroll("fangjun"), consent=consent))
    assert message.startswith(problem + ":"), message


def test_invalid_consent_time_header_is_40000(api, speech, device, media_root):
    with nothing_stored(media_root):
        reply = post_raw(
            api, "voices/create", speech.enroll("fangjun"), device_id=DEV,
            consent_subject="a", consent_text_version="v1", consent_channel="app",
            consent_time="2025-13-45",
        )  # fmt: skip
        assert refused(reply).startswith("consent.time:")


def test_a_tenant_that_requires_consent_refuses_enrollment_without(
    api, speech, device, requiring, media_root
):
    audits = AuditEvent.objects.count()
    with nothing_stored(media_root):
        message = refused(json_create(api, speech.enroll("fangjun")))
        assert message == "consent: required by this tenant"
        raw = post_raw(api, "voices/create", speech.enroll("fangjun"), device_id=DEV)
        assert refused(raw) == "consent: required by this tenant"
    assert AuditEvent.objects.count() == audits
    voice = voice_object(envelope(json_create(api, speech.enroll("fangjun"), consent=CONSENT)))
    assert voice["consent"] == CONSENT


def test_consent_is_in_the_export_and_the_audit_log(api, speech, device):
    voice = voice_object(envelope(json_create(api, speech.enroll("fangjun"), consent=CONSENT)))
    response = api.get(VP + f"voices/{voice['voice_id']}/export")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert json.loads(archive.read("voice.json"))["consent"] == CONSENT
    event = AuditEvent.objects.get(action="voice.create", object_id=voice["voice_id"])
    assert event.details["consent"] == {"subject": "customer-4711", "text_version": "2025-01"}


def test_consent_is_deleted_with_the_voice(api, speech, device):
    voice = voice_object(envelope(json_create(api, speech.enroll("fangjun"), consent=CONSENT)))
    envelope(api.delete(VP + f"voices/{voice['voice_id']}"))
    assert not VoiceConsent.objects.exists()
