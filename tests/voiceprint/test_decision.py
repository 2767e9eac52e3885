"""voiceprint.decision, the one rule: a probe's scores against voices -> match, no_match or
uncertain (too_close, weak_evidence), with an engine's scorer or without one (raw cosine).

Pure: no database, voices are their names. Real GE2E embeddings of shared speech; the scorer
is made in the tests (tests/engine/conftest.py `ge2e_scorer`: a LibriSpeech cohort, its
impostor threshold map, and a chosen calibration), so these hold whatever engine/heads ships.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cache

import numpy as np
import pytest

import engine
from tests import factories as make
from tests.engine.conftest import GE2E_DEFAULT_THRESHOLD, ge2e_scorer
from voiceprint.decision import (
    CLEAN_SNR_DB,
    MAX_RELIEF,
    OUTCOMES,
    VoiceScore,
    cosine_floor,
    decide,
    is_match,
    is_match_by_distance,
    refuse_spoof,
    score_voices,
)

DEFAULT = GE2E_DEFAULT_THRESHOLD
THRESHOLDS = [0.0, 0.25, 0.5, 0.731, 0.75, 0.9, 1.0]


@pytest.fixture(scope="module")
def scorer():
    return ge2e_scorer()


@cache
def embedded(audio: bytes) -> engine.EmbeddingResult:
    return engine.embed_audio(audio, "ge2e")


def enrolled(*stems: str) -> np.ndarray:
    """Centroids of voices enrolled from one 3D-Speaker trial file each."""
    return np.stack([embedded(make.trial_speech(stem)).vector for stem in stems])


def degraded(stem: str, seconds: float, snr_db: float) -> engine.EmbeddingResult:
    """`seconds` of a trial file with three LibriSpeech talkers over it at `snr_db`."""
    return embedded(make.with_babble(make.clip(make.trial_speech(stem), 0.5, seconds), snr_db))


def decision_for(probe, voices, centroids, scorer, thresholds=None, **kwargs):
    thresholds = thresholds or [DEFAULT] * len(voices)
    ranked = score_voices(
        voices, centroids=centroids, thresholds=thresholds, probe=probe, scorer=scorer, **kwargs
    )
    return decide(ranked, scorer)


# --------------------------------------------------------------------------- the raw rule


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


def test_without_a_scorer_a_voice_passes_by_its_own_cosine_threshold():
    assert VoiceScore(voice="lenient", cosine=0.7, threshold=0.6).passes
    assert not VoiceScore(voice="strict", cosine=0.7, threshold=0.8).passes
    assert VoiceScore(voice="strict", cosine=0.8, threshold=0.8).passes


def test_without_a_scorer_two_voices_of_one_recording_still_match_never_uncertain(shared_audio):
    probe = embedded(make.trial_speech("speaker1_b_en"))
    centroids = enrolled("speaker1_a_en", "speaker1_a_en", "speaker2_a_en")

    decision = decision_for(probe, ["first", "twin", "speaker2"], centroids, None)

    assert decision.outcome == "match" and decision.reason is None
    assert decision.best.voice in ("first", "twin")
    assert all(s.z is s.z_threshold is s.probability is None for s in decision.ranked)
    assert decision.best.cosine >= DEFAULT


def test_without_a_scorer_a_stranger_is_no_match_and_a_strict_threshold_refuses(shared_audio):
    centroids = enrolled("speaker1_a_en", "speaker1_a_cn")
    voices = ["speaker1_en", "speaker1_cn"]
    stranger = embedded(make.trial_speech("speaker2_a_en"))
    genuine = embedded(make.trial_speech("speaker1_b_en"))

    assert decision_for(stranger, voices, centroids, None).outcome == "no_match"
    best = decision_for(genuine, voices, centroids, None).best
    strict = [math.nextafter(best.cosine, 2.0)] * 2
    refused = decision_for(genuine, voices, centroids, None, thresholds=strict)
    assert refused.outcome == "no_match" and refused.best.cosine == best.cosine


def test_no_voice_is_no_match(scorer):
    ranked = score_voices([], centroids=np.zeros((0, 256)), thresholds=[], probe=None,
                          scorer=scorer)  # fmt: skip

    assert ranked == []
    for rule in (None, scorer):
        decision = decide(ranked, rule)
        assert (decision.outcome, decision.best, decision.reason) == ("no_match", None, None)


# --------------------------------------------------------------------------- with a scorer


VOICES = ["speaker1", "speaker2", "leijun"]


@pytest.fixture
def gallery(shared_audio) -> np.ndarray:
    """speaker1 and speaker2 (3D-Speaker, en) and leijun (zh/enroll), one recording each."""
    leijun = embedded(make.speech("leijun", 1)).vector
    return np.vstack([enrolled("speaker1_a_en", "speaker2_a_en"), leijun[None, :]])


def test_a_held_out_recording_of_an_enrolled_speaker_matches(scorer, gallery):
    decision = decision_for(embedded(make.trial_speech("speaker1_b_en")), VOICES, gallery, scorer)

    assert decision.outcome == "match" and decision.matched and decision.reason is None
    best, *others = decision.ranked
    assert best.voice == "speaker1" and best.passes
    assert best.z_threshold == pytest.approx(scorer.z_threshold(DEFAULT))
    assert best.z >= best.z_threshold and best.probability > 0.5
    assert all(o.z < best.z - scorer.calibration.close_margin for o in others)
    assert [s.z for s in decision.ranked] == sorted((s.z for s in decision.ranked), reverse=True)
    assert all(0.0 <= s.probability <= 1.0 for s in decision.ranked)


def test_a_stranger_is_no_match(scorer, gallery):
    """speaker1's held-out recording against a gallery without speaker1."""
    probe = embedded(make.trial_speech("speaker1_b_en"))

    decision = decision_for(probe, VOICES[1:], gallery[1:], scorer)

    assert decision.outcome == "no_match" and not decision.matched
    assert not decision.best.passes
    assert decision.best.probability < scorer.calibration.uncertain_probability


