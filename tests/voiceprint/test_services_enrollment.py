"""Enrollment at the service level (voiceprint.services.enrollment), with the real active
engine and real speech: what a voice stores, how samples move its centroid, the device
capacity, refusals that store nothing, deletion and re-embedding."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

import engine
from core.exceptions import ApiError, ErrorCode
from devices.models import Device
from tests import factories as make
from tests.conftest import stored_files
from tests.helpers import nothing_stored
from voiceprint.models import Voice, VoiceBinding, VoiceSample
from voiceprint.services import (
    Reembed,
    audio_read,
    cosine_similarity,
    voice_centroid_refresh,
    voice_create,
    voice_delete,
    voice_pair_scores,
    voice_reembed,
    voice_sample_add,
    voice_verify,
)
from voiceprint.thresholds import default_similarity_threshold

pytestmark = pytest.mark.django_db


def sample_embeddings(voice: Voice) -> np.ndarray:
    return np.stack(
        [np.asarray(e) for e in voice.samples.order_by("pk").values_list("embedding", flat=True)]
    )


def normalised_mean(vectors: np.ndarray) -> np.ndarray:
    mean = vectors.mean(axis=0)
    return mean / np.linalg.norm(mean)


# --------------------------------------------------------------------------- create


def test_create_stores_the_voice_its_sample_centroid_and_bindings(media_root):
    tenant = make.tenant()
    kitchen, hall = make.device(tenant, "kitchen"), make.device(tenant, "hall")
    make.device(tenant, "garage")  # not bound
    staff = make.role(tenant, "staff")
    active = engine.active_engine()

    voice = make.voice(
        tenant, make.speech("fangjun", 1), devices=[kitchen, hall], role=staff, name="fj"
    )

    voice.refresh_from_db()
    assert (voice.tenant, voice.name, voice.role) == (tenant, "fj", staff)
    assert (voice.engine_name, voice.dim) == (active.name, active.dim)
    assert voice.threshold == default_similarity_threshold(active.name)
    centroid = np.asarray(voice.centroid)
    assert centroid.shape == (active.dim,)
    assert np.linalg.norm(centroid) == pytest.approx(1.0, abs=1e-5)
    assert set(voice.bindings.values_list("device__device_id", flat=True)) == {"kitchen", "hall"}

    (sample,) = voice.samples.all()
    assert sample.engine_name == active.name
    np.testing.assert_allclose(np.asarray(sample.embedding), centroid, atol=1e-6)
    assert 0 < sample.speech_seconds <= sample.duration_seconds
    # The recording is kept, as 16 kHz mono WAV (encrypted at rest), under the tenant and
    # the test's media root.
    assert stored_files(media_root) == {sample.audio.name}
    assert sample.audio.name.startswith(f"voices/{tenant.pk}/")
    info = soundfile.info(io.BytesIO(audio_read(sample.audio.name)))
    assert (info.samplerate, info.channels) == (16000, 1)
    assert info.duration == pytest.approx(sample.duration_seconds, abs=0.01)


def test_create_without_a_role_binds_the_default_role_and_keeps_a_given_threshold():
    tenant = make.tenant()

    voice = make.voice(tenant, make.speech("leijun", 1), threshold=0.6)

    voice.refresh_from_db()
    assert voice.role.is_default and voice.role.tenant == tenant
    assert voice.threshold == 0.6
    assert not voice.bindings.exists()


# --------------------------------------------------------------------------- samples


def test_sample_add_moves_the_centroid_to_the_normalised_mean_of_the_samples(media_root):
    tenant = make.tenant()
    voice = make.voice(tenant, make.speech("fangjun", 1))
    before = np.asarray(Voice.objects.get(pk=voice.pk).centroid)

    voice_sample_add(voice, audio=make.speech("fangjun", 2))

    voice.refresh_from_db()
    after = np.asarray(voice.centroid)
    embeddings = sample_embeddings(voice)
    assert len(embeddings) == 2 and len(stored_files(media_root)) == 2
    np.testing.assert_allclose(after, normalised_mean(embeddings), atol=1e-5)
    assert np.linalg.norm(after) == pytest.approx(1.0, abs=1e-5)
    # It moved toward the new sample (and only part of the way).
    new_sample = embeddings[1]
    assert float(after @ new_sample) > float(before @ new_sample)
    assert float(after @ new_sample) < 1.0 - 1e-4


def test_sample_add_with_too_little_speech_is_refused_and_changes_nothing(media_root):
    tenant = make.tenant()
    voice = make.voice(tenant, make.speech("fangjun", 1))

    with nothing_stored(media_root), pytest.raises(engine.InsufficientSpeechError):
        voice_sample_add(voice, audio=make.silence(3.0))


def test_centroid_refresh_after_a_sample_is_removed_follows_the_remaining_samples():
    tenant = make.tenant()
    voice = make.speaker_voice(tenant, "fangjun")  # three samples
    first, *_ = voice.samples.order_by("pk")
    voice.samples.exclude(pk=first.pk).delete()

    voice_centroid_refresh(voice)

    voice.refresh_from_db()
    expected = np.asarray(first.embedding) / np.linalg.norm(np.asarray(first.embedding))
    np.testing.assert_allclose(np.asarray(voice.centroid), expected, atol=1e-6)


# --------------------------------------------------------------------------- refusals


def test_a_full_device_refuses_a_new_voice_before_decoding_and_stores_nothing(
    settings, media_root, decoded_frames
):
    settings.VOICEPRINT_MAX_VOICES_PER_DEVICE = 1
    tenant = make.tenant()
    full, free = make.device(tenant, "full"), make.device(tenant, "free")
    make.voice(tenant, make.speech("fangjun", 1), devices=[full])
    audio = make.speech("leijun", 1)
    decoded_frames.clear()

    with nothing_stored(media_root), pytest.raises(ApiError) as refused:
        voice_create(tenant, audio=audio, devices=[free, full])

    assert refused.value.code == ErrorCode.CONFLICT == 40900
    assert "full" in refused.value.message
    assert decoded_frames == {}  # refused before the audio was even decoded


def test_a_device_of_another_tenant_does_not_count_toward_capacity(settings):
    """The limit is a number of bindings of this device; the same limit on a device of
    the same id elsewhere is independent."""
    settings.VOICEPRINT_MAX_VOICES_PER_DEVICE = 1
    acme, globex = make.tenant("acme"), make.tenant("globex")
    make.voice(acme, make.speech("fangjun", 1), devices=[make.device(acme, "dev")])

    other = make.voice(globex, make.speech("leijun", 1), devices=[make.device(globex, "dev")])

    assert other.bindings.count() == 1


@pytest.mark.parametrize(
    "audio",
    [
        pytest.param(lambda: make.silence(3.0), id="silence"),
        pytest.param(lambda: make.clip(make.speech("fangjun", 2), 1.0, 0.4), id="0.4s-speech"),
    ],
)
def test_too_little_speech_is_refused_and_stores_nothing(media_root, audio):
    tenant = make.tenant()
    dev = make.device(tenant, "dev")

    with nothing_stored(media_root), pytest.raises(engine.InsufficientSpeechError) as refused:
        voice_create(tenant, audio=audio(), devices=[dev])

    assert refused.value.speech_seconds < refused.value.minimum_seconds


# --------------------------------------------------------------------------- deletion


def test_delete_removes_rows_and_stored_audio_but_not_the_devices(
    media_root, django_capture_on_commit_callbacks
):
    tenant = make.tenant()
    dev = make.device(tenant, "dev")
    doomed = make.speaker_voice(tenant, "leijun", devices=[dev])  # two samples, two files
    kept = make.voice(tenant, make.speech("fangjun", 1), devices=[dev])
    kept_files = set(kept.samples.values_list("audio", flat=True))
    assert len(stored_files(media_root)) == 3

    with django_capture_on_commit_callbacks(execute=True):
        voice_delete(doomed)

    assert not Voice.objects.filter(pk=doomed.pk).exists()
    assert not VoiceSample.objects.filter(voice_id=doomed.pk).exists()
    assert not VoiceBinding.objects.filter(voice_id=doomed.pk).exists()
    assert stored_files(media_root) == kept_files
    assert Device.objects.filter(pk=dev.pk).exists()
    assert list(dev.bindings.values_list("voice_id", flat=True)) == [kept.pk]


# --------------------------------------------------------------------------- re-embedding


def test_reembed_recomputes_a_voice_from_its_stored_audio(media_root):
    """A voice left by another engine (simulated: its engine name and vectors replaced
    through the ORM) is recomputed from the kept audio with the active engine."""
    tenant = make.tenant()
    active = engine.active_engine().name
    voice = make.voice(tenant, make.trial_speech("speaker1_a_cn"))
    original = np.asarray(Voice.objects.get(pk=voice.pk).centroid)
    scrambled = np.roll(original, 1)
    Voice.objects.filter(pk=voice.pk).update(engine_name="other", centroid=scrambled)
    voice.samples.update(engine_name="other", embedding=scrambled)

    assert voice_reembed(voice, engine_name=active) is Reembed.REEMBEDDED

    voice.refresh_from_db()
    assert voice.engine_name == active
    assert set(voice.samples.values_list("engine_name", flat=True)) == {active}
    np.testing.assert_allclose(np.asarray(voice.centroid), original, atol=1e-5)
    # Still identifiable: the same speaker's other recording verifies against it.
    assert voice_verify(voice, audio=make.trial_speech("speaker1_b_cn")).verified
    # A second run finds nothing to do.
    assert voice_reembed(voice, engine_name=active) is Reembed.CURRENT


def test_pair_scores_compare_every_two_voices_of_one_engine():
    tenant = make.tenant()
    voices = [make.voice(tenant, make.speech(s), name=s) for s in make.ZH_SPEAKERS]
    stranger = Voice.objects.create(  # another engine: not comparable with the others
        tenant=tenant, threshold=0.5, engine_name="other", dim=3, centroid=[1.0, 0.0, 0.0]
    )
    voices = [*Voice.objects.filter(pk__in=[v.pk for v in voices]).order_by("name"), stranger]

    rows = voice_pair_scores(voices)

    assert [row[i] for i, row in enumerate(rows)] == [None] * 4
    assert rows[3] == [None] * 4 and [row[3] for row in rows] == [None] * 4
    for i in range(3):
        for j in range(3):
            if i != j:
                score = rows[i][j]
                assert score.voice.pk == voices[j].pk
                expected = cosine_similarity(voices[i].centroid, voices[j].centroid)
                assert score.cosine == pytest.approx(expected, abs=1e-5)
                assert score.cosine == pytest.approx(rows[j][i].cosine, abs=1e-5)
