"""Safe adaptation in the service (VOICEPRINT_ADAPTATION), on real speech: confident,
clean matches join the voice as capped adaptation samples that raise its threshold, count
for nothing as enrolled speech, and go like any sample."""

from __future__ import annotations

import numpy as np
import pytest

from tests import factories as make
from voiceprint.adaptation import DEFAULT_RULE, raised_threshold
from voiceprint.models import SampleKind, Voice
from voiceprint.selectors import voice_enrollment, voice_get
from voiceprint.services import voice_identify, voice_sample_delete, voice_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def household(media_root):
    owner = make.tenant()
    kitchen = make.device(owner, "kitchen")
    voices = {s: make.speaker_voice(owner, s, devices=[kitchen]) for s in ("fangjun", "leijun")}
    return owner, kitchen, voices


def adapted(voice: Voice) -> list:
    return list(voice.samples.filter(kind=SampleKind.ADAPTATION))


def identify(owner, kitchen, audio: bytes):
    return voice_identify(owner, device=kitchen, audio=audio, agent_id=None, top_k=3)


def test_off_by_default_nothing_is_learnt(household):
    owner, kitchen, voices = household
    result = identify(owner, kitchen, make.probe_speech("fangjun", 1))
    assert result.decision.outcome == "match"
    assert adapted(voices["fangjun"]) == []


def test_a_confident_match_joins_its_voice_and_raises_its_threshold(household, settings):
    settings.VOICEPRINT_ADAPTATION = True
    owner, kitchen, voices = household
    fangjun = voices["fangjun"]
    before = Voice.objects.get(pk=fangjun.pk)
    speech_before = voice_enrollment(voice_get(owner, voice_id=fangjun.voice_id)).speech_seconds

    result = identify(owner, kitchen, make.probe_speech("fangjun", 1))
    assert result.decision.outcome == "match" and result.best.probability >= 0.99

    after = Voice.objects.get(pk=fangjun.pk)
    [sample] = adapted(after)
    assert sample.speech_seconds >= DEFAULT_RULE.min_speech_seconds
    assert 0 < after.adaptation_share <= DEFAULT_RULE.max_share
    assert not np.allclose(after.centroid, before.centroid)
    # The next decision is at the raised threshold; enrolled speech is unchanged.
    again = identify(owner, kitchen, make.probe_speech("fangjun", 2))
    scored = {s.voice.voice_id: s for s in again.decision.ranked}
    raised = raised_threshold(after.threshold, share=after.adaptation_share)
    assert raised > after.threshold
    assert scored[fangjun.voice_id].threshold == pytest.approx(raised)
    enrollment = voice_enrollment(voice_get(owner, voice_id=fangjun.voice_id))
    assert enrollment.speech_seconds == speech_before
    assert adapted(voices["leijun"]) == []


@pytest.mark.parametrize("stranger", ["speaker2_a_cn", "liudehua"])
def test_strangers_teach_nothing(household, settings, stranger):
    settings.VOICEPRINT_ADAPTATION = True
    owner, kitchen, voices = household
    audio = make.probe_speech(stranger) if stranger == "liudehua" else make.trial_speech(stranger)
    result = identify(owner, kitchen, audio)
    assert result.decision.outcome != "match"
    assert all(adapted(v) == [] for v in voices.values())


def test_adaptation_samples_are_capped_and_removable(household, settings):
    settings.VOICEPRINT_ADAPTATION = True
    _, _, voices = household
    fangjun = voices["fangjun"]
    enrollment_pks = set(fangjun.samples.values_list("pk", flat=True))
    for _ in range(DEFAULT_RULE.max_samples + 2):
        assert voice_verify(fangjun, audio=make.probe_speech("fangjun", 1)).verified
    kept = adapted(fangjun)
    assert len(kept) == DEFAULT_RULE.max_samples
    assert enrollment_pks <= set(fangjun.samples.values_list("pk", flat=True))

    for sample in kept:
        voice_sample_delete(fangjun, sample_id=sample.pk)
    fangjun.refresh_from_db()
    assert adapted(fangjun) == [] and fangjun.adaptation_share == 0.0
    assert set(fangjun.samples.values_list("pk", flat=True)) == enrollment_pks
