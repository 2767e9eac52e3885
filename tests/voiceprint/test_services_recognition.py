"""Decisions at the service level (voiceprint.services.recognition): the one decision rule
at its boundary, 1:N identification among a device's voices, 1:1 verification, the device
stats, and the refusal to compare embeddings of different engines.

Real engine, real speech. The default GE2E threshold (0.75) was fitted on zh enroll+test and
LibriSpeech (README, "Choosing a threshold"), so every decision taken here at the default
threshold is about a recording held out of that fitting: the 3D-Speaker trials in
zh/test/3d-speaker ("speaker1_a"/"speaker1_b" one speaker, "speaker2_a" another). The zh
test recordings are used only where no threshold decides (who ranks first).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
from core.exceptions import ApiError, ErrorCode
from devices.models import Device
from roles.selectors import role_get_default
from tests import factories as make
from voiceprint.models import Voice
from voiceprint.services import (
    Candidate,
    is_match,
    is_match_by_distance,
    voice_engine_check,
    voice_identify,
    voice_sample_add,
    voice_verify,
)
from voiceprint.thresholds import default_similarity_threshold

THRESHOLDS = [0.0, 0.25, 0.5, 0.731, 0.75, 0.9, 1.0]

# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_a_similarity_exactly_on_the_threshold_matches_and_a_hair_below_does_not(threshold):
    assert is_match(similarity=threshold, threshold=threshold)
    assert not is_match(similarity=math.nextafter(threshold, -math.inf), threshold=threshold)
    assert is_match(similarity=math.nextafter(threshold, math.inf), threshold=threshold)


@pytest.mark.parametrize("threshold", [1.0 - t for t in THRESHOLDS])
def test_a_distance_exactly_on_the_threshold_matches_and_a_hair_above_does_not(threshold):
    assert is_match_by_distance(distance=threshold, threshold=threshold)
    assert not is_match_by_distance(
        distance=math.nextafter(threshold, math.inf), threshold=threshold
    )
    assert is_match_by_distance(distance=math.nextafter(threshold, -math.inf), threshold=threshold)


def test_a_candidate_passes_by_its_own_voices_threshold():
    strict, lenient = Voice(threshold=0.8), Voice(threshold=0.6)

    assert Candidate(lenient, score=0.7).passes
    assert not Candidate(strict, score=0.7).passes
    assert Candidate(strict, score=0.8).passes


# --------------------------------------------------------------------------- 1:N


@pytest.fixture
def gallery(db) -> tuple[Device, dict[str, Voice]]:
    """A device with the three zh speakers (all their zh/enroll recordings) and 3D-Speaker's
    speaker1 (from speaker1_a_cn), all at the engine's default threshold."""
    tenant = make.tenant()
    dev = make.device(tenant, "lobby")
    voices = {s: make.speaker_voice(tenant, s, devices=[dev]) for s in make.ZH_SPEAKERS}
    voices["speaker1"] = make.voice(
        tenant, make.trial_speech("speaker1_a_cn"), devices=[dev], name="speaker1"
    )
    return dev, voices


def identify(dev: Device, audio: bytes, top_k: int = 5):
    return voice_identify(dev.tenant, device=dev, audio=audio, agent_id=None, top_k=top_k)


@pytest.mark.django_db
def test_identify_ranks_each_zh_speaker_first_for_their_other_recordings(gallery):
    """Who ranks first is decided by no threshold: in-sample recordings are fine here."""
    dev, voices = gallery
    for speaker in make.ZH_SPEAKERS:
        for name, audio in make.probe_files(speaker):
            result = identify(dev, audio)
            assert result.best.voice.pk == voices[speaker].pk, name
            scores = [c.score for c in result.candidates]
            assert scores == sorted(scores, reverse=True), name
            assert len(result.candidates) == 4


@pytest.mark.django_db
def test_identify_matches_a_held_out_recording_of_an_enrolled_speaker(gallery):
    dev, voices = gallery

    result = identify(dev, make.trial_speech("speaker1_b_cn"))

    assert result.matched
    assert result.best.voice.pk == voices["speaker1"].pk
    assert result.threshold == voices["speaker1"].threshold
    assert result.best.score >= result.threshold
    assert result.model == engine.active_engine().name


@pytest.mark.django_db
@pytest.mark.parametrize("stranger", ["speaker2_a_cn", "speaker2_a_en"])
def test_identify_matches_no_one_for_a_held_out_stranger(gallery, stranger):
    dev, _ = gallery

    result = identify(dev, make.trial_speech(stranger))

    assert not result.matched
    assert result.best is not None and result.best.score < result.threshold
    assert result.threshold == default_similarity_threshold(result.model)


