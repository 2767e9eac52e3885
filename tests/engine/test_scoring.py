"""engine.scoring: AS-norm on real speech, the calibration's features, and its files.

The scorer is built here from GE2E embeddings of LibriSpeech speakers (tests/engine/conftest.py
`ge2e_scorer`), not read from engine/heads: these tests hold whether or not one is shipped.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import cache

import numpy as np
import pytest

import engine
from engine.scoring import (
    calibration_path,
    cohort_path,
    quality_features,
    read_scorer,
    save_scorer,
)
from tests import factories as make
from tests.engine.conftest import GE2E_DEFAULT_THRESHOLD, ge2e_scorer


@pytest.fixture(scope="module")
def scorer():
    return ge2e_scorer()


@cache
def embedding(stem: str) -> np.ndarray:
    return engine.embed_audio(make.trial_speech(stem), "ge2e").vector


def z_of(scorer, enrolled: np.ndarray, probe: np.ndarray) -> float:
    cosine = np.array([float(enrolled @ probe)])
    return float(scorer.normalise(cosine, enrolled[None, :], probe)[0])


# --------------------------------------------------------------------------- AS-norm


@pytest.mark.parametrize("language", ["en", "cn"])
def test_as_norm_scores_the_same_speaker_above_another_and_the_default_threshold_between(
    scorer, language
):
    """3D-Speaker's held-out trials: speaker1_a/speaker1_b one person, speaker2_a another."""
    enrolled = embedding(f"speaker1_a_{language}")
    same = z_of(scorer, enrolled, embedding(f"speaker1_b_{language}"))
    other = z_of(scorer, enrolled, embedding(f"speaker2_a_{language}"))

    assert same > scorer.z_threshold(GE2E_DEFAULT_THRESHOLD) > other


def test_as_norm_is_symmetric_in_enrollment_and_probe(scorer):
    first, second = embedding("speaker1_a_en"), embedding("speaker2_a_en")

    assert z_of(scorer, first, second) == pytest.approx(z_of(scorer, second, first), abs=1e-9)


def test_cohort_stats_are_those_of_the_top_n_cohort_cosines(scorer):
    probe = embedding("speaker1_b_en")
    top_n = scorer.calibration.top_n
    top = np.sort(scorer.cohort @ probe)[::-1][:top_n]

    mean, std = scorer.cohort_stats(probe)

    assert len(scorer.cohort) > top_n
    assert mean[0] == pytest.approx(top.mean(), abs=1e-6)
    assert std[0] == pytest.approx(top.std(), abs=1e-6)


def test_the_threshold_map_is_monotonic_and_maps_its_impostor_mean_onto_z_mean(scorer):
    mapping = scorer.calibration.threshold_map
    thresholds = [0.5, 0.6, 0.7, 0.75, 0.8, 0.9]
    zs = [scorer.z_threshold(t) for t in thresholds]

    assert zs == sorted(zs) and len(set(zs)) == len(zs)
    assert scorer.z_threshold(mapping.cosine_mean) == pytest.approx(mapping.z_mean)


def test_probability_is_one_half_at_even_evidence_and_rises_with_z(scorer):
    z_default = scorer.z_threshold(GE2E_DEFAULT_THRESHOLD)
    llr = scorer.llr(np.array([z_default - 1, z_default, z_default + 1]), speech_seconds=4.0,
                     snr_db=20.0)  # fmt: skip

    probability = scorer.probability(llr)

    assert probability[1] == pytest.approx(0.5)
    assert probability[0] < 0.5 < probability[2]


# --------------------------------------------------------------------------- features


