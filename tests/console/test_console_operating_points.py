"""The console's operating points: fitted on uploaded recordings, scoped to the operator's
tenant, reset by deleting."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.console.test_operator_isolation import admin_url
from tests.voiceprint.calibration_audio import SMALL, recordings, require_scorer
from voiceprint.models import OperatingPoint

pytestmark = pytest.mark.django_db


def uploads() -> list[SimpleUploadedFile]:
    return [
        SimpleUploadedFile(f"{speaker}-{n}.wav", audio, content_type="audio/wav")
        for n, (speaker, audio) in enumerate(recordings(**SMALL))
    ]


def stored_point(tenant, z: float = 2.5) -> OperatingPoint:
    return OperatingPoint.objects.create(
        tenant=tenant,
        engine_name="ge2e",
        z_threshold=z,
        target_far=0.01,
        nontarget_trials=1000,
        target_trials=50,
        speakers=10,
        measured_frr=0.04,
    )


def test_an_operator_fits_their_tenants_point(operator_client, acme, globex):
    require_scorer("ge2e")
    form = operator_client.get(admin_url("voiceprint_operatingpoint", "add")).context["form"]
    assert list(form.fields["tenant"].queryset) == [acme.tenant]
    # Another tenant is not a valid choice ...
    response = operator_client.post(
        admin_url("voiceprint_operatingpoint", "add"),
        {"tenant": globex.tenant.pk, "target_far": 0.25, "recordings": uploads()},
    )
    assert "tenant" in response.context["form"].errors
    # ... their own is.
    response = operator_client.post(
        admin_url("voiceprint_operatingpoint", "add"),
        {"tenant": acme.tenant.pk, "target_far": 0.25, "recordings": uploads()},
        follow=True,
    )
    point = OperatingPoint.objects.get()
    assert (point.tenant, point.target_far, point.speakers) == (acme.tenant, 0.25, 3)
    page = response.content.decode()
    assert f"z ≥ {point.z_threshold:.3f}" in page and "12 different-speaker trials" in page


def test_a_failed_fit_shows_why_and_stores_nothing(operator_client, acme):
    require_scorer("ge2e")
    one_speaker = [f for f in uploads() if f.name.startswith("103-")]
    response = operator_client.post(
        admin_url("voiceprint_operatingpoint", "add"),
        {"tenant": acme.tenant.pk, "target_far": 0.25, "recordings": one_speaker},
    )
    assert response.status_code == 200
    assert "at least 2 speakers, got 1" in response.content.decode()
    assert not OperatingPoint.objects.exists()


def test_operators_see_and_reset_only_their_points(operator_client, acme, globex):
    ours, theirs = stored_point(acme.tenant, 2.25), stored_point(globex.tenant, 3.75)
    page = operator_client.get(admin_url("voiceprint_operatingpoint")).content.decode()
    assert "2.25" in page and "3.75" not in page and "globex" not in page
    url = admin_url("voiceprint_operatingpoint", "delete", theirs.pk)
    operator_client.post(url, {"post": "yes"})
    assert OperatingPoint.objects.filter(pk=theirs.pk).exists()
    url = admin_url("voiceprint_operatingpoint", "delete", ours.pk)
    assert operator_client.post(url, {"post": "yes"}).status_code == 302
    assert list(OperatingPoint.objects.all()) == [theirs]
    # Points are refitted, never edited by hand.
    change = operator_client.get(admin_url("voiceprint_operatingpoint", "change", theirs.pk))
    assert change.status_code == 302
