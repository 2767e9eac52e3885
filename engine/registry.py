"""Engine selection: the one place that knows which engines exist and which one is active.

Engines are loaded lazily, once per process, under a lock (the first requests may arrive on
several threads at once). Load failures are not cached: a model downloaded later is picked up
by the next :func:`get_engine` call. The *active* engine, fallback included, is decided once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.audio import PreparedAudio, decode_audio, prepare_waveform
from engine.base import SpeakerEngine
from engine.batching import MicroBatcher
from engine.errors import EngineError, EngineUnavailableError, UnknownEngineError
from engine.quality import ProbeQuality
from engine.scoring import scoring_status
from engine.settings import EngineSettings

logger = logging.getLogger(__name__)


def _load_eres2netv2(settings: EngineSettings) -> SpeakerEngine:
    from engine.speaker3d import load_eres2netv2

    return load_eres2netv2(settings)


def _load_eres2net(settings: EngineSettings) -> SpeakerEngine:
    from engine.speaker3d import load_eres2net

    return load_eres2net(settings)


def _load_campplus(settings: EngineSettings) -> SpeakerEngine:
    from engine.speaker3d import load_campplus

    return load_campplus(settings)


def _load_ge2e(settings: EngineSettings) -> SpeakerEngine:
    from engine.ge2e import GE2EEngine

    return GE2EEngine()


#: Registered engines, best first. The loaders import their modules lazily so that importing
#: `engine` stays cheap and a broken optional engine cannot break the others.
_LOADERS: dict[str, Callable[[EngineSettings], SpeakerEngine]] = {
    "eres2netv2": _load_eres2netv2,
    "eres2net": _load_eres2net,
    "campplus": _load_campplus,
    "ge2e": _load_ge2e,
}

_lock = threading.RLock()
_settings: EngineSettings | None = None
_engines: dict[str, SpeakerEngine] = {}
#: One micro-batcher per loaded engine, by engine name (engine.batching).
_batchers: dict[str, MicroBatcher] = {}
_active: SpeakerEngine | None = None
_fallback_reason: str | None = None
#: The torch thread count this OS thread has set (see limit_this_thread).
_this_thread = threading.local()


@dataclass(frozen=True, eq=False)
class EmbeddingResult:
    #: L2-normalised float32 vector of shape (dim,).
    vector: np.ndarray
    #: Name of the engine that produced it (stored beside the vector).
    model: str
    dim: int
    speech_seconds: float
    duration_seconds: float
    #: Speech, SNR and clipping of the audio (its speech_seconds is the one above).
    quality: ProbeQuality
    #: How many concurrent requests were embedded in the same batch (itself included).
    batch_size: int = 1
    #: The spoofing countermeasure's score of the same audio, when it was asked for
    #: (engine.spoofing.SpoofResult).
    spoof: Any = None


# --- settings ---------------------------------------------------------------------------------


def current_settings() -> EngineSettings:
    """The process settings: from the environment at first use, or as :func:`configure` set."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = EngineSettings.from_env()
        return _settings


def configure(settings: EngineSettings | None) -> None:
    """Replace the process settings (None: re-read the environment) and drop loaded engines."""
    global _settings
    with _lock:
        reset_engines()
        _settings = settings


def reset_engines() -> None:
    """Forget every loaded engine, spoofing countermeasures included, and the active choice."""
    global _active, _fallback_reason
    from engine.spoofing import reset_spoof_detectors  # it imports this module

    with _lock:
        reset_spoof_detectors()
        _engines.clear()
        _batchers.clear()
        _active = None
        _fallback_reason = None


# --- engines ----------------------------------------------------------------------------------


def available_engines() -> list[str]:
    """Registered engine names, whether or not their weights are present."""
    return list(_LOADERS)


def get_engine(name: str) -> SpeakerEngine:
    """The engine called ``name``, loaded on first use.

    Raises :class:`UnknownEngineError`, or :class:`EngineUnavailableError` (its subclass
    :class:`ModelNotFoundError` when weights are missing) when it cannot be loaded.
    """
    if name not in _LOADERS:
        raise UnknownEngineError(f"unknown engine {name!r}; known: {', '.join(_LOADERS)}")
    engine = _engines.get(name)
    if engine is not None:
        return engine
    with _lock:
        if name not in _engines:
            _engines[name] = _load(name)
        return _engines[name]


def _load(name: str) -> SpeakerEngine:
    settings = current_settings()
    _apply_torch_threads(settings)
    try:
        engine = _LOADERS[name](settings)
    except EngineUnavailableError:
        raise
    except ImportError as exc:
        raise EngineUnavailableError(f"engine {name!r} cannot be imported: {exc}") from exc
    except Exception as exc:  # a corrupt checkpoint, a bug in a loader: not the caller's fault
        logger.exception("engine %r failed to load", name)
        raise EngineUnavailableError(f"engine {name!r} failed to load: {exc}") from exc
    _limit_blas(settings)  # the engine's imports may have loaded another BLAS
    logger.info("loaded speaker engine %s (dim %d) from %s", engine.name, engine.dim, engine.source)
    return engine


def apply_thread_settings() -> None:
    """Apply VOICEPRINT_TORCH_THREADS now (loading an engine does it too): for a process that
    computes with numpy but loads no engine, such as a web process with Celery workers."""
    with _lock:
        _apply_torch_threads(current_settings())


