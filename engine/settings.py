"""Engine settings, read from the environment (the Django layer never passes its own)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class EngineSettings:
    #: Preferred engine name (VOICEPRINT_ENGINE).
    engine: str = "eres2net"
    #: Engine used, with a WARNING, when the preferred one cannot be loaded
    #: (VOICEPRINT_ENGINE_FALLBACK; empty disables the fallback).
    fallback: str = "ge2e"
    #: A ModelScope model directory, or a folder holding them as `iic/<model>`
    #: (VOICEPRINT_MODEL_DIR). Unset: the ModelScope cache, then a download where allowed.
    model_dir: str | None = None
    #: Less speech than this after silence removal is refused (VOICEPRINT_MIN_SPEECH_SECONDS).
    min_speech_seconds: float = 1.0
    #: Speech beyond this is cut, not refused (VOICEPRINT_MAX_SPEECH_SECONDS).
    max_speech_seconds: float = 60.0
    #: Only the first this many seconds of a recording are decoded; the rest is ignored, so
    #: the work an upload causes does not grow with the length its header claims
    #: (VOICEPRINT_MAX_DECODED_SECONDS).
    max_decoded_seconds: float = 120.0
    #: At most this many source samples (frames x channels) are read from one recording: a
    #: 192 kHz 8-channel file is cut after 7.5 s, 16 kHz mono only at max_decoded_seconds
    #: (VOICEPRINT_MAX_SOURCE_SAMPLES; the default is 2 minutes of 48 kHz stereo).
    max_source_samples: int = 2 * 60 * 48_000 * 2
    #: torch intra-op threads per process; 0 keeps torch's default (VOICEPRINT_TORCH_THREADS).
    torch_threads: int = 0
    #: Optional transformers audio-classification checkpoints (a local path or a hub id)
    #: for `analyze` (VOICEPRINT_EMOTION_MODEL, VOICEPRINT_AGE_MODEL); empty: not offered.
    emotion_model: str = ""
    age_model: str = ""

    @classmethod
    def from_env(cls) -> EngineSettings:
        return cls(
            engine=os.environ.get("VOICEPRINT_ENGINE", "").strip() or cls.engine,
            fallback=os.environ.get("VOICEPRINT_ENGINE_FALLBACK", cls.fallback).strip(),
            model_dir=os.environ.get("VOICEPRINT_MODEL_DIR", "").strip() or None,
            min_speech_seconds=_env_float("VOICEPRINT_MIN_SPEECH_SECONDS", cls.min_speech_seconds),
            max_speech_seconds=_env_float("VOICEPRINT_MAX_SPEECH_SECONDS", cls.max_speech_seconds),
            max_decoded_seconds=_env_float(
                "VOICEPRINT_MAX_DECODED_SECONDS", cls.max_decoded_seconds
            ),
            max_source_samples=_env_int("VOICEPRINT_MAX_SOURCE_SAMPLES", cls.max_source_samples),
            torch_threads=_env_int("VOICEPRINT_TORCH_THREADS", cls.torch_threads),
            emotion_model=os.environ.get("VOICEPRINT_EMOTION_MODEL", "").strip(),
            age_model=os.environ.get("VOICEPRINT_AGE_MODEL", "").strip(),
        )
