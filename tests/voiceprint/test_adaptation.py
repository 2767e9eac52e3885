"""voiceprint.adaptation, the safe-adaptation rule: which decision qualifies, the cap on
adaptation samples, the centroid they form with the enrollment samples, and the threshold.

Pure: decisions are built from their parts (voices are names), embeddings are real GE2E
vectors of shared LibriSpeech speech.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import engine
from engine.quality import ProbeQuality
from tests.engine.conftest import librispeech_windows
from voiceprint.adaptation import (
    DEFAULT_RULE,
    AdaptationRule,
    adaptation_share,
    adaptation_voice,
    adapted_centroid,
    adapted_threshold,
    samples_after_adding,
    samples_to_replace,
)
from voiceprint.decision import Decision, VoiceScore

RULE = DEFAULT_RULE
GOOD = ProbeQuality(
    speech_seconds=RULE.min_speech_seconds + 0.5, snr_db=RULE.min_snr_db + 5, clipping=0.0
)


def _decision(outcome: str = "match", probability: float | None = 0.9999) -> Decision:
    best = VoiceScore(voice="anna", cosine=0.8, threshold=0.75, z=5.0, probability=probability)
    runner_up = VoiceScore(voice="ben", cosine=0.4, threshold=0.75, z=0.0, probability=0.01)
    return Decision(outcome=outcome, ranked=[best, runner_up])


def test_a_confident_match_of_a_good_probe_joins_the_matched_voice():
    assert adaptation_voice(_decision(), GOOD) == "anna"


@pytest.mark.parametrize(
    ("decision", "quality"),
    [
        (_decision("uncertain"), GOOD),
        (_decision("no_match"), GOOD),
        (_decision(probability=RULE.min_probability - 0.001), GOOD),
        (_decision(probability=None), GOOD),  # raw cosine rule: no calibrated evidence
        (_decision(), dataclasses.replace(GOOD, speech_seconds=RULE.min_speech_seconds - 0.1)),
        (_decision(), dataclasses.replace(GOOD, snr_db=RULE.min_snr_db - 0.1)),
        (_decision(), dataclasses.replace(GOOD, clipping=RULE.max_clipping + 0.01)),
        (Decision(outcome="no_match", ranked=[]), GOOD),
    ],
    ids=["uncertain", "no_match", "unsure", "uncalibrated", "short", "noisy", "clipped", "empty"],
)
def test_anything_less_does_not_qualify(decision, quality):
    assert adaptation_voice(decision, quality) is None


def test_the_limits_themselves_qualify():
    edge = ProbeQuality(
        speech_seconds=RULE.min_speech_seconds, snr_db=RULE.min_snr_db, clipping=RULE.max_clipping
    )
    assert adaptation_voice(_decision(probability=RULE.min_probability), edge) == "anna"


def test_the_cap_replaces_the_oldest_adaptation_samples_only():
    rule = AdaptationRule(max_samples=3)
    samples: list[int] = []
    for sample in range(5):
        samples = samples_after_adding(samples, sample, rule=rule)
        assert len(samples) <= 3
    assert samples == [2, 3, 4]
    assert samples_to_replace([2, 3, 4], rule=rule) == [2]
    assert samples_to_replace([3, 4], rule=rule) == []
    # A voice over the cap (the setting lowered since) sheds all its oldest at once.
    assert samples_after_adding([1, 2, 3, 4], 5, rule=rule) == [3, 4, 5]


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    """Real embeddings of 8 speakers: rows 0-2 stand for enrollment, the rest adaptation."""
    return np.stack([engine.embed_waveform(w, "ge2e").vector for w in librispeech_windows(8, 3.0)])


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def test_without_adaptation_samples_the_centroid_is_the_enrollment_one(vectors):
    enrollment = vectors[:3]
    expected = _unit(enrollment.mean(axis=0))  # voice_centroid_refresh's
    np.testing.assert_allclose(adapted_centroid(enrollment), expected, atol=1e-6)
    np.testing.assert_allclose(adapted_centroid(enrollment, []), expected, atol=1e-6)
    with pytest.raises(ValueError):
        adapted_centroid(vectors[:0], vectors[3:])


def test_plain_mean_weighs_every_sample_the_same(vectors):
    plain = AdaptationRule(max_share=1.0)
    centroid = adapted_centroid(vectors[:3], vectors[3:], rule=plain)
    np.testing.assert_allclose(centroid, _unit(vectors.mean(axis=0)), atol=1e-6)
    assert np.linalg.norm(centroid) == pytest.approx(1.0, abs=1e-6)


def test_enrollment_weighted_caps_the_adaptation_share(vectors):
    half = AdaptationRule(max_share=0.5)
    enrollment, adaptation = vectors[:3], vectors[3:]
    # Five adaptation samples against three enrollment ones: together they weigh as much
    # as the enrollment samples, not 5/8 of the centroid.
    expected = _unit(enrollment.mean(axis=0) + adaptation.mean(axis=0))
    np.testing.assert_allclose(
        adapted_centroid(enrollment, adaptation, rule=half), expected, atol=1e-6
    )
    # Below the share, every sample weighs the same, as in the plain mean.
    np.testing.assert_allclose(
        adapted_centroid(enrollment, adaptation[:2], rule=half),
        _unit(vectors[:5].mean(axis=0)),
        atol=1e-6,
    )
    # No share: adaptation samples never move the centroid.
    np.testing.assert_allclose(
        adapted_centroid(enrollment, adaptation, rule=AdaptationRule(max_share=0.0)),
        adapted_centroid(enrollment),
        atol=1e-6,
    )


def test_the_threshold_rises_with_the_adaptation_share():
    rule = AdaptationRule(max_share=0.5, threshold_raise=0.05)
    assert adapted_threshold(0.75, enrolled=3, adapted=0, rule=rule) == 0.75
    assert adapted_threshold(0.75, enrolled=3, adapted=1, rule=rule) == pytest.approx(0.7625)
    # From half the weight on, the share (and the raise) stays at the cap.
    assert adapted_threshold(0.75, enrolled=3, adapted=3, rule=rule) == pytest.approx(0.775)
    assert adapted_threshold(0.75, enrolled=3, adapted=9, rule=rule) == pytest.approx(0.775)
    # "Never" stays never; a threshold just below it does not become never.
    assert adapted_threshold(1.0, enrolled=3, adapted=9, rule=rule) == 1.0
    assert adapted_threshold(0.99, enrolled=3, adapted=9, rule=rule) < 1.0
    assert adaptation_share(3, 9, rule=AdaptationRule(max_share=1.0)) == pytest.approx(0.75)
