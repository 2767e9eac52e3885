"""GE2E speaker encoder (resemblyzer): 256-dim, weights shipped inside the wheel.

The small fallback engine: always available, 1.4 M parameters, English-trained but usable
on Mandarin. Our pipeline has already removed silence, so resemblyzer's own ``preprocess_wav``
is not used; only its volume normalisation is kept, in both directions (see TARGET_DBFS).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from engine.base import SpeakerEngine, l2_normalise
from engine.errors import ModelNotFoundError

# resemblyzer's defaults for embed_utterance: 1.6 s partials, 1.3 per second, and a last
# partial kept when it is at least 75% covered.
PARTIALS_PER_SECOND = 1.3
MIN_COVERAGE = 0.75
# The encoder's mel input is power, not log, so the level changes the embedding (a recording
# and the same one 20 dB quieter: cosine 0.90). resemblyzer only raises quiet audio to
# -30 dBFS; we scale every recording's speech to one level, in both directions, so the
# voiceprint does not depend on the microphone gain (as with the 3D-Speaker engines, whose
# fbank mean subtraction removes it). The level is -25 dBFS, not resemblyzer's -30: lowering
# loud speech to -30 put it below most of what the encoder was trained on. Measured on 213
# LibriSpeech speakers (765 3 s segments; 553 2 s probes at a random gain of -20..0 dB against
# half-utterance enrollments), EER: 3 s pairs 0.38% (-30 both ways: 0.65%, raise-only -30:
# 0.38%); gain-varied 2 s probes clean 0.28% (0.50%, 0.90%), 10 dB babble 3.07% (3.59%,
# 4.16%), 5 dB 9.84% (8.85%, 10.34%).
TARGET_DBFS = -25.0


class GE2EEngine(SpeakerEngine):
    name = "ge2e"
    dim = 256

    def __init__(self) -> None:
        # Imported here: resemblyzer pulls in librosa (about 1.5 s) and only this engine needs it.
        try:
            import resemblyzer
            from resemblyzer import VoiceEncoder
            from resemblyzer.audio import wav_to_mel_spectrogram
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise ModelNotFoundError(f"resemblyzer is not installed: {exc}") from exc
        weights = Path(resemblyzer.__file__).resolve().parent / "pretrained.pt"
        if not weights.is_file():
            raise ModelNotFoundError(f"GE2E weights missing from the resemblyzer wheel: {weights}")
        self.source = f"resemblyzer wheel ({weights})"
        self._encoder = VoiceEncoder("cpu", verbose=False, weights_fpath=weights).eval()
        self._mel = wav_to_mel_spectrogram
        # Forward passes only read the weights (no buffers, no cuDNN state on CPU), so
        # concurrent calls need no lock; tests/engine/test_ge2e.py checks it.

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        return self.embed_batch([waveform])[0]

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """All partials of all waveforms go through the LSTM as one batch."""
        if not waveforms:
            return np.zeros((0, self.dim), dtype=np.float32)
        partials = [self._partials(w) for w in waveforms]
        counts = [len(p) for p in partials]
        with torch.inference_mode():
            embeddings = self._encoder(torch.from_numpy(np.concatenate(partials))).numpy()
        # Utterance embedding = normalised mean of its partial embeddings (as resemblyzer).
        bounds = np.cumsum(counts)[:-1]
        means = [chunk.mean(axis=0) for chunk in np.split(embeddings, bounds)]
        return l2_normalise(np.stack(means))

    def embed_reference(self, recording: np.ndarray) -> np.ndarray:
        """resemblyzer's own pipeline (its VAD and raise-only levelling, then
        embed_utterance) on a 16 kHz recording with its silences: the reference our
        pipeline is measured against (engine.evaluation.ge2e_reference_comparison)."""
        from resemblyzer import preprocess_wav

        speech = preprocess_wav(np.asarray(recording, dtype=np.float32), source_sr=16_000)
        return l2_normalise(self._encoder.embed_utterance(speech))

    def _partials(self, waveform: np.ndarray) -> np.ndarray:
        """(n_partials, 160, 40) mel windows covering the waveform, as resemblyzer cuts them."""
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim != 1 or len(waveform) == 0:
            raise ValueError(f"expected a non-empty mono waveform, got shape {waveform.shape}")
        wav_slices, mel_slices = self._encoder.compute_partial_slices(
            len(waveform), PARTIALS_PER_SECOND, MIN_COVERAGE
        )
        waveform = _normalise_volume(waveform)
        padded = np.pad(waveform, (0, max(0, wav_slices[-1].stop - len(waveform))))
        mel = self._mel(padded)
        return np.stack([mel[s] for s in mel_slices])


def _normalise_volume(waveform: np.ndarray) -> np.ndarray:
    """Scale the speech to an RMS level of TARGET_DBFS (silence stays silence)."""
    rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))
    if rms == 0.0:
        return waveform
    return waveform * np.float32(10.0 ** (TARGET_DBFS / 20.0) / rms)
