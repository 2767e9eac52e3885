"""The audio pipeline: decoding, resampling, mixdown, silence removal, length rules."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from engine import audio
from engine.audio import (
    SAMPLE_RATE,
    PreparedAudio,
    decode_audio,
    prepare_audio,
    prepare_waveform,
    remove_silence,
)
from engine.errors import AudioDecodeError, InsufficientSpeechError
from engine.settings import EngineSettings
from tests.engine.conftest import to_bytes

SETTINGS = EngineSettings(min_speech_seconds=1.0, max_speech_seconds=60.0)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


# --- decoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "subtype", "tolerance"),
    [
        ("WAV", "PCM_U8", 1 / 64),
        ("WAV", "PCM_16", 1e-4),
        ("WAV", "PCM_24", 1e-6),
        ("WAV", "PCM_32", 1e-6),
        ("WAV", "FLOAT", 0.0),
        ("WAV", "DOUBLE", 1e-7),
        ("FLAC", "PCM_16", 1e-4),
        ("FLAC", "PCM_24", 1e-6),
    ],
)
def test_lossless_formats_decode_to_the_same_samples(speech, fmt, subtype, tolerance):
    decoded = decode_audio(to_bytes(speech, fmt=fmt, subtype=subtype))

    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert len(decoded) == len(speech)
    assert np.max(np.abs(decoded - speech)) <= tolerance


def test_ogg_vorbis_decodes_to_similar_samples(speech):
    decoded = decode_audio(to_bytes(speech, fmt="OGG", subtype="VORBIS"))

    assert decoded.dtype == np.float32
    assert abs(len(decoded) - len(speech)) < SAMPLE_RATE // 100
    n = min(len(decoded), len(speech))
    assert np.corrcoef(decoded[:n], speech[:n])[0, 1] > 0.95


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
def test_other_rates_are_resampled_to_16k(speech, rate):
    resampled = soxr.resample(speech, SAMPLE_RATE, rate)

    decoded = decode_audio(to_bytes(resampled, rate=rate, subtype="PCM_16"))

    assert decoded.dtype == np.float32
    assert abs(len(decoded) - len(speech)) <= 2
    if rate > SAMPLE_RATE:  # nothing lost going up and back down
        assert np.corrcoef(decoded, speech[: len(decoded)])[0, 1] > 0.99


def test_channels_are_mixed_down_by_mean(speech):
    stereo = np.stack([speech, np.zeros_like(speech)], axis=1)

    decoded = decode_audio(to_bytes(stereo, subtype="FLOAT"))

    assert decoded.ndim == 1
    np.testing.assert_allclose(decoded, speech / 2, atol=1e-7)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00" * 1000, id="zeros"),
        pytest.param(np.random.default_rng(0).bytes(4096), id="random"),
        pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt ", id="truncated-header"),
        pytest.param(b"<html><body>not audio</body></html>", id="html"),
    ],
)
def test_undecodable_bytes_raise_audio_decode_error(data):
    with pytest.raises(AudioDecodeError):
        decode_audio(data)


def test_truncated_file_raises_or_decodes_what_is_there(speech):
    data = to_bytes(speech, subtype="PCM_16")

    with pytest.raises(AudioDecodeError):
        decode_audio(data[:30])  # cut inside the header
    # Cut inside the data: libsndfile reads the frames present, the header is not trusted.
    assert len(decode_audio(data[: len(data) // 2])) < len(speech)


def test_header_only_file_raises(speech):
    with pytest.raises(AudioDecodeError, match="no samples"):
        decode_audio(to_bytes(speech[:0], subtype="PCM_16"))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_raise(speech, bad):
    samples = speech.copy()
    samples[1000] = bad

    with pytest.raises(AudioDecodeError, match="NaN or infinite"):
        decode_audio(to_bytes(samples, subtype="FLOAT"))


def test_audio_beyond_the_length_cap_raises(speech, monkeypatch):
    monkeypatch.setattr(audio, "MAX_DECODED_SECONDS", 2)

    with pytest.raises(AudioDecodeError, match="longer than"):
        decode_audio(to_bytes(speech, subtype="PCM_16"))


def test_absurd_sample_rate_raises(speech):
    with pytest.raises(AudioDecodeError, match="sample rate"):
        decode_audio(to_bytes(speech, rate=1_000, subtype="PCM_16"))


# --- silence removal and length rules ---------------------------------------------------------


def test_vad_removes_inserted_silence(speech):
    padded = np.concatenate([silence(2), speech, silence(3), speech, silence(2)])

    prepared = prepare_audio(to_bytes(padded, subtype="PCM_16"), SETTINGS)

    assert isinstance(prepared, PreparedAudio)
    assert prepared.duration_seconds == pytest.approx(len(padded) / SAMPLE_RATE)
    # All 7 s of inserted silence go, bar the padding kept around words ...
    assert prepared.speech_seconds < prepared.duration_seconds - 6.0
    # ... and the speech itself stays.
    assert prepared.speech_seconds > 0.8 * 2 * len(speech) / SAMPLE_RATE
    assert len(prepared.waveform) == round(prepared.speech_seconds * SAMPLE_RATE)


def test_vad_keeps_quiet_speech(speech):
    normal = len(remove_silence(speech))
    quiet = len(remove_silence(speech * 0.1))  # 20 dB down

    assert quiet > 0.85 * normal


def test_vad_rejects_faint_noise():
    noise = np.random.default_rng(0).standard_normal(5 * SAMPLE_RATE) * 10 ** (-60 / 20)

    assert len(remove_silence(noise.astype(np.float32))) == 0


def test_pure_silence_is_insufficient_speech():
    with pytest.raises(InsufficientSpeechError) as caught:
        prepare_audio(to_bytes(silence(5), subtype="PCM_16"), SETTINGS)
    assert caught.value.speech_seconds == 0.0
    assert caught.value.minimum_seconds == SETTINGS.min_speech_seconds


def test_half_a_second_of_speech_is_insufficient(speech):
    voiced = remove_silence(speech)
    clip = np.concatenate([silence(1), voiced[SAMPLE_RATE : SAMPLE_RATE + SAMPLE_RATE // 2]])

    with pytest.raises(InsufficientSpeechError) as caught:
        prepare_waveform(np.concatenate([clip, silence(1)]), SETTINGS)
    assert 0 < caught.value.speech_seconds < SETTINGS.min_speech_seconds


def test_speech_beyond_the_maximum_is_cut_not_refused(long_speech):
    settings = EngineSettings(min_speech_seconds=1.0, max_speech_seconds=3.0)

    prepared = prepare_waveform(long_speech, settings)

    assert prepared.speech_seconds == pytest.approx(3.0)
    assert len(prepared.waveform) == 3 * SAMPLE_RATE
    assert prepared.duration_seconds == pytest.approx(len(long_speech) / SAMPLE_RATE)


def test_prepared_waveform_is_float32_speech_at_16k(speech):
    prepared = prepare_audio(to_bytes(speech, rate=SAMPLE_RATE, subtype="PCM_16"), SETTINGS)

    assert prepared.waveform.dtype == np.float32
    assert prepared.waveform.ndim == 1
    assert SETTINGS.min_speech_seconds <= prepared.speech_seconds <= prepared.duration_seconds


def test_prepare_waveform_refuses_multichannel_arrays(speech):
    with pytest.raises(ValueError, match="mono"):
        prepare_waveform(np.stack([speech, speech]), SETTINGS)