@pytest.mark.django_db
def test_identify_honours_a_per_voice_threshold(gallery):
    """The same held-out positive no longer matches once its voice demands more than the
    score it gets: the decision is the voice's own threshold, not a global one."""
    dev, voices = gallery
    probe = make.trial_speech("speaker1_b_cn")
    score = identify(dev, probe).best.score
    Voice.objects.filter(pk=voices["speaker1"].pk).update(threshold=math.nextafter(score, 2.0))

    result = identify(dev, probe)

    assert result.best.voice.pk == voices["speaker1"].pk
    assert result.best.score == pytest.approx(score, abs=1e-6)
    assert not result.matched


@pytest.mark.django_db
def test_identify_counts_each_call_once_in_the_device_stats(gallery):
    dev, _ = gallery
    before = Device.objects.get(pk=dev.pk)

    identify(dev, make.trial_speech("speaker1_b_cn"))  # a match
    identify(dev, make.trial_speech("speaker2_a_cn"))  # no match

    after = Device.objects.get(pk=dev.pk)
    assert after.identify_count - before.identify_count == 2
    assert after.matched_count - before.matched_count == 1
    assert after.last_identify_at is not None


@pytest.mark.django_db
def test_identify_looks_only_at_the_voices_bound_to_the_device():
    tenant = make.tenant()
    lobby, office = make.device(tenant, "lobby"), make.device(tenant, "office")
    make.voice(tenant, make.trial_speech("speaker1_a_cn"), devices=[office])
    leijun = make.voice(tenant, make.speech("leijun", 1), devices=[lobby])

    result = identify(lobby, make.trial_speech("speaker1_b_cn"))

    assert [c.voice.pk for c in result.candidates] == [leijun.pk]
    assert not result.matched


# --------------------------------------------------------------------------- 1:1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("enrolled", "probe", "same"),
    [
        ("speaker1_a_cn", "speaker1_b_cn", True),
        ("speaker1_a_en", "speaker1_b_en", True),
        ("speaker1_a_cn", "speaker2_a_cn", False),
        ("speaker1_a_en", "speaker2_a_en", False),
    ],
)
def test_verify_accepts_the_same_speaker_and_rejects_another(enrolled, probe, same):
    tenant = make.tenant()
    voice = make.voice(tenant, make.trial_speech(enrolled))

    result = voice_verify(voice, audio=make.trial_speech(probe))

    assert result.verified is same
    assert (result.score >= voice.threshold) is same
    assert -1.0 <= result.score <= 1.0
    assert result.model == voice.engine_name


# --------------------------------------------------------------------------- engines


def voice_of_another_engine(dev: Device) -> Voice:
    """A voice as another engine would have left it (made through the ORM: no other
    engine is loadable here)."""
    dim = engine.active_engine().dim
    vector = np.zeros(dim, dtype=np.float32)
    vector[0] = 1.0
    voice = Voice.objects.create(
        tenant=dev.tenant, name="old", role=role_get_default(dev.tenant),
        threshold=0.5, engine_name="other", dim=dim, centroid=vector,
    )  # fmt: skip
    voice.bindings.create(device=dev)
    return voice


@pytest.mark.django_db
def test_engine_check_refuses_a_voice_of_another_engine():
    dev = make.device(make.tenant(), "dev")
    voice = voice_of_another_engine(dev)

    voice_engine_check(voice, engine_name="other")  # the same engine passes
    with pytest.raises(ApiError) as refused:
        voice_engine_check(voice, engine_name=engine.active_engine().name)

    assert refused.value.code == ErrorCode.CONFLICT
    assert "reembed" in refused.value.message


@pytest.mark.django_db
def test_verify_identify_and_sample_add_refuse_a_voice_of_another_engine(media_root):
    dev = make.device(make.tenant(), "dev")
    voice = voice_of_another_engine(dev)
    probe = make.trial_speech("speaker1_b_cn")

    for attempt in (
        lambda: voice_verify(voice, audio=probe),
        lambda: identify(dev, probe),
        lambda: voice_sample_add(voice, audio=probe),
    ):
        with pytest.raises(ApiError) as refused:
            attempt()
        assert refused.value.code == ErrorCode.CONFLICT
    assert not voice.samples.exists()
    assert not any(media_root.rglob("*.wav"))
    assert Device.objects.get(pk=dev.pk).identify_count == 0
