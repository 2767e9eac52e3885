"""Decisions at the service level (voiceprint.services.recognition; the rule itself is
tested in test_decision.py): 1:N identification among a device's voices, 1:1 verification,
the device stats, and the refusal to compare embeddings of different engines.

Real engine, real speech. The default GE2E threshold (0.75) was fitted on zh enroll+test and
LibriSpeech (README, "Choosing a threshold"), so every decision taken here at the default
threshold is about a recording held out of that fitting: the 3D-Speaker trials in
zh/test/3d-speaker ("speaker1_a"/"speaker1_b" one speaker, "speaker2_a" another). The zh
test recordings are used only where no threshold decides (who ranks first).
"""

from __future__ import annotations

import numpy as np
import pytest

import engine
from core.exceptions import ApiError, ErrorCode
from devices.models import Device
from engine.scoring import load_scorer
from roles.selectors import role_get_default
from tests import factories as make
from tests.voiceprint.conftest import threshold_above
from voiceprint.models import Voice
from voiceprint.services import (
    voice_engine_check,
    voice_identify,
    voice_sample_add,
    voice_verify,
)
from voiceprint.thresholds import default_similarity_threshold

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
            scores = [c.rank_score for c in result.candidates]
            assert scores == sorted(scores, reverse=True), name
            assert len(result.candidates) == 4


@pytest.mark.django_db
def test_identify_matches_a_held_out_recording_of_an_enrolled_speaker(gallery):
    dev, voices = gallery

    result = identify(dev, make.trial_speech("speaker1_b_cn"))

    assert result.matched and result.decision.outcome == "match"
    assert result.best.voice.pk == voices["speaker1"].pk
    assert result.best.threshold == voices["speaker1"].threshold
    assert result.best.passes
    assert result.model == engine.active_engine().name


@pytest.mark.django_db
@pytest.mark.parametrize("stranger", ["speaker2_a_cn", "speaker2_a_en"])
def test_identify_matches_no_one_for_a_held_out_stranger(gallery, stranger):
    dev, _ = gallery

    result = identify(dev, make.trial_speech(stranger))

    assert not result.matched and result.decision.outcome in ("no_match", "uncertain")
    assert result.best is not None and not result.best.passes
    assert result.best.threshold == default_similarity_threshold(result.model)


@pytest.mark.django_db
def test_identify_honours_a_per_voice_threshold(gallery):
    """The same held-out positive no longer matches once its voice demands more than the
    score it gets: the decision is the voice's own threshold, not a global one."""
    dev, voices = gallery
    probe = make.trial_speech("speaker1_b_cn")
    matched = identify(dev, probe)
    assert matched.matched
    Voice.objects.filter(pk=voices["speaker1"].pk).update(
        threshold=threshold_above(
            matched.best, load_scorer(matched.model), snr_db=matched.quality.snr_db
        )
    )

    result = identify(dev, probe)

    assert result.best.voice.pk == voices["speaker1"].pk
    assert result.best.cosine == pytest.approx(matched.best.cosine, abs=1e-6)
    assert not result.best.passes and not result.matched


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
    assert result.decision.outcome == "match" if same else result.decision.outcome != "match"
    assert result.score.voice.pk == voice.pk and result.score.passes is same
    assert -1.0 <= result.score.cosine <= 1.0
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
