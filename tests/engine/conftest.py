"""Shared fixtures of the engine tests: real speech from ../shared, made into test inputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

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
