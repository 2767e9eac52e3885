"""Retention of enrollment audio (VOICEPRINT_AUDIO_RETENTION_DAYS, `manage.py purge_audio`):
old recordings leave the storage, their voices keep their embeddings and keep working, and
everything that reads audio says the recording was purged."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from tests.conftest import stored_files
from tests.helpers import VP, envelope
from tests.voiceprint.conftest import add_sample, create_device, enroll, identify
from utilities.sealing import new_key
from voiceprint.models import Voice, VoiceSample

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


def age(voice_id: str, *, days: int, first: int = 1) -> None:
    """Make the voice's first `first` samples (in index order) `days` old."""
    samples = VoiceSample.objects.filter(voice__voice_id=voice_id).order_by("created_at", "pk")
    pks = list(samples.values_list("pk", flat=True)[:first])
    VoiceSample.objects.filter(pk__in=pks).update(created_at=timezone.now() - timedelta(days=days))


@pytest.fixture
def household(api, speech, media_root, settings):
    """fangjun (two samples, the first 40 days old) and leijun (one fresh sample) on the
    kitchen device, retention 30 days."""
    settings.VOICEPRINT_AUDIO_RETENTION_DAYS = 30
    create_device(api, "kitchen")
    fangjun = enroll(api, speech.enroll("fangjun", 1), "kitchen", voice_name="fangjun")
    add_sample(api, fangjun["voice_id"], speech.enroll("fangjun", 2))
    leijun = enroll(api, speech.enroll("leijun", 1), "kitchen", voice_name="leijun")
    age(fangjun["voice_id"], days=40)
    return {"fangjun": fangjun["voice_id"], "leijun": leijun["voice_id"]}


def purge(django_capture_on_commit_callbacks, *args) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        return run("purge_audio", *args)


def test_purge_deletes_only_old_recordings_and_the_voice_keeps_matching(
    api, speech, household, media_root, django_capture_on_commit_callbacks
):
    fangjun = household["fangjun"]
    old = VoiceSample.objects.filter(voice__voice_id=fangjun).order_by("created_at", "pk")[0]
    old_file, old_embedding = old.audio.name, np.asarray(old.embedding)
    centroid = np.asarray(Voice.objects.get(voice_id=fangjun).centroid)
    assert len(stored_files(media_root)) == 3

    output = purge(django_capture_on_commit_callbacks)

    assert output.startswith("1 sample(s) of 1 voice(s) purged"), output
    assert old_file not in stored_files(media_root) and len(stored_files(media_root)) == 2
    old.refresh_from_db()
    assert old.audio.name == "" and old.audio_purged_at is not None
    np.testing.assert_array_equal(np.asarray(old.embedding), old_embedding)
    assert old.speech_seconds > 0 and old.agreement is not None
    kept_centroid = np.asarray(Voice.objects.get(voice_id=fangjun).centroid)
    np.testing.assert_array_equal(kept_centroid, centroid)
    # The voice still identifies its speaker.
    assert identify(api, speech.test("fangjun"), "kitchen")["voice_id"] == fangjun
    # One audit event for the voice, with the count.
    event = AuditEvent.objects.get(action="voice.audio_purge")
    assert event.object_id == fangjun and event.details == {"count": 1}
    # Nothing is due any more.
    assert purge(django_capture_on_commit_callbacks).startswith("0 sample(s) of 0 voice(s)")


def test_purged_sample_reads_as_purged(api, household, django_capture_on_commit_callbacks):
    fangjun = household["fangjun"]
    purge(django_capture_on_commit_callbacks)

    response = api.get(VP + f"voices/{fangjun}/audio", {"sample": "0"})
    envelope(response, 40400)
    assert response.json()["msg"] == (
        "sample audio was purged after 30 days (VOICEPRINT_AUDIO_RETENTION_DAYS)"
    )
    kept = api.get(VP + f"voices/{fangjun}/audio", {"sample": "1"})
    assert kept.status_code == 200 and kept["Content-Type"] == "audio/wav"

    samples = envelope(api.get(VP + f"voices/{fangjun}/samples"))
    assert samples[0]["audio_purged_at"] is not None and samples[1]["audio_purged_at"] is None
    assert samples[0]["speech_seconds"] > 0

    response = api.get(VP + f"voices/{fangjun}/export")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["audit.jsonl", "samples/1.wav", "voice.json"]
    listed = json.loads(archive.read("voice.json"))["samples"]
    assert listed[0]["file"] is None and listed[0]["audio_purged_at"].endswith("Z")
    assert listed[1]["file"] == "samples/1.wav" and listed[1]["audio_purged_at"] is None
    actions = [json.loads(line)["action"] for line in archive.read("audit.jsonl").splitlines()]
    assert "voice.audio_purge" in actions


def test_dry_run_changes_nothing(household, media_root, django_capture_on_commit_callbacks):
    before = stored_files(media_root)
    output = purge(django_capture_on_commit_callbacks, "--dry-run")
    assert "1 sample(s) of 1 voice(s)" in output and "would be purged" in output
    assert stored_files(media_root) == before
    assert not VoiceSample.objects.filter(audio_purged_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action="voice.audio_purge").exists()


def test_retention_off_purges_nothing(
    household, media_root, settings, django_capture_on_commit_callbacks
):
    settings.VOICEPRINT_AUDIO_RETENTION_DAYS = None
    age(household["leijun"], days=3650)
    before = stored_files(media_root)
    assert "off" in purge(django_capture_on_commit_callbacks)
    assert stored_files(media_root) == before
    assert not VoiceSample.objects.filter(audio_purged_at__isnull=False).exists()


def test_reembed_reports_voices_it_cannot_recompute(household, django_capture_on_commit_callbacks):
    """As tests/voiceprint/test_commands.py: a voice pretends to come from another engine."""
    purge(django_capture_on_commit_callbacks)
    fangjun, leijun = (Voice.objects.get(voice_id=household[n]) for n in ("fangjun", "leijun"))
    fangjun_centroid, leijun_centroid = np.asarray(fangjun.centroid), np.asarray(leijun.centroid)
    Voice.objects.filter(pk__in=[fangjun.pk, leijun.pk]).update(
        engine_name="campplus", centroid=np.ones(256) / 16
    )

    output = run("reembed")

    assert f"voice {fangjun.voice_id}: no audio to re-embed for 1 of its 2 sample(s)" in output
    assert "1 voice(s) re-embedded with ge2e, 0 failed, 1 not recomputable" in output
    fangjun.refresh_from_db()
    leijun.refresh_from_db()
    assert fangjun.engine_name == "campplus"  # kept, not failed, nothing half-converted
    assert leijun.engine_name == "ge2e"
    np.testing.assert_allclose(np.asarray(leijun.centroid), leijun_centroid, atol=1e-4)
    assert not np.allclose(np.asarray(fangjun.centroid), fangjun_centroid)


def test_key_rotation_skips_purged_samples(household, settings, django_capture_on_commit_callbacks):
    purge(django_capture_on_commit_callbacks)
    settings.VOICEPRINT_AUDIO_KEY = [new_key(), *settings.VOICEPRINT_AUDIO_KEY]
    with django_capture_on_commit_callbacks(execute=True):
        output = run("rotate_audio_key")
    assert output.startswith("2 sample(s) re-encrypted"), output
    assert VoiceSample.objects.filter(audio="").count() == 1
