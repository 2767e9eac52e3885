"""Celery tasks: the embedding job, run in a worker that keeps its models loaded."""

from __future__ import annotations

import time
from dataclasses import asdict

from celery import shared_task
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import worker_process_init, worker_ready
from redis.exceptions import RedisError

import engine
from voiceprint import job_audio

# The message carries a job_audio key, not the audio (older workers took base64 audio
# under the name "voiceprint.embed_audio": a renamed task fails loudly across versions).
EMBED_TASK = "voiceprint.embed_stored_audio"


@shared_task(name=EMBED_TASK, acks_late=False, ignore_result=False)
def embed_audio_task(
    audio_key: str, engine_name: str | None = None, anti_spoofing: bool = False
) -> dict:
    """Embed the audio stored under `audio_key` (voiceprint.job_audio) in the worker.
    Engine errors come back as data, not as pickled exceptions, so the web side re-raises
    the same typed error (see voiceprint.embedding).

    Every reply also carries `started_at` (wall clock, when this job started: the web side
    derives the queue wait from it) and, on success, `embed_seconds`, because the worker's
    own metrics are never scraped."""
    started_at = time.time()
    started = time.perf_counter()
    try:
        audio = job_audio.take(audio_key)
    except RedisError as exc:
        return _unavailable(f"the job's audio could not be read: {type(exc).__name__}", started_at)
    if audio is None:  # the web side gave up on this job and its audio expired
        return _unavailable("the job's audio expired before a worker took it", started_at)
    try:
        result = engine.embed_audio(audio, engine_name, anti_spoofing=anti_spoofing)
    except engine.InsufficientSpeechError as exc:
        return {
            "error": type(exc).__name__,
            "speech_seconds": exc.speech_seconds,
            "minimum_seconds": exc.minimum_seconds,
            "started_at": started_at,
        }
    except engine.EngineError as exc:
        return {"error": type(exc).__name__, "message": str(exc), "started_at": started_at}
    return {
        "vector": result.vector.tolist(),
        "model": result.model,
        "dim": result.dim,
        "speech_seconds": result.speech_seconds,
        "duration_seconds": result.duration_seconds,
        "quality": result.quality.as_dict(),
        "batch_size": result.batch_size,
        "spoof": asdict(result.spoof) if result.spoof is not None else None,
        "started_at": started_at,
        "embed_seconds": time.perf_counter() - started,
    }


def _unavailable(message: str, started_at: float) -> dict:
    return {
        "error": engine.EngineUnavailableError.__name__,
        "message": message,
        "started_at": started_at,
    }


@worker_process_init.connect
def _load_engine_in_worker(**kwargs) -> None:
    """Load the active engine when a worker process starts, not on its first job."""
    try:
        engine.active_engine()
    except engine.EngineError:
        pass  # each job will report it; the worker itself stays up


@worker_ready.connect
def _load_engine_in_threaded_worker(sender=None, **kwargs) -> None:
    """The same for the thread (and solo) pools, whose jobs run in the main process:
    prefork's main process only forks, and its children load their own engine above."""
    if not isinstance(getattr(sender, "pool", None), PreforkPool):
        _load_engine_in_worker()
