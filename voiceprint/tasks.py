"""Celery tasks: the embedding job, run in a worker that keeps its models loaded."""

from __future__ import annotations

import base64
import time

from celery import shared_task
from celery.signals import worker_process_init

import engine

EMBED_TASK = "voiceprint.embed_audio"


@shared_task(name=EMBED_TASK, acks_late=False, ignore_result=False)
def embed_audio_task(audio_base64: str, engine_name: str | None = None) -> dict:
    """Embed audio in the worker. Engine errors come back as data, not as pickled
    exceptions, so the web side re-raises the same typed error (see voiceprint.embedding).

    Every reply also carries `started_at` (wall clock, when this job started: the web side
    derives the queue wait from it) and, on success, `embed_seconds`, because the worker's
    own metrics are never scraped."""
    started_at = time.time()
    started = time.perf_counter()
    try:
        result = engine.embed_audio(base64.b64decode(audio_base64), engine_name)
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
        "started_at": started_at,
        "embed_seconds": time.perf_counter() - started,
    }


@worker_process_init.connect
def _load_engine_in_worker(**kwargs) -> None:
    """Load the active engine when a worker process starts, not on its first job."""
    try:
        engine.active_engine()
    except engine.EngineError:
        pass  # each job will report it; the worker itself stays up
