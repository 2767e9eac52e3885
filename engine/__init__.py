"""Speaker recognition engines: audio in, L2-normalised embeddings out.

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
    "UnknownEngineError",
    "active_engine",
    "apply_thread_settings",
    "available_engines",
    "configure",
    "current_settings",
    "decode_audio",
    "embed_audio",
    "embed_waveform",
    "engine_status",
    "get_engine",
    "prepare_audio",
    "reset_engines",
]
