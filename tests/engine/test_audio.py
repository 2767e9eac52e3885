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
from tests.engine.conftest import long_flac, to_bytes

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


def test_absurd_sample_rate_raises(speech):
    with pytest.raises(AudioDecodeError, match="sample rate"):
        decode_audio(to_bytes(speech, rate=1_000, subtype="PCM_16"))


# --- bounded decoding: the work is counted in frames libsndfile hands over -------------------


def test_audio_beyond_the_decoded_length_is_ignored_not_refused(speech, decoded_frames):
    settings = EngineSettings(max_decoded_seconds=2.0)

    decoded = decode_audio(to_bytes(speech, subtype="PCM_16"), settings)

    assert len(decoded) == 2 * SAMPLE_RATE
    assert np.max(np.abs(decoded - speech[: 2 * SAMPLE_RATE])) <= 1e-4  # the start is kept
    assert sum(decoded_frames.values()) == 2 * SAMPLE_RATE  # and nothing after it was read


def test_a_29_minute_header_costs_only_the_decoded_maximum(speech, decoded_frames):
    """A FLAC small enough for a raw body (512 KB) holding 29 minutes (a little speech, then
    silence) decodes its first two minutes, and is still usable: its speech is kept."""
    data = long_flac(29 * 60, SAMPLE_RATE, 1, start=speech)
    settings = EngineSettings()
    assert len(data) < 512 * 1024

    prepared = prepare_audio(data, settings)

    assert sum(decoded_frames.values()) == settings.max_decoded_seconds * SAMPLE_RATE
    assert prepared.duration_seconds == settings.max_decoded_seconds
    assert prepared.speech_seconds > 0.8 * len(speech) / SAMPLE_RATE


def test_many_channels_at_a_high_rate_are_cut_by_source_samples(decoded_frames):
    """8 channels at 192 kHz are 96 times the samples of 16 kHz mono per second: the
    source-sample bound stops them 96 times earlier."""
    settings = EngineSettings()
    rate, channels = 192_000, 8
    budget = settings.max_source_samples // channels

    decoded = decode_audio(long_flac(30, rate, channels), settings)

    assert budget < settings.max_decoded_seconds * rate  # the samples bound is the one hit
    assert sum(decoded_frames.values()) == budget
    assert sum(decoded_frames.values()) * channels <= settings.max_source_samples
    assert len(decoded) == pytest.approx(budget * SAMPLE_RATE / rate, abs=2)


def test_mono_16k_is_decoded_up_to_the_duration_bound(decoded_frames):
    settings = EngineSettings(max_decoded_seconds=20.0, max_source_samples=192_000 * 8 * 4)

    decoded = decode_audio(long_flac(30, SAMPLE_RATE, 1), settings)

    # The same samples budget that cuts 8 x 192 kHz at 4 s lets mono 16 kHz reach 20 s.
    assert len(decoded) == sum(decoded_frames.values()) == 20 * SAMPLE_RATE


def test_decode_bounds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VOICEPRINT_MAX_DECODED_SECONDS", "45")
    monkeypatch.setenv("VOICEPRINT_MAX_SOURCE_SAMPLES", "1000000")

    settings = EngineSettings.from_env()

    assert (settings.max_decoded_seconds, settings.max_source_samples) == (45.0, 1_000_000)
    assert audio.frame_budget(48_000, 2, settings) == 500_000
    assert audio.frame_budget(16_000, 1, settings) == 45 * 16_000


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