def test_two_voices_of_one_recording_are_too_close_to_tell_apart(scorer, gallery):
    probe = embedded(make.trial_speech("speaker1_b_en"))
    centroids = np.vstack([gallery, gallery[:1]])

    decision = decision_for(probe, [*VOICES, "speaker1 again"], centroids, scorer)

    assert decision.outcome == "uncertain" and decision.reason == "too_close"
    assert not decision.matched
    assert {s.voice for s in decision.ranked[:2]} == {"speaker1", "speaker1 again"}
    assert decision.ranked[0].passes and decision.ranked[1].passes


def test_two_voices_of_one_speaker_are_too_close_within_the_margin_only(scorer, shared_audio):
    """fangjun enrolled twice from different recordings: uncertain when the margin exceeds
    the z gap between the two voices, a match of the better one when it does not."""
    probe = embedded(make.probe_speech("fangjun", 1))
    centroids = np.stack([embedded(make.speech("fangjun", n)).vector for n in (1, 2)])
    voices = ["fangjun-1", "fangjun-2"]
    first, second = decision_for(probe, voices, centroids, scorer).ranked
    gap = first.z - second.z
    assert gap > 0 and first.passes and second.passes

    def with_margin(margin: float):
        calibration = dataclasses.replace(scorer.calibration, close_margin=margin)
        return decision_for(
            probe, voices, centroids, dataclasses.replace(scorer, calibration=calibration)
        )

    assert (with_margin(gap * 1.01).outcome, with_margin(gap * 1.01).reason) == (
        "uncertain",
        "too_close",
    )
    assert with_margin(gap * 0.99).outcome == "match"
    assert with_margin(gap * 0.99).best.voice == first.voice


def test_a_short_noisy_recording_of_an_enrolled_speaker_is_weak_evidence(scorer, shared_audio):
    """1.5 s of speaker1_b_cn under babble at 0 dB: below the threshold, yet likely enough
    to be worth asking again; at a stricter uncertain_probability it is no_match."""
    probe = degraded("speaker1_b_cn", 1.5, 0.0)
    centroids = enrolled("speaker1_a_cn", "speaker2_a_en")
    voices = ["speaker1", "speaker2"]
    clean = decision_for(embedded(make.trial_speech("speaker1_b_cn")), voices, centroids, scorer)

    decision = decision_for(probe, voices, centroids, scorer)

    assert clean.outcome == "match"
    best = decision.best
    assert best.voice == "speaker1" and best.z < best.z_threshold and not best.passes
    assert best.z < clean.best.z  # the noise and the length cost evidence
    assert best.probability >= scorer.calibration.uncertain_probability
    assert (decision.outcome, decision.reason) == ("uncertain", "weak_evidence")
    stricter = dataclasses.replace(
        scorer.calibration, uncertain_probability=math.nextafter(best.probability, 1.0)
    )
    refused = decision_for(
        probe, voices, centroids, dataclasses.replace(scorer, calibration=stricter)
    )
    assert (refused.outcome, refused.reason) == ("no_match", None)


def test_the_voices_threshold_maps_onto_a_z_threshold(scorer, gallery):
    """A stricter voice threshold is a higher z threshold: the same probe stops matching."""
    probe = embedded(make.trial_speech("speaker1_b_en"))
    lenient = decision_for(probe, VOICES, gallery, scorer)
    mapping = scorer.calibration.threshold_map
    # The cosine threshold whose z threshold lies one z above the score.
    strict_cosine = (
        mapping.cosine_mean
        + (lenient.best.z + 1.0 - mapping.z_mean) / mapping.z_std * mapping.cosine_std
    )

    strict = decision_for(
        probe, VOICES, gallery, scorer, thresholds=[strict_cosine, DEFAULT, DEFAULT]
    )

    assert lenient.outcome == "match"
    # A threshold of 1 or more never passes, as under the raw rule (a genuine clean probe's z
    # can exceed the linear map's z for a cosine of 1).
    expected = lenient.best.z + 1.0 if strict_cosine < 1.0 else math.inf
    assert strict.best.z_threshold == pytest.approx(expected)
    assert strict.best.z == pytest.approx(lenient.best.z) and not strict.best.passes
    assert strict.outcome in ("uncertain", "no_match")