def test_quality_features_clip_snr_and_speech_to_the_calibrated_range():
    z = np.array([2.0])

    def features(speech: float, snr: float) -> np.ndarray:
        return quality_features(z, speech, snr)[0]

    np.testing.assert_array_equal(features(4.0, -20.0), features(4.0, 0.0))
    np.testing.assert_array_equal(features(4.0, 80.0), features(4.0, 30.0))
    np.testing.assert_array_equal(features(0.1, 15.0), features(0.5, 15.0))
    np.testing.assert_array_equal(features(60.0, 15.0), features(8.0, 15.0))
    # [z, z*snr, z*length, snr, length]: 15 dB is half the range, 2 s is length 0.
    np.testing.assert_allclose(features(2.0, 15.0), [2.0, 1.0, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(features(8.0, 30.0), [2.0, 2.0, 2 * np.log(4.0), 1.0, np.log(4.0)])


def test_quality_features_broadcast_one_probe_over_many_voices():
    z = np.array([1.0, -1.0, 3.0])

    features = quality_features(z, 4.0, 15.0)

    assert features.shape == (3, 5)
    np.testing.assert_allclose(features[:, 0], z)
    np.testing.assert_allclose(features[:, 3], 0.5)


# --------------------------------------------------------------------------- files


def test_save_and_read_round_trip(scorer, tmp_path):
    save_scorer(scorer, tmp_path, script="tests")

    read = read_scorer("ge2e", tmp_path)

    assert read is not None and read.engine == "ge2e"
    np.testing.assert_array_equal(read.cohort, scorer.cohort)
    saved, loaded = scorer.calibration, read.calibration
    np.testing.assert_allclose(loaded.weights, saved.weights, atol=1e-6)
    assert loaded.bias == pytest.approx(saved.bias, abs=1e-6)
    assert (loaded.dim, loaded.top_n, loaded.prior_logit) == (256, saved.top_n, saved.prior_logit)
    for key in ("cosine_mean", "cosine_std", "z_mean", "z_std"):
        assert getattr(loaded.threshold_map, key) == pytest.approx(
            getattr(saved.threshold_map, key), abs=1e-6
        )
    assert (loaded.uncertain_probability, loaded.close_margin) == (
        saved.uncertain_probability,
        saved.close_margin,
    )
    assert loaded.training == saved.training
    probe = embedding("speaker1_b_en")
    z = read.normalise(scorer.cohort[:3] @ probe, scorer.cohort[:3], probe)
    np.testing.assert_allclose(z, scorer.normalise(scorer.cohort[:3] @ probe,
                                                   scorer.cohort[:3], probe))  # fmt: skip


def test_no_files_is_no_scorer_and_no_error(scorer, tmp_path, caplog):
    assert read_scorer("ge2e", tmp_path) is None
    save_scorer(scorer, tmp_path)
    cohort_path("ge2e", tmp_path).unlink()  # one of the two is not enough

    with caplog.at_level(logging.ERROR, logger="engine.scoring"):
        assert read_scorer("ge2e", tmp_path) is None
    assert not caplog.records


def rewrite_calibration(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


CORRUPTIONS = {
    "truncated json": lambda d: calibration_path("ge2e", d).write_text('{"format": "voi'),
    "not utf-8": lambda d: calibration_path("ge2e", d).write_bytes(b"\xff\xfe\x00garbage"),
    "another format": lambda d: rewrite_calibration(
        calibration_path("ge2e", d), "voiceprint-calibration/1", "voiceprint-calibration/9"
    ),
    "a part missing": lambda d: rewrite_calibration(
        calibration_path("ge2e", d), '"threshold_map"', '"threshold_mop"'
    ),
    "too few weights": lambda d: rewrite_calibration(
        calibration_path("ge2e", d), '"weights": [', '"weights": [1.0], "_": ['
    ),
    "a calibration of another engine": lambda d: rewrite_calibration(
        calibration_path("ge2e", d), '"engine": "ge2e"', '"engine": "campplus"'
    ),
    "a cohort of another dimension": lambda d: np.save(
        cohort_path("ge2e", d), np.ones((8, 192), dtype=np.float32)
    ),
    "a cohort of one vector": lambda d: np.save(
        cohort_path("ge2e", d), np.ones(256, dtype=np.float32)
    ),
    "a cohort that is no array": lambda d: cohort_path("ge2e", d).write_bytes(b"\x00" * 64),
    "a truncated cohort": lambda d: cohort_path("ge2e", d).write_bytes(
        cohort_path("ge2e", d).read_bytes()[:200]
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_an_unusable_file_is_logged_and_read_as_no_scorer(scorer, tmp_path, caplog, corruption):
    save_scorer(scorer, tmp_path)
    CORRUPTIONS[corruption](tmp_path)

    with caplog.at_level(logging.ERROR, logger="engine.scoring"):
        assert read_scorer("ge2e", tmp_path) is None

    (record,) = caplog.records
    assert record.levelno == logging.ERROR and "ge2e" in record.getMessage()


def test_files_saved_for_one_engine_are_not_read_for_another(scorer, tmp_path):
    other = dataclasses.replace(
        scorer, calibration=dataclasses.replace(scorer.calibration, engine="campplus")
    )
    save_scorer(other, tmp_path)

    assert read_scorer("ge2e", tmp_path) is None
    assert read_scorer("campplus", tmp_path) is not None
