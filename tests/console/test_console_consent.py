"""Consent in the console: the enrollment form's consent fields, the tenant setting that
requires them, and the voice page's read-only consent (real speech, the active engine)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import stored_files
from tests.console.test_operator_isolation import admin_url
from voiceprint.models import Voice

pytestmark = pytest.mark.django_db

CONSENT = {
    "consent_subject": "Anna Schmidt",
    "consent_text_version": "2025-01",
    "consent_channel": "paper",
}


def enroll_form(world, speech, name: str, **fields) -> dict:
    path = speech("enroll", "fangjun-sr-1.wav")
    audio = SimpleUploadedFile(path.name, path.read_bytes(), content_type="audio/wav")
    return {"tenant": world.tenant.pk, "device": world.device.pk, "name": name, "audio": audio,
            **fields}  # fmt: skip


def test_enrollment_with_consent_is_shown_on_the_voice_page(superuser_client, acme, speech):
    body = enroll_form(acme, speech, "anna", **CONSENT, consent_time="2025-01-02 03:04:05")
    response = superuser_client.post(admin_url("voiceprint_voice", "add"), body)
    assert response.status_code == 302, response.context["form"].errors
    voice = Voice.objects.get(tenant=acme.tenant, name="anna")
    assert (voice.consent.subject, voice.consent.channel) == ("Anna Schmidt", "paper")

    content = superuser_client.get(response.url).content.decode()
    assert "Anna Schmidt · text version 2025-01 · via paper · 2025-01-02T03:04:05Z" in content


def test_a_partial_consent_is_refused(superuser_client, acme, speech):
    body = enroll_form(acme, speech, "anna", consent_subject="Anna Schmidt")
    response = superuser_client.post(admin_url("voiceprint_voice", "add"), body)
    assert set(response.context["form"].errors) == {"consent_text_version", "consent_channel"}
    assert not Voice.objects.filter(name="anna").exists()


def test_the_tenant_setting_requires_consent(superuser_client, acme, speech, media_root):
    # Set on the tenant's console page, with its other fields as they are.
    page = admin_url("tenancy_tenant", "change", acme.tenant.pk)
    form = {"name": acme.tenant.name, "is_active": "on", "require_consent": "on",
            "tokens-TOTAL_FORMS": "0", "tokens-INITIAL_FORMS": "0"}  # fmt: skip
    response = superuser_client.post(page, form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    acme.tenant.refresh_from_db()
    assert acme.tenant.require_consent

    before = stored_files(media_root)
    response = superuser_client.post(
        admin_url("voiceprint_voice", "add"), enroll_form(acme, speech, "anna")
    )
    assert set(response.context["form"].errors) == set(CONSENT)
    assert not Voice.objects.filter(name="anna").exists()
    assert stored_files(media_root) == before

    body = enroll_form(acme, speech, "anna", **CONSENT)
    response = superuser_client.post(admin_url("voiceprint_voice", "add"), body)
    assert response.status_code == 302, response.context["form"].errors
    assert Voice.objects.get(name="anna").consent.text_version == "2025-01"
