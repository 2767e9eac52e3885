"""Speaker recognition engines: audio in, L2-normalised embeddings out; and a spoofing
countermeasure: audio in, a bona-fide score out (engine.spoofing).

This package knows audio and models, nothing of HTTP, tenants or databases. The Django apps
use only the names exported here.
"""

from engine.audio import PreparedAudio, decode_audio, prepare_audio
from engine.base import SpeakerEngine
from engine.errors import (
    AudioDecodeError,
    EngineError,
    EngineUnavailableError,
    InsufficientSpeechError,
    ModelNotFoundError,
    UnknownEngineError,
)
from engine.quality import ProbeQuality
from engine.registry import (
    EmbeddingResult,
    active_engine,
    apply_thread_settings,
    available_engines,
    configure,
    current_settings,
    embed_audio,
    embed_waveform,
    engine_status,
    get_engine,
    reset_engines,
)
from engine.settings import EngineSettings
from engine.spoofing import (
    SpoofDetector,
    SpoofResult,
    default_spoof_threshold,
    score_waveform,
    spoof_audio,
    spoof_detector,
)

__all__ = [
    "AudioDecodeError",
    "EmbeddingResult",
    "EngineError",
    "EngineSettings",
    "EngineUnavailableError",
    "InsufficientSpeechError",
    "ModelNotFoundError",
    "PreparedAudio",
    "ProbeQuality",
    "SpeakerEngine",
    "SpoofDetector",
    "SpoofResult",
    "UnknownEngineError",
    "active_engine",
    "apply_thread_settings",
    "available_engines",
    "configure",
    "current_settings",
    "decode_audio",
    "default_spoof_threshold",
    "embed_audio",
    "embed_waveform",
    "engine_status",
    "get_engine",
    "prepare_audio",
    "reset_engines",
    "score_waveform",
    "spoof_audio",
    "spoof_detector",
]
