"""voiceprint.guidance without the database: the gates and the summary's wording."""

from __future__ import annotations

import pytest

from core.exceptions import ApiError, ErrorCode
from engine import ProbeQuality
from voiceprint.guidance import SampleFacts, enrollment_summary, quality_gate, quality_refusal


@pytest.fixture(autouse=True)
def limits(settings):
    settings.VOICEPRINT_ENROLL_TARGET_SECONDS = 10.0
    settings.VOICEPRINT_ENROLL_MIN_SPEECH_SECONDS = 1.5
    settings.VOICEPRINT_ENROLL_MIN_SNR_DB = 8.0
    settings.VOICEPRINT_ENROLL_MAX_CLIPPING = 0.01  # not the defaults: the wording is tested


def quality(speech: float = 4.0, snr: float = 30.0, clipping: float = 0.0) -> ProbeQuality:
    return ProbeQuality(speech_seconds=speech, snr_db=snr, clipping=clipping)


def test_a_good_recording_passes_every_gate():
    assert quality_refusal(quality()) is None
    quality_gate(quality(speech=1.5, snr=8.0, clipping=0.01))  # limits are inclusive


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (quality(speech=1.4), "too short: 1.4 s of speech"),
        (quality(snr=7.9), "too noisy: SNR 8 dB"),
        (quality(clipping=0.05), "too clipped: 5.0% of the samples"),
    ],
)
def test_gates_say_why(bad, reason):
    with pytest.raises(ApiError) as refused:
        quality_gate(bad)
    assert refused.value.code == ErrorCode.TOO_LITTLE_SPEECH
    assert reason in refused.value.message


def test_summary_counts_enrollment_speech_only_and_names_each_problem():
    samples = [
        SampleFacts(speech_seconds=3.2, snr_db=30.0, clipping=0.0, agreement=0.9),
        SampleFacts(speech_seconds=2.0, snr_db=11.0, clipping=0.04, agreement=0.5),
        SampleFacts(speech_seconds=2.0, snr_db=30.0, clipping=0.0, adaptation=True),
    ]
    summary = enrollment_summary(samples, agreement_threshold=0.75)
    assert summary.speech_seconds == 5.2
    assert summary.progress == 0.52
    assert summary.issues == [
        "add 5 s more speech",
        "noisy: SNR 11 dB in sample #1; a quieter recording helps",
        "clipped: 4.0% of sample #1 at full scale; lower the gain",
        "sample #1 does not agree with the others (score 0.500): if it is someone else, remove it",
    ]


def test_summary_of_a_complete_clean_enrollment_has_no_issues():
    summary = enrollment_summary(
        [SampleFacts(speech_seconds=12.0, snr_db=None, clipping=None)], agreement_threshold=0.75
    )
    assert summary.as_dict() == {
        "speech_seconds": 12.0,
        "target_speech_seconds": 10.0,
        "progress": 1.0,
        "issues": [],
    }
