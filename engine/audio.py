"""Audio pipeline: bytes -> 16 kHz mono float32 -> speech only.

Every engine receives the output of :func:`prepare_audio`: decoded with libsndfile (only the
start of a long recording: the work an upload causes is bounded whatever its header says),
mixed down, resampled with soxr and stripped of silence with webrtcvad. The pipeline is
vectorised with numpy so that it costs a small fraction of the model (webrtcvad itself is one
C call per 30 ms).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr
import webrtcvad

from engine.errors import AudioDecodeError, InsufficientSpeechError
from engine.quality import ProbeQuality, measure_quality
from engine.settings import EngineSettings

#: The rate every engine works at.
SAMPLE_RATE = 16_000
#: Sample rates outside this range are not speech recordings.
MIN_SOURCE_RATE = 4_000
MAX_SOURCE_RATE = 384_000
MAX_CHANNELS = 32
#: Frames read per libsndfile call (about 1.4 s at 48 kHz).
BLOCK_FRAMES = 1 << 16

# webrtcvad: 30 ms frames, the most aggressive mode (3): noise is rejected, and the smoothing
# below restores the word edges it clips.
VAD_MODE = 3
VAD_FRAME = SAMPLE_RATE * 30 // 1000
# Smoothing in frames, after resemblyzer: a moving average over 8 frames keeps a frame when most
# of its neighbours are voiced (drops clicks), then a dilation of 3 frames (90 ms) on each side
# pads words back and bridges short pauses.
VAD_AVERAGE_WIDTH = 8
VAD_DILATION = 3
# webrtcvad ignores quiet frames outright: speech 20 dB below a normal level loses half its
# frames. The VAD therefore hears a copy whose peak is raised towards -6 dBFS, by at most
# +20 dB so that a recording of faint hiss does not become "speech". The engine gets the
# original samples.
VAD_TARGET_PEAK = 0.5
VAD_MAX_GAIN = 10.0


@dataclass(frozen=True, eq=False)
class PreparedAudio:
    """Audio ready for an engine."""

    #: Speech only, 16 kHz mono float32, at most ``max_speech_seconds`` long.
    waveform: np.ndarray
    #: Length of the decoded audio, silence included.
    duration_seconds: float
    #: Length of :attr:`waveform`: the speech the engine will see (after the cut to the maximum).
    speech_seconds: float
    #: Speech, SNR and clipping of the decoded audio (engine.quality).
    quality: ProbeQuality


def decode_audio(data: bytes, settings: EngineSettings | None = None) -> np.ndarray:
    """Decode WAV/FLAC/OGG/... bytes to 16 kHz mono float32.

    Only the start of a long recording is decoded (:func:`frame_budget`): whatever its header
    claims, an upload costs no more than ``max_decoded_seconds`` of audio or
    ``max_source_samples`` source samples. Raises :class:`AudioDecodeError` for anything that
    is not sane, finite audio.
    """
    if not data:
        raise AudioDecodeError("audio is empty")
    settings = settings or _current_settings()
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            return _decode(sound, settings)
    except AudioDecodeError:
        raise
    except Exception as exc:  # libsndfile raises RuntimeError/LibsndfileError/TypeError...
        raise AudioDecodeError(f"cannot decode audio: {_sndfile_reason(exc)}") from exc


def frame_budget(rate: int, channels: int, settings: EngineSettings) -> int:
    """Source frames decoded at most: ``max_decoded_seconds`` of audio, and no more than
    ``max_source_samples`` samples over all channels (a 192 kHz 8-channel file is cut 96
    times earlier than 16 kHz mono)."""
    by_duration = int(settings.max_decoded_seconds * rate)
    by_samples = settings.max_source_samples // channels
    return max(1, min(by_duration, by_samples))


def _decode(sound: soundfile.SoundFile, settings: EngineSettings) -> np.ndarray:
    """Read block by block up to the frame budget, mixing down and resampling as we go.

    Memory stays bounded by the 16 kHz mono output and one block, whatever the header claims:
    32 channels at 384 kHz are never held in memory at once.
    """
    rate, channels = sound.samplerate, sound.channels
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise AudioDecodeError(f"unsupported sample rate {rate} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioDecodeError(f"unsupported channel count {channels}")
    budget = frame_budget(rate, channels, settings)
    resampler = None
    if rate != SAMPLE_RATE:
        resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    pieces, frames = [], 0
    # The header's frame count is not trusted: the loop stops at the data, or at the budget
    # (beyond it the recording is ignored, not refused: its start is still usable).
    while frames < budget:
        block = sound.read(min(BLOCK_FRAMES, budget - frames), dtype="float32", always_2d=True)
        if not len(block):
            break
        frames += len(block)
        if not np.isfinite(block).all():
            raise AudioDecodeError("audio contains NaN or infinite samples")
        mono = block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0]
        pieces.append(resampler.resample_chunk(mono) if resampler else mono)
    if frames == 0:
        raise AudioDecodeError("audio has no samples")
    if resampler:
        pieces.append(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    return np.ascontiguousarray(np.concatenate(pieces), dtype=np.float32)


def _sndfile_reason(exc: Exception) -> str:
    # LibsndfileError carries a short `error_string`; str() repeats the "<_io.BytesIO ...>" repr.
    return getattr(exc, "error_string", None) or str(exc) or type(exc).__name__


def remove_silence(waveform: np.ndarray) -> np.ndarray:
    """Keep the speech of a 16 kHz float waveform (webrtcvad, smoothed and padded)."""
    waveform = np.asarray(waveform, dtype=np.float32)
    return _keep_voiced(waveform, _voiced_frames(waveform))


def speech_seconds(waveform: np.ndarray) -> float:
    """Seconds of speech in a 16 kHz float waveform, as silence removal counts them."""
    voiced = _voiced_frames(np.asarray(waveform, dtype=np.float32))
    return int(voiced.sum()) * VAD_FRAME / SAMPLE_RATE


def _keep_voiced(waveform: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The samples of the voiced frames, in order."""
    if not frames.any():
        return np.zeros(0, dtype=np.float32)
    mask = np.repeat(frames, VAD_FRAME)
    return waveform[: len(mask)][mask]


