"""Probe quality: how much speech a recording holds, how noisy and how clipped it is.

Measured once per recording by :func:`engine.audio.prepare_waveform`, from the decoded
waveform (silence included) and the VAD's per-frame decisions it already made for silence
removal. Callers use it to judge a decision: a 1 s probe at 3 dB SNR is weak evidence
whatever its score.

The SNR is an estimate from the probe alone (no clean reference exists). Probes are 1-3 s of
far-field speech, often over a TV or other talkers, which a VAD calls speech too: the noise
is therefore not "the frames the VAD rejected" but the quietest frames of the whole
recording (the target's pauses show the background), and the signal is the mean power of the
voiced frames less that noise. Validated on LibriSpeech mixed with three-talker babble
(README, "Probe quality"): the estimate falls monotonically with the true SNR on average,
compressed at low SNR (babble has dips of its own).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: The SNR estimate is clamped to this range (dB); noise of zero power (digital silence
#: between words) gives the cap.
SNR_FLOOR_DB = -10.0
SNR_CAP_DB = 50.0
#: The noise power is this percentile of the frame powers.
NOISE_PERCENTILE = 10
#: A sample at or above this share of full scale counts as clipped.
CLIPPING_LEVEL = 0.99
#: Signal power never goes below this (noise louder than the voiced frames: the floor).
_TINY_POWER = 1e-12


@dataclass(frozen=True)
class ProbeQuality:
    """The quality of one probe, as replies carry it."""

    #: Seconds of speech after silence removal: what the engine embeds (after the cut to
    #: the maximum), the same as ``PreparedAudio.speech_seconds``.
    speech_seconds: float
    #: Estimated speech-to-noise ratio of the whole recording, dB, in [-10, 50].
    snr_db: float
    #: Share (0-1) of decoded samples at or above 99% of full scale.
    clipping: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeQuality:
        """The inverse of :meth:`as_dict` (a worker's reply); KeyError when a field is missing."""
        return cls(
            speech_seconds=float(data["speech_seconds"]),
            snr_db=float(data["snr_db"]),
            clipping=float(data["clipping"]),
        )


def measure_quality(
    waveform: np.ndarray, voiced: np.ndarray, *, frame_length: int, speech_seconds: float
) -> ProbeQuality:
    """The quality of a decoded mono waveform.

    ``voiced`` holds the VAD's decision for each whole frame of ``frame_length`` samples from
    the start (a partial frame at the end has none); ``speech_seconds`` is the speech the
    engine will see, which only the caller knows (it cuts to a maximum).
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    return ProbeQuality(
        speech_seconds=round(speech_seconds, 3),
        snr_db=round(estimate_snr_db(waveform, voiced, frame_length=frame_length), 1),
        clipping=round(clipped_share(waveform), 4),
    )


def estimate_snr_db(waveform: np.ndarray, voiced: np.ndarray, *, frame_length: int) -> float:
    """Speech-to-noise ratio (dB): the voiced frames' mean power over the 10th percentile of
    all frame powers, the noise taken out of the signal first; clamped to [-10, 50]."""
    n_frames = len(voiced)
    if n_frames == 0 or not voiced.any():
        return SNR_FLOOR_DB
    frames = waveform[: n_frames * frame_length].reshape(n_frames, frame_length)
    powers = np.mean(np.square(frames, dtype=np.float64), axis=1)
    noise = float(np.percentile(powers, NOISE_PERCENTILE))
    if noise <= 0.0:
        return SNR_CAP_DB
    signal = max(float(powers[voiced].mean()) - noise, _TINY_POWER)
    return float(np.clip(10.0 * np.log10(signal / noise), SNR_FLOOR_DB, SNR_CAP_DB))


def clipped_share(waveform: np.ndarray) -> float:
    """Share of samples at or above :data:`CLIPPING_LEVEL` of full scale (0 for no samples)."""
    if len(waveform) == 0:
        return 0.0
    return float(np.count_nonzero(np.abs(waveform) >= CLIPPING_LEVEL)) / len(waveform)
