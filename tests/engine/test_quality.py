"""Probe quality (engine.quality) on real speech: speech seconds, the SNR estimate under
babble, clipping; measured by prepare_waveform from the VAD decisions it makes once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import webrtcvad

from engine.audio import SAMPLE_RATE, VAD_FRAME, prepare_waveform
from engine.errors import InsufficientSpeechError
from engine.quality import SNR_CAP_DB, SNR_FLOOR_DB, ProbeQuality, measure_quality
from engine.settings import EngineSettings
from tests.engine.conftest import babble, librispeech_windows, mix_at_snr

SETTINGS = EngineSettings(min_speech_seconds=1.0, max_speech_seconds=60.0)
#: Probes as a device sends them: 2 s windows of LibriSpeech speakers.
PROBE_SECONDS = 2.0
SPEAKERS = 8
#: True SNRs (dB) of the babble mixes, cleanest first.
SNRS = (20, 10, 5, 0)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


@pytest.fixture(scope="module")
def windows() -> list[np.ndarray]:
    return librispeech_windows(SPEAKERS + 3, PROBE_SECONDS)


def quality(waveform: np.ndarray, settings: EngineSettings = SETTINGS) -> ProbeQuality:
    return prepare_waveform(waveform, settings).quality


# --- SNR --------------------------------------------------------------------------------------


def test_snr_falls_with_the_true_snr_of_babble(windows):
    """Each of 8 speakers mixed with the babble of the next three at 20, 10, 5 and 0 dB:
    on average the estimate orders the clean probe, then 20, 10 and 5 dB."""
    estimates = {snr: [] for snr in ("clean", *SNRS)}
    for i, target in enumerate(windows[:SPEAKERS]):
        noise = babble(windows[i + 1 : i + 4])
        estimates["clean"].append(quality(target).snr_db)
        for snr in SNRS:
            estimates[snr].append(quality(mix_at_snr(target, noise, snr)).snr_db)

    means = {snr: float(np.mean(values)) for snr, values in estimates.items()}
    assert means["clean"] > means[20] > means[10] > means[5], means
    assert means[0] < means[20] - 5.0, means  # a real fall, not a tie broken by chance
    assert all(SNR_FLOOR_DB <= v <= SNR_CAP_DB for vs in estimates.values() for v in vs)


def test_snr_of_white_noise_is_close_to_the_truth(windows):
    """Stationary noise is what the noise percentile measures best: on average the estimate
    lands within a few dB of the true SNR (babble's own pauses make it read high)."""
    rng = np.random.default_rng(0)
    for snr in (20, 10, 5):
        estimates = [
            quality(mix_at_snr(target, rng.standard_normal(len(target)), snr)).snr_db
            for target in windows[:SPEAKERS]
        ]
        assert np.mean(estimates) == pytest.approx(snr, abs=2.5), (snr, estimates)


def test_digital_silence_between_words_gives_the_cap(windows):
    padded = np.concatenate([silence(1.0), windows[0], silence(1.0)])

    assert quality(padded).snr_db == SNR_CAP_DB


def test_no_voiced_frame_gives_the_floor(windows):
    nothing = np.zeros(len(windows[0]) // VAD_FRAME, dtype=bool)

    measured = measure_quality(windows[0], nothing, frame_length=VAD_FRAME, speech_seconds=0.0)

    assert measured.snr_db == SNR_FLOOR_DB


# --- clipping ---------------------------------------------------------------------------------


def test_clean_speech_is_not_clipped(windows):
    assert all(quality(target).clipping < 1e-4 for target in windows[:SPEAKERS])


def test_an_overdriven_copy_is_clipped(windows):
    target = windows[0]
    overdriven = np.clip(target * 20.0, -1.0, 1.0)
    expected = np.mean(np.abs(overdriven) >= 0.99)

    measured = quality(overdriven).clipping

    assert measured == pytest.approx(expected, abs=1e-4)
    assert measured > 0.05


# --- speech seconds, and what prepare_waveform does with them ---------------------------------


def test_speech_seconds_are_those_the_engine_sees(windows):
    speech = np.concatenate([windows[0], silence(1.0), windows[1], windows[2]])
    settings = EngineSettings(min_speech_seconds=1.0, max_speech_seconds=3.0)

    whole, cut = prepare_waveform(speech, SETTINGS), prepare_waveform(speech, settings)

    assert whole.quality.speech_seconds == pytest.approx(whole.speech_seconds)
    assert whole.speech_seconds > 3.0
    assert cut.quality.speech_seconds == cut.speech_seconds == 3.0
    # The SNR and clipping are of the whole recording, not of the part embedded.
    assert cut.quality == dataclasses.replace(whole.quality, speech_seconds=3.0)


def test_the_vad_runs_once_per_frame(windows, monkeypatch):
    """Silence removal and quality share one pass of the VAD (a spy counts its calls)."""
    calls = []
    real_is_speech = webrtcvad.Vad.is_speech

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real_is_speech(self, *args, **kwargs)

    monkeypatch.setattr(webrtcvad.Vad, "is_speech", counting)
    waveform = windows[0]

    prepare_waveform(waveform, SETTINGS)

    assert len(calls) == len(waveform) // VAD_FRAME


def test_too_little_speech_is_still_refused(windows):
    short = np.concatenate([silence(1.0), windows[0][: SAMPLE_RATE // 2], silence(1.0)])

    with pytest.raises(InsufficientSpeechError):
        prepare_waveform(short, SETTINGS)


def test_as_dict_round_trips():
    measured = ProbeQuality(speech_seconds=1.53, snr_db=12.4, clipping=0.0021)

    assert measured.as_dict() == {"speech_seconds": 1.53, "snr_db": 12.4, "clipping": 0.0021}
    assert ProbeQuality.from_dict(measured.as_dict()) == measured