# --------------------------------------------------------------------------- operating point


def test_an_operating_point_replaces_the_threshold_of_voices_at_the_default_only(scorer, gallery):
    probe = embedded(make.trial_speech("speaker1_b_en"))
    custom = 0.8
    point = scorer.z_threshold(DEFAULT) + 1.0

    ranked = score_voices(
        VOICES, centroids=gallery, thresholds=[DEFAULT, custom, DEFAULT], probe=probe,
        scorer=scorer, default_threshold=DEFAULT, operating_point=point,
    )  # fmt: skip

    z_thresholds = {s.voice: s.z_threshold for s in ranked}
    assert z_thresholds == {
        "speaker1": point,
        "speaker2": pytest.approx(scorer.z_threshold(custom)),
        "leijun": point,
    }


def test_a_raised_threshold_moves_every_voice_by_its_raise(scorer, gallery):
    """Adaptation raises a voice's threshold (voiceprint.adaptation): the score carries the
    raised one, and a voice on the operating point moves by as much in z."""
    probe = embedded(make.trial_speech("speaker1_b_en"))
    custom, raise_ = 0.8, 0.03
    point = scorer.z_threshold(DEFAULT) + 1.0

    ranked = score_voices(
        VOICES, centroids=gallery, thresholds=[DEFAULT, custom, DEFAULT], probe=probe,
        scorer=scorer, default_threshold=DEFAULT, operating_point=point,
        raised=[DEFAULT + raise_, custom + raise_, DEFAULT],
    )  # fmt: skip

    by_voice = {s.voice: s for s in ranked}
    shift = scorer.z_threshold(DEFAULT + raise_) - scorer.z_threshold(DEFAULT)
    assert shift > 0
    assert by_voice["speaker1"].z_threshold == pytest.approx(point + shift)
    assert by_voice["speaker1"].threshold == pytest.approx(DEFAULT + raise_)
    assert by_voice["speaker2"].z_threshold == pytest.approx(scorer.z_threshold(custom + raise_))
    assert by_voice["leijun"].z_threshold == point


def test_an_operating_point_above_the_score_refuses_what_the_default_accepts(scorer, gallery):
    probe = embedded(make.trial_speech("speaker1_b_en"))
    accepted = decision_for(probe, VOICES, gallery, scorer, default_threshold=DEFAULT)
    above = math.nextafter(accepted.best.z, math.inf)

    refused = decision_for(probe, VOICES, gallery, scorer, default_threshold=DEFAULT,
                           operating_point=above)  # fmt: skip
    at = decision_for(probe, VOICES, gallery, scorer, default_threshold=DEFAULT,
                      operating_point=accepted.best.z)  # fmt: skip

    assert accepted.outcome == "match"
    assert refused.outcome != "match" and not refused.best.passes
    assert at.outcome == "match"  # z exactly on the operating point passes


def test_without_a_scorer_the_operating_point_is_ignored(gallery):
    probe = embedded(make.trial_speech("speaker1_b_en"))

    decision = decision_for(probe, VOICES, gallery, None, default_threshold=DEFAULT,
                            operating_point=1e9)  # fmt: skip

    assert decision.outcome == "match" and decision.best.z_threshold is None


def test_every_outcome_is_one_of_the_documented_four():
    assert OUTCOMES == ("match", "no_match", "uncertain", "spoof")


def test_a_refused_spoof_keeps_its_scores_and_never_matches():
    ranked = [VoiceScore(voice="a", cosine=0.99, threshold=0.5)]
    decision = refuse_spoof(decide(ranked, None))
    assert decision.outcome == "spoof" and not decision.matched
    assert decision.ranked == ranked and decision.reason == "spoof"


def test_the_cosine_floor_relaxes_with_noise_only():
    """Clean probes keep the plain threshold as a floor (the cohort cannot vouch for every
    language: Mandarin impostors' z runs high); noisy ones may go lower, by a bounded relief."""
    assert cosine_floor(0.75, snr_db=40.0) == 0.75
    assert cosine_floor(0.75, snr_db=CLEAN_SNR_DB) == 0.75
    floors = [cosine_floor(0.75, snr_db=snr) for snr in (25.0, 20.0, 15.0, 10.0, 0.0)]
    assert floors == sorted(floors, reverse=True)
    assert floors[-1] == pytest.approx(0.75 - MAX_RELIEF) == floors[-2]
