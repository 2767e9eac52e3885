"""Enrollment that guides, in the console: a voice's progress, issues, similar voices and
per-sample quality; removing a sample; the force checkboxes; a device's household page
(its voices side by side, its identify outcomes). Real speech, the active engine."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests import factories as make
from tests.console.conftest import make_operator
from tests.console.test_operator_isolation import admin_url
from voiceprint.models import VoiceSample
from voiceprint.services import cosine_similarity, voice_identify, voice_sample_add

pytestmark = pytest.mark.django_db


def upload(audio: bytes, name: str = "clip.wav") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, audio, content_type="audio/wav")


def household_url(device) -> str:
    return reverse("admin:voiceprint_voice_household", args=[device.pk])


def remove_url(sample) -> str:
    return reverse("admin:voiceprint_voice_remove_sample", args=[sample.pk])


@pytest.fixture
def home(db):
    """A tenant's device with fangjun's voice (all three zh/enroll recordings)."""
    tenant = make.tenant("home")
    device = make.device(tenant, "hall", "Hall speaker")
    return tenant, device, make.speaker_voice(tenant, "fangjun", devices=[device])


def target() -> str:
    """The enrollment target as the console writes it."""
    return f"{settings.VOICEPRINT_ENROLL_TARGET_SECONDS:g}"


@pytest.fixture
def contaminated(home):
    """fangjun's voice with a sample of leijun, added with force: an outlier."""
    voice = voice_sample_add(home[2], audio=make.speech("leijun"), force=True)
    outlier = voice.samples.order_by("-created_at", "-pk").first()
    return voice, outlier


def test_voice_page_shows_progress_issues_and_agreement(superuser_client, contaminated):
    voice, outlier = contaminated
    samples = list(voice.samples.all())
    assert outlier.agreement is not None and outlier.agreement < voice.threshold

    response = superuser_client.get(admin_url("voiceprint_voice", "change", voice.pk))
    content = response.content.decode()

    summary = response.context["enrollment"]
    assert summary.speech_seconds == pytest.approx(sum(s.speech_seconds for s in samples), 0.01)
    percent = round(summary.progress * 100)
    assert f'aria-valuenow="{percent}"' in content and f"width: {percent}%" in content
    assert f"{summary.speech_seconds:.1f} s of {target()} s of speech ({percent}%)" in content
    outlier_issue = f"sample #{len(samples) - 1} does not agree with the others"
    assert any(issue.startswith(outlier_issue) for issue in summary.issues)
    assert outlier_issue in content
    # Each sample's row: its number, quality and agreement; outliers marked, and only they.
    outliers = [s for s in samples if s.agreement is not None and s.agreement < voice.threshold]
    assert content.count('class="console-outlier"') == len(outliers)
    assert f"{outlier.agreement:.3f} · outlier" in content
    for index, sample in enumerate(samples):
        assert f"<p>#{index}</p>" in content
        assert f"{sample.snr_db:.0f} dB" in content
        assert f'formaction="{remove_url(sample)}"' in content
    assert content.count("<p>enrollment</p>") == len(samples)
    assert response.context["similar_voices"] == []  # no other voice on its device
    assert 'id="similar-voices"' in content


def test_similar_voices_are_listed_with_their_scores(superuser_client, home):
    tenant, device, fangjun = home
    leijun = make.speaker_voice(tenant, "leijun", devices=[device])

    response = superuser_client.get(admin_url("voiceprint_voice", "change", fangjun.pk))

    (similar,) = response.context["similar_voices"]
    assert similar.voice.pk == leijun.pk
    fangjun.refresh_from_db()
    leijun.refresh_from_db()
    assert similar.cosine == pytest.approx(cosine_similarity(fangjun.centroid, leijun.centroid))
    content = response.content.decode()
    assert admin_url("voiceprint_voice", "change", leijun.pk) in content
    assert f"{similar.cosine:.3f}" in content
    assert household_url(device) in content


