"""Shared fixtures of the engine tests: real speech from ../shared, made into test inputs."""

from __future__ import annotations

import dataclasses
import io
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile

from engine.scoring import Calibration, Scorer, ThresholdMap
from tests.conftest import SHARED_AUDIO as AUDIO_DIR
from tests.conftest import require_shared

ZH_DIR = AUDIO_DIR / "zh"
TRIAL_DIR = ZH_DIR / "test" / "3d-speaker"
LIBRISPEECH_DIR = AUDIO_DIR / "librispeech-train-clean-100"


def require_shared_audio(path: Path = AUDIO_DIR) -> Path:
    """`path` in the shared audio; skips the calling test without it (fails under CI)."""
    return require_shared(path)


def shared_files(folder: Path, pattern: str = "*.wav") -> list[Path]:
    """The files of a shared folder, sorted; skips without the folder (fails under CI)."""
    files = sorted(require_shared_audio(folder).glob(pattern))
    assert files, f"no {pattern} in {folder}"
    return files


def read_speech(path: Path) -> np.ndarray:
    """A shared 16 kHz mono file as float32."""
    samples, rate = soundfile.read(require_shared_audio(path), dtype="float32")
    assert rate == 16_000 and samples.ndim == 1, path
    return samples


def librispeech_windows(count: int, seconds: float, start: float = 0.25) -> list[np.ndarray]:
    """`seconds` of speech from `start` of each of the first `count` LibriSpeech utterances
    (file-name order) long enough for it: one window per speaker."""
    first, length = int(start * 16_000), int(seconds * 16_000)
    windows = []
    for path in shared_files(LIBRISPEECH_DIR, "*.flac"):
        samples = read_speech(path)
        if len(samples) >= first + length:
            windows.append(samples[first : first + length])
        if len(windows) == count:
            return windows
    raise AssertionError(f"fewer than {count} utterances of {seconds} s in {LIBRISPEECH_DIR}")


def power(samples: np.ndarray) -> float:
    return float(np.mean(np.square(samples, dtype=np.float64)))


def babble(talkers: list[np.ndarray]) -> np.ndarray:
    """Several talkers at once, each brought to the same power: the noise of a room where
    others speak (or a TV does)."""
    return sum(talker / np.sqrt(power(talker)) for talker in talkers)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`speech` plus `noise` scaled so that their power ratio over the whole recording is
    `snr_db`; the sum is scaled down if it would clip (which leaves the ratio as it is)."""
    noise = noise[: len(speech)]
    mixed = speech + np.sqrt(power(speech) / power(noise) / 10 ** (snr_db / 10)) * noise
    return (mixed / max(1.0, float(np.max(np.abs(mixed))) / 0.9)).astype(np.float32)


def to_bytes(
    samples: np.ndarray, rate: int = 16_000, fmt: str = "WAV", subtype: str | None = None
) -> bytes:
    """Encode samples (frames[, channels]) as a file in memory, as a client would upload it."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def long_flac(seconds: int, rate: int, channels: int, start: np.ndarray | None = None) -> bytes:
    """A FLAC of `seconds`: `start` (mono, at `rate`, on every channel), then silence.
    Silence compresses to almost nothing: this is how a small upload claims a long recording.
    """
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        if start is not None:
            f.write(np.repeat(start[:, None], channels, axis=1))
        silent_second = np.zeros((rate, channels), dtype=np.int16)
        for _ in range(seconds - (0 if start is None else int(np.ceil(len(start) / rate)))):
            f.write(silent_second)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """About 5 s of one Mandarin speaker, mostly voiced."""
    return read_speech(ZH_DIR / "enroll" / "fangjun-sr-2.wav")


@pytest.fixture(scope="session")
def long_speech() -> np.ndarray:
    """About 10 s of continuous speech (two files of one speaker joined)."""
    first = read_speech(ZH_DIR / "test" / "leijun-test-sr-1.wav")
    second = read_speech(ZH_DIR / "test" / "leijun-test-sr-2.wav")
    return np.concatenate([first, second])[: 10 * 16_000]


