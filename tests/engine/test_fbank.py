"""engine.fbank against an independent numpy implementation of Kaldi's fbank recipe."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from engine.fbank import compute_fbank, kaldi_fbank, num_frames
from tests.engine.conftest import ZH_DIR, require_shared_audio


def reference_fbank(waveform: np.ndarray, num_bins: int = 80, rate: int = 16_000) -> np.ndarray:
    """Kaldi / torchaudio.compliance.kaldi.fbank defaults, written out in float64 numpy:
    25 ms povey-windowed frames every 10 ms (snip_edges), DC removal, pre-emphasis 0.97,
    512-point power spectrum, Kaldi mel banks 20 Hz..Nyquist, log floored at float32 eps."""
    x = np.asarray(waveform, dtype=np.float64)
    length, shift, n_fft = 400, 160, 512
    count = 1 + (len(x) - length) // shift
    frames = x[np.arange(length)[None, :] + shift * np.arange(count)[:, None]]
    frames = frames - frames.mean(axis=1, keepdims=True)
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = frames - 0.97 * previous
    frames = frames * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / (length - 1))) ** 0.85
    power = np.abs(np.fft.rfft(frames, n=n_fft)) ** 2

    def mel(hz: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(hz) / 700.0)

    low, high = mel(20.0), mel(rate / 2)
    edges = low + (high - low) / (num_bins + 1) * np.arange(num_bins + 2)
    bin_mel = mel(np.arange(n_fft // 2) * rate / n_fft)  # Kaldi ignores the Nyquist bin
    banks = np.zeros((num_bins, n_fft // 2 + 1))
    for m in range(num_bins):
        rising = (bin_mel - edges[m]) / (edges[m + 1] - edges[m])
        falling = (edges[m + 2] - bin_mel) / (edges[m + 2] - edges[m + 1])
        banks[m, : n_fft // 2] = np.clip(np.minimum(rising, falling), 0.0, None)
    return np.log(np.maximum(power @ banks.T, np.finfo(np.float32).eps))


def _noisy_tone(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16_000 * seconds)) / 16_000
    signal = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    return signal.astype(np.float32)


def test_matches_numpy_reference_on_synthetic_audio() -> None:
    wave = _noisy_tone(0.5)
    ours = kaldi_fbank(wave)
    ref = reference_fbank(wave)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape == (num_frames(wave.size), 80)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_matches_numpy_reference_on_real_speech() -> None:
    clip = require_shared_audio(ZH_DIR / "enroll" / "fangjun-sr-1.wav")
    wave, rate = soundfile.read(clip, dtype="float32", frames=16_000)
    assert rate == 16_000
    np.testing.assert_allclose(kaldi_fbank(wave), reference_fbank(wave), atol=2e-3)


def test_frame_count_and_mean_normalisation() -> None:
    wave = _noisy_tone(1.0)
    feats = compute_fbank(wave)
    assert feats.shape == (98, 80)  # 1 + (16000 - 400) // 160
    assert feats.dtype == np.float32
    np.testing.assert_allclose(feats.mean(axis=0), 0.0, atol=1e-4)


def test_gain_is_removed_by_mean_subtraction() -> None:
    # A gain shifts log-mel by a constant per bin, except in bins clamped at the log
    # floor (near-empty low bins when quiet), so the check raises the level.
    wave = _noisy_tone(1.0, seed=1)
    assert kaldi_fbank(wave).min() > np.log(np.finfo(np.float32).eps) + 1
    np.testing.assert_allclose(compute_fbank(wave), compute_fbank(wave * 3.0), atol=1e-3)


def test_dither_is_off() -> None:
    # A pure tone leaves most mel bins almost empty: there any dither (kaldi-native-fbank's
    # default of 3e-5 moves them by more than 4) would show against the undithered reference.
    t = np.arange(8_000) / 16_000
    wave = (0.01 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    np.testing.assert_allclose(kaldi_fbank(wave), reference_fbank(wave), atol=1e-3)


def test_too_short_is_refused() -> None:
    assert num_frames(399) == 0
    with pytest.raises(ValueError, match="shorter than one"):
        compute_fbank(np.zeros(399, dtype=np.float32))