def test_removing_the_outlier_recomputes_the_voiceprint(superuser_client, contaminated):
    voice, outlier = contaminated
    number = voice.samples.count() - 1

    response = superuser_client.post(remove_url(outlier), follow=True)

    assert response.redirect_chain[-1][0] == admin_url("voiceprint_voice", "change", voice.pk)
    content = response.content.decode()
    assert f"Removed sample #{number}" in content
    assert f"of {target()} s of speech" in content
    assert not VoiceSample.objects.filter(pk=outlier.pk).exists()
    voice.refresh_from_db()
    remaining = np.stack([np.asarray(s.embedding) for s in voice.samples.all()])
    mean = remaining.sum(axis=0)
    assert np.allclose(voice.centroid, mean / np.linalg.norm(mean), atol=1e-5)


def test_the_last_enrollment_sample_is_not_removed(superuser_client, home):
    _, _, voice = home
    *others, last = list(voice.samples.all())
    for sample in others:
        assert superuser_client.post(remove_url(sample)).status_code == 302
    response = superuser_client.post(remove_url(last), follow=True)
    content = response.content.decode()
    assert "was not removed" in content and "(code 40900)" in content
    assert list(voice.samples.all()) == [last]
    assert superuser_client.get(remove_url(last)).status_code == 405  # POST only


def test_add_sample_refuses_another_speaker_unless_forced(superuser_client, home):
    _, _, voice = home
    url = admin_url("voiceprint_voice", "add_sample", voice.pk)
    count = voice.samples.count()

    refused = superuser_client.post(url, {"audio": upload(make.speech("leijun"))})
    assert refused.status_code == 200
    assert "does not match voice" in refused.content.decode()
    assert voice.samples.count() == count

    forced = superuser_client.post(
        url, {"audio": upload(make.speech("leijun")), "force": "on"}, follow=True
    )
    assert voice.samples.count() == count + 1
    summary = forced.context["enrollment"]
    percent = round(summary.progress * 100)
    assert (
        f"Enrolled {summary.speech_seconds:.1f} s of {target()} s of speech ({percent}%)"
        in forced.content.decode()
    )


def test_enroll_refuses_a_lookalike_unless_forced(superuser_client, home, settings):
    from voiceprint.models import Voice

    settings.VOICEPRINT_LOOKALIKE_POLICY = "refuse"
    settings.VOICEPRINT_ENROLL_TARGET_SECONDS = 12.0  # more than one recording holds
    tenant, device, _ = home
    form = {"tenant": tenant.pk, "device": device.pk, "name": "fangjun again"}

    refused = superuser_client.post(
        admin_url("voiceprint_voice", "add"),
        {**form, "audio": upload(make.probe_speech("fangjun"))},
    )
    assert refused.status_code == 200
    assert "already enrolled as voice" in refused.content.decode()
    assert not Voice.objects.filter(name="fangjun again").exists()

    forced = superuser_client.post(
        admin_url("voiceprint_voice", "add"),
        {**form, "audio": upload(make.probe_speech("fangjun")), "force": "on"},
        follow=True,
    )
    content = forced.content.decode()
    again = Voice.objects.get(name="fangjun again")
    summary = forced.context["enrollment"]
    assert summary.speech_seconds == pytest.approx(again.samples.get().speech_seconds, 0.01)
    missing = f"add {int(np.ceil(12 - summary.speech_seconds))} s more speech"
    assert f"Enrolled voice “fangjun again”. Enrolled {summary.speech_seconds:.1f} s" in content
    assert missing in content
    assert "sounds like voice" in content  # the look-alike, as a warning


