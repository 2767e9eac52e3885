"""Kaldi fbank features as 3D-Speaker computes them, without torchaudio.

3D-Speaker (and modelscope's speaker-verification models) call
`torchaudio.compliance.kaldi.fbank(wav, num_mel_bins=80)` on the float waveform in
[-1, 1] and subtract the per-utterance mean of each bin. kaldi-native-fbank implements
the same Kaldi recipe (povey window, pre-emphasis 0.97, DC removal, power spectrum,
Kaldi mel banks from 20 Hz to Nyquist, log floored at float32 epsilon, snip_edges) in C++.
We feed it the float waveform unscaled, like torchaudio: a gain only shifts each log-mel
bin by a constant (removed by the mean subtraction) except where the log floor bites.
"""

from __future__ import annotations

import kaldi_native_fbank as knf
import numpy as np

SAMPLE_RATE = 16_000
NUM_MEL_BINS = 80
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0


def _options(num_mel_bins: int) -> knf.FbankOptions:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.frame_length_ms = FRAME_LENGTH_MS
    opts.frame_opts.frame_shift_ms = FRAME_SHIFT_MS
    opts.frame_opts.dither = 0.0  # knf defaults to 3e-5; torchaudio and inference use 0
    opts.frame_opts.snip_edges = True
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.preemph_coeff = 0.97
    opts.frame_opts.remove_dc_offset = True
    opts.mel_opts.num_bins = num_mel_bins
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = 0.0  # 0 = Nyquist
    opts.use_energy = False
    opts.use_log_fbank = True
    opts.use_power = True
    return opts


def num_frames(num_samples: int) -> int:
    """Frames Kaldi produces for `num_samples` at 16 kHz with snip_edges (0 if too short)."""
    length = int(SAMPLE_RATE * FRAME_LENGTH_MS / 1000)
    shift = int(SAMPLE_RATE * FRAME_SHIFT_MS / 1000)
    return 0 if num_samples < length else 1 + (num_samples - length) // shift


def kaldi_fbank(waveform: np.ndarray, num_mel_bins: int = NUM_MEL_BINS) -> np.ndarray:
    """Raw log-mel fbank of a 16 kHz mono float waveform: float32 [frames, num_mel_bins]."""
    samples = np.ascontiguousarray(waveform, dtype=np.float32).reshape(-1)
    computer = knf.OnlineFbank(_options(num_mel_bins))
    computer.accept_waveform(SAMPLE_RATE, samples)
    computer.input_finished()
    frames = computer.num_frames_ready
    if frames == 0:
        return np.zeros((0, num_mel_bins), dtype=np.float32)
    # knf has no bulk getter; get_frame returns a view of its buffer, so copy into one array.
    out = np.empty((frames, num_mel_bins), dtype=np.float32)
    for i in range(frames):
        out[i] = computer.get_frame(i)
    return out


def compute_fbank(waveform: np.ndarray, num_mel_bins: int = NUM_MEL_BINS) -> np.ndarray:
    """3D-Speaker input features: Kaldi fbank minus its per-utterance mean of each bin.

    Returns float32 [frames, num_mel_bins]; raises ValueError for less than one frame
    (25 ms) of audio, which no network can embed.
    """
    feats = kaldi_fbank(waveform, num_mel_bins)
    if feats.shape[0] == 0:
        raise ValueError(
            f"waveform of {np.asarray(waveform).size} samples is shorter than one "
            f"{FRAME_LENGTH_MS:.0f} ms frame"
        )
    feats -= feats.mean(axis=0, keepdims=True)
    return feats
