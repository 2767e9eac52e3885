"""The GE2E engine on real speech (resemblyzer weights from the wheel)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soxr

from engine.audio import SAMPLE_RATE, decode_audio, prepare_waveform
from engine.base import SpeakerEngine
from engine.settings import EngineSettings
from tests.engine.conftest import TRIAL_DIR, ZH_DIR, read_speech, shared_files, to_bytes

SETTINGS = EngineSettings()


def speech_of(path) -> np.ndarray:
    return prepare_waveform(read_speech(path), SETTINGS).waveform


def assert_unit_float32(vectors: np.ndarray, dim: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape[-1] == dim
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=-1), 1.0, atol=1e-5)


def test_identity(ge2e):
    assert isinstance(ge2e, SpeakerEngine)
    assert (ge2e.name, ge2e.dim) == ("ge2e", 256)
    assert "pretrained.pt" in ge2e.source


def test_embedding_is_l2_normalised_float32(ge2e, speech):
    vector = ge2e.embed(speech_of(ZH_DIR / "enroll" / "fangjun-sr-2.wav"))

    assert vector.shape == (256,)
    assert_unit_float32(vector, 256)


@pytest.mark.parametrize("language", ["cn", "en"])
def test_same_speaker_scores_above_different_speaker(ge2e, language):
    a, b, other = (
        ge2e.embed(speech_of(TRIAL_DIR / f"{name}_{language}_16k.wav"))
        for name in ("speaker1_a", "speaker1_b", "speaker2_a")
    )

    same, different = float(a @ b), float(a @ other)

    assert same > different + 0.1, (same, different)


def test_batch_matches_single(ge2e):
    waveforms = [speech_of(p) for p in shared_files(ZH_DIR / "enroll")[:4]]
    # Different lengths, so the batch mixes utterances of different partial counts.
    assert len({len(w) for w in waveforms}) > 1

    batch = ge2e.embed_batch(waveforms)

    assert batch.shape == (len(waveforms), 256)
    assert_unit_float32(batch, 256)
    np.testing.assert_allclose(batch, np.stack([ge2e.embed(w) for w in waveforms]), atol=1e-5)
    assert ge2e.embed_batch([]).shape == (0, 256)


def test_concurrent_embedding_matches_sequential(ge2e):
    waveforms = [speech_of(p) for p in shared_files(ZH_DIR / "test")] * 2
    sequential = [ge2e.embed(w) for w in waveforms]

    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(ge2e.embed, waveforms))

    np.testing.assert_allclose(np.stack(concurrent), np.stack(sequential), atol=1e-6)


def test_embedding_does_not_depend_on_level(ge2e, speech):
    """Volume is normalised both ways: a quiet or a loud microphone gives the same voiceprint."""
    waveform = speech_of(ZH_DIR / "enroll" / "fangjun-sr-2.wav")
    reference = ge2e.embed(waveform)

    for gain in (0.05, 0.3, 2.0):
        assert float(reference @ ge2e.embed(waveform * gain)) > 0.999, gain


@pytest.mark.parametrize("rate", [22_050, 44_100, 48_000])
def test_resampled_audio_embeds_like_the_original(ge2e, speech, rate):
    reference = ge2e.embed(prepare_waveform(speech, SETTINGS).waveform)
    data = to_bytes(soxr.resample(speech, SAMPLE_RATE, rate), rate=rate, subtype="PCM_16")

    vector = ge2e.embed(prepare_waveform(decode_audio(data), SETTINGS).waveform)

    assert float(reference @ vector) > 0.98


def test_telephone_band_audio_still_matches_its_speaker(ge2e, speech):
    """8 kHz loses everything above 4 kHz: further from the original, still the same voice."""
    reference = ge2e.embed(prepare_waveform(speech, SETTINGS).waveform)
    other = ge2e.embed(speech_of(ZH_DIR / "enroll" / "leijun-sr-1.wav"))
    data = to_bytes(soxr.resample(speech, SAMPLE_RATE, 8_000), rate=8_000, subtype="PCM_16")

    vector = ge2e.embed(prepare_waveform(decode_audio(data), SETTINGS).waveform)

    assert float(reference @ vector) > float(reference @ other) + 0.1


def test_short_and_empty_waveforms(ge2e):
    short = ge2e.embed(np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1)
    assert_unit_float32(short, 256)  # shorter than one 1.6 s partial: padded, still a vector
    with pytest.raises(ValueError):
        ge2e.embed(np.zeros(0, dtype=np.float32))