def _voiced_frames(waveform: np.ndarray) -> np.ndarray:
    """One bool per whole 30 ms frame: speech after smoothing."""
    n_frames = len(waveform) // VAD_FRAME
    if n_frames == 0:
        return np.zeros(0, dtype=bool)
    pcm = _vad_level(waveform[: n_frames * VAD_FRAME])
    pcm = (np.clip(pcm, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
    vad = webrtcvad.Vad(VAD_MODE)  # cheap, and one per call keeps this thread-safe
    step = VAD_FRAME * 2  # bytes per frame
    voiced = np.fromiter(
        (vad.is_speech(pcm[i : i + step], SAMPLE_RATE) for i in range(0, len(pcm), step)),
        dtype=bool,
        count=n_frames,
    )
    average = np.convolve(voiced, np.ones(VAD_AVERAGE_WIDTH), mode="same") / VAD_AVERAGE_WIDTH
    kept = average > 0.5
    dilated = np.convolve(kept, np.ones(2 * VAD_DILATION + 1), mode="same") > 0
    return dilated[:n_frames]


def _vad_level(waveform: np.ndarray) -> np.ndarray:
    """Raise quiet audio for the VAD only (increase-only, capped); a robust peak ignores clicks."""
    magnitude = np.abs(waveform)
    k = int(len(magnitude) * 0.999)
    peak = float(np.partition(magnitude, k)[k])
    gain = min(VAD_MAX_GAIN, VAD_TARGET_PEAK / peak) if peak > 0 else 1.0
    return waveform * gain if gain > 1.0 else waveform


def prepare_waveform(waveform: np.ndarray, settings: EngineSettings | None = None) -> PreparedAudio:
    """Silence removal, length rules and the probe's quality for an already decoded 16 kHz
    mono waveform."""
    settings = settings or _current_settings()
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"expected a mono waveform, got shape {waveform.shape}")
    if not np.isfinite(waveform).all():
        raise AudioDecodeError("audio contains NaN or infinite samples")
    voiced = _voiced_frames(waveform)  # once: silence removal and quality both read it
    speech = _keep_voiced(waveform, voiced)
    speech_seconds = len(speech) / SAMPLE_RATE
    if speech_seconds < settings.min_speech_seconds:
        raise InsufficientSpeechError(speech_seconds, settings.min_speech_seconds)
    speech = speech[: int(settings.max_speech_seconds * SAMPLE_RATE)]
    speech_seconds = len(speech) / SAMPLE_RATE
    return PreparedAudio(
        waveform=speech,
        duration_seconds=len(waveform) / SAMPLE_RATE,
        speech_seconds=speech_seconds,
        quality=measure_quality(
            waveform, voiced, frame_length=VAD_FRAME, speech_seconds=speech_seconds
        ),
    )


def prepare_audio(data: bytes, settings: EngineSettings | None = None) -> PreparedAudio:
    """Decode, remove silence, refuse too little speech, cut too much.

    ``settings`` defaults to the process settings (see :func:`engine.registry.configure`).
    """
    settings = settings or _current_settings()
    return prepare_waveform(decode_audio(data, settings), settings)


def _current_settings() -> EngineSettings:
    # Imported here: the registry imports this module.
    from engine.registry import current_settings

    return current_settings()