def test_household_shows_the_voices_side_by_side_and_the_outcomes(superuser_client, home):
    tenant, device, fangjun = home
    voices = [fangjun] + [make.speaker_voice(tenant, s, devices=[device]) for s in ("leijun",)]
    voices.append(make.voice(tenant, make.speech("liudehua"), devices=[device], name="liudehua"))
    probes = [
        make.probe_speech("fangjun"),
        make.probe_speech("leijun", 2),
        make.trial_speech("speaker2_a_cn"),  # a stranger
        make.probe_speech("liudehua"),
    ]
    results = [
        voice_identify(tenant, device=device, audio=probe, agent_id=None, top_k=3)
        for probe in probes
    ]
    outcomes = Counter(result.decision.outcome for result in results)

    response = superuser_client.get(household_url(device))

    assert response.status_code == 200
    content = response.content.decode()
    # The heat map: one cell per ordered pair, the cosine of the two voiceprints.
    cells = re.findall(r'data-pair="(\w+) (\w+)" data-score="([-\d.]+)"', content)
    assert len(cells) == len(voices) * (len(voices) - 1)
    by_id = {}
    for voice in voices:
        voice.refresh_from_db()
        by_id[voice.voice_id] = voice
    for first, second, shown in cells:
        expected = cosine_similarity(by_id[first].centroid, by_id[second].centroid)
        assert float(shown) == pytest.approx(expected, abs=0.0011)
    assert content.count('class="diagonal"') == len(voices)
    # Each voice's enrollment, as a bar.
    for voice, summary in response.context["voices"]:
        assert f'data-voice="{voice.voice_id}"' in content
        assert f"{summary.speech_seconds:.1f} s of {target()} s of speech" in content
    # The outcomes of the identify calls: totals, and today's bar.
    for outcome in ("match", "no_match", "uncertain"):
        total = re.search(rf'id="outcome-{outcome}">(\d+)<', content).group(1)
        assert int(total) == outcomes[outcome], outcome
    today = response.context["chart"].bars[-1]
    assert {s.key: s.value for s in today.segments} == +outcomes
    by_hour = superuser_client.get(household_url(device) + "?by=hour")
    assert by_hour.context["outcome_totals"] == {
        outcome: outcomes[outcome] for outcome in ("match", "no_match", "uncertain", "spoof")
    }
    assert len(by_hour.context["chart"].bars) == 48


def test_household_of_a_device_without_voices(superuser_client, db):
    device = make.device(make.tenant("empty"), "bare")
    response = superuser_client.get(household_url(device))
    assert response.status_code == 200
    assert "No voice is bound to this device." in response.content.decode()
    assert response.context["outcome_totals"] == {
        "match": 0, "no_match": 0, "uncertain": 0, "spoof": 0
    }  # fmt: skip


def test_device_pages_link_the_household(superuser_client, acme):
    change = superuser_client.get(admin_url("devices_device", "change", acme.device.pk))
    assert f'href="{household_url(acme.device)}" id="device-household"' in change.content.decode()
    listing = superuser_client.get(admin_url("devices_device"))
    assert household_url(acme.device) in listing.content.decode()


def test_operators_reach_only_their_tenants_household_and_samples(operator_client, acme, globex):
    assert operator_client.get(household_url(acme.device)).status_code == 200
    assert operator_client.get(household_url(globex.device)).status_code == 404
    assert operator_client.post(remove_url(globex.sample)).status_code == 404
    assert VoiceSample.objects.filter(pk=globex.sample.pk).exists()


def test_removing_needs_the_change_permission(acme, django_user_model, client):
    from django.contrib.auth.models import Permission

    from tenancy.models import OperatorProfile

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_voice", "view_device"])
    )
    OperatorProfile.objects.create(user=viewer, tenant=acme.tenant)
    client.force_login(viewer)
    page = client.get(admin_url("voiceprint_voice", "change", acme.voice.pk)).content.decode()
    assert remove_url(acme.sample) not in page
    assert client.post(remove_url(acme.sample)).status_code == 403
    assert VoiceSample.objects.filter(pk=acme.sample.pk).exists()
    assert client.get(household_url(acme.device)).status_code == 200


def test_staff_without_a_tenant_get_no_household(acme, django_user_model, client):
    client.force_login(make_operator(django_user_model, "nobody"))  # no profile: no tenant
    assert client.get(household_url(acme.device)).status_code == 404