def _apply_torch_threads(settings: EngineSettings) -> None:
    """VOICEPRINT_TORCH_THREADS for torch (in this thread) and numpy's BLAS (the mel
    filterbank is a BLAS product): on a busy machine, a 0.1 ms product took up to 60 ms
    whenever OpenBLAS's second thread waited for a core."""
    limit_this_thread(settings)
    _limit_blas(settings)


def _limit_blas(settings: EngineSettings) -> None:
    """Every BLAS loaded so far (numpy's, scipy's) to VOICEPRINT_TORCH_THREADS threads."""
    if settings.torch_threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=settings.torch_threads, user_api="blas")


def active_engine() -> SpeakerEngine:
    """The configured engine, or the fallback (with a WARNING) when it cannot be loaded."""
    global _active, _fallback_reason
    if _active is not None:
        return _active
    with _lock:
        if _active is None:
            _active, _fallback_reason = _choose_active(current_settings())
        return _active


def _choose_active(settings: EngineSettings) -> tuple[SpeakerEngine, str | None]:
    try:
        return get_engine(settings.engine), None
    except EngineError as exc:  # unavailable, or a misspelt VOICEPRINT_ENGINE
        reason = f"engine {settings.engine!r} unavailable: {exc}"
        if not settings.fallback or settings.fallback == settings.engine:
            raise EngineUnavailableError(f"{reason}; no fallback configured") from exc
    try:
        engine = get_engine(settings.fallback)
    except EngineError as exc:
        raise EngineUnavailableError(
            f"{reason}; fallback {settings.fallback!r} also failed: {exc}"
        ) from exc
    logger.warning("using fallback speaker engine %r: %s", engine.name, reason)
    return engine, reason


def engine_status() -> dict[str, Any]:
    """What /healthz shows. Never raises."""
    try:
        engine = active_engine()
    except Exception as exc:
        return {"name": None, "dim": None, "source": None, "error": str(exc)}
    status: dict[str, Any] = {"name": engine.name, "dim": engine.dim, "source": engine.source}
    # How it runs: torch or ONNX Runtime, on which provider, fp32 or int8 (and why not int8).
    status["runtime"] = engine.runtime_status()
    # Whether identify/verify decide on calibrated scores or on the raw cosine.
    status["decisions"] = scoring_status(engine.name)
    reason = _fallback_reason
    if reason is not None:
        status["requested"] = current_settings().engine
        status["fallback_reason"] = reason
    return status


# --- embedding --------------------------------------------------------------------------------


def embed_audio(
    data: bytes, engine_name: str | None = None, *, anti_spoofing: bool = False
) -> EmbeddingResult:
    """Audio bytes -> embedding with the named engine (None: the active one), and with
    `anti_spoofing` the spoofing countermeasure's score of the same decoded audio.

    The audio is checked before the engine is loaded: bad input is refused cheaply.
    """
    settings = current_settings()
    decoded = decode_audio(data, settings)
    result = _embed(prepare_waveform(decoded, settings), engine_name)
    if anti_spoofing:
        from engine.spoofing import score_waveform  # it imports this module

        result = replace(result, spoof=score_waveform(decoded))
    return result


def embed_waveform(
    waveform: np.ndarray,
    engine_name: str | None = None,
    *,
    settings: EngineSettings | None = None,
) -> EmbeddingResult:
    """As :func:`embed_audio`, for a 16 kHz mono float32 waveform already decoded.

    ``settings`` replaces the process settings' length rules for this call (an evaluation
    embeds less speech than the service accepts, to see what refusing it is worth).
    """
    prepared = prepare_waveform(waveform, settings or current_settings())
    return _embed(prepared, engine_name)


def _embed(prepared: PreparedAudio, engine_name: str | None) -> EmbeddingResult:
    engine = active_engine() if engine_name is None else get_engine(engine_name)
    limit_this_thread(current_settings())
    batched = batcher_for(engine).embed(prepared.waveform)
    return EmbeddingResult(
        vector=batched.vector,
        model=engine.name,
        dim=engine.dim,
        speech_seconds=prepared.speech_seconds,
        duration_seconds=prepared.duration_seconds,
        quality=prepared.quality,
        batch_size=batched.batch_size,
    )


def limit_this_thread(settings: EngineSettings) -> None:
    """VOICEPRINT_TORCH_THREADS in the calling thread too. torch.set_num_threads in the thread
    that loaded the engine is not enough for the others (web request threads, a Celery
    thread pool): measured on the busy 2-core machine, GE2E embeddings from pool threads took
    376 ms at the median with stalls of 5 to 20 s, against 52 ms once each thread set it."""
    wanted = settings.torch_threads
    if wanted > 0 and getattr(_this_thread, "torch_threads", 0) != wanted:
        import torch

        torch.set_num_threads(wanted)
        _this_thread.torch_threads = wanted


def batcher_for(engine: SpeakerEngine) -> MicroBatcher:
    """The micro-batcher every embedding with `engine` in this process goes through (the web
    server's request threads, a thread-pool Celery worker's jobs)."""
    return shared_batcher(engine.name, engine.embed_batch)


def shared_batcher(key: str, run_batch: Callable[[Sequence[Any]], Sequence[Any]]) -> MicroBatcher:
    """The process's micro-batcher for `key` (a speaker engine, the spoofing countermeasure),
    made at first use with the batch settings; configure() drops them all."""
    batcher = _batchers.get(key)
    if batcher is not None:
        return batcher
    with _lock:
        if key not in _batchers:
            settings = current_settings()
            _batchers[key] = MicroBatcher(
                run_batch,
                max_size=settings.batch_max,
                wait_seconds=settings.batch_wait_ms / 1000,
            )
        return _batchers[key]