@pytest.fixture(scope="session")
def ge2e():
    """The GE2E engine, loaded once for the session."""
    from engine.ge2e import GE2EEngine

    return GE2EEngine()


# --------------------------------------------------------------------------- a real scorer

#: LibriSpeech speakers (file-name order) whose GE2E embeddings are the test cohort; the
#: next `MAP_SPEAKERS` are the impostor trials the threshold map is measured on.
COHORT_SPEAKERS = 40
MAP_SPEAKERS = 12
COHORT_TOP_N = 16
#: The default GE2E threshold (voiceprint.thresholds; engine/ knows no app).
GE2E_DEFAULT_THRESHOLD = 0.75


@cache
def librispeech_ge2e(count: int = COHORT_SPEAKERS + MAP_SPEAKERS) -> np.ndarray:
    """GE2E embeddings of 4 s of each of the first `count` LibriSpeech speakers whose
    window holds enough speech."""
    from engine import InsufficientSpeechError, embed_waveform

    vectors = []
    for window in librispeech_windows(count + 16, 4.0):
        try:
            vectors.append(embed_waveform(window, "ge2e").vector)
        except InsufficientSpeechError:
            continue  # a window of mostly pauses: the next speaker instead
        if len(vectors) == count:
            return np.stack(vectors)
    raise AssertionError(f"fewer than {count} LibriSpeech windows with enough speech")


def ge2e_scorer(
    *,
    slope: float = 1.5,
    uncertain_probability: float = 0.2,
    close_margin: float = 0.5,
) -> Scorer:
    """A real GE2E scorer made here, not the shipped one: the cohort is LibriSpeech speakers,
    the threshold map is measured on the impostor pairs of other LibriSpeech speakers, and the
    calibration is chosen: llr = slope * (z - the z of the default threshold), quality aside,
    so a probe scoring exactly that z is 50% likely."""
    embeddings = librispeech_ge2e()
    cohort, others = embeddings[:COHORT_SPEAKERS], embeddings[COHORT_SPEAKERS:]
    unmapped = Scorer(
        cohort=cohort,
        calibration=Calibration(
            engine="ge2e", dim=cohort.shape[1], weights=np.zeros(5), bias=0.0, prior_logit=0.0,
            threshold_map=ThresholdMap(0.0, 1.0, 0.0, 1.0), uncertain_probability=0.0,
            close_margin=0.0, top_n=COHORT_TOP_N,
        ),
    )  # fmt: skip
    mapping = measured_threshold_map(unmapped, others)
    z_default = mapping.z_threshold(GE2E_DEFAULT_THRESHOLD)
    calibration = dataclasses.replace(
        unmapped.calibration,
        weights=np.array([slope, 0.0, 0.0, 0.0, 0.0]),
        bias=-slope * z_default,
        threshold_map=mapping,
        uncertain_probability=uncertain_probability,
        close_margin=close_margin,
        training={"trained_on": "tests", "speakers": len(embeddings)},
    )
    return Scorer(cohort=cohort, calibration=calibration)


def measured_threshold_map(scorer: Scorer, speakers: np.ndarray) -> ThresholdMap:
    """Mean and spread of the cosine and of the z of every pair of different `speakers`."""
    cosines, zs = [], []
    for i, probe in enumerate(speakers[:-1]):
        enrolled = speakers[i + 1 :]
        pair_cosines = enrolled @ probe
        cosines.extend(pair_cosines)
        zs.extend(scorer.normalise(pair_cosines, enrolled, probe))
    return ThresholdMap(
        cosine_mean=float(np.mean(cosines)),
        cosine_std=float(np.std(cosines)),
        z_mean=float(np.mean(zs)),
        z_std=float(np.std(zs)),
    )
