"""Celery tasks: the embedding job, run in a worker that keeps its models loaded."""

from __future__ import annotations

import base64

from celery import shared_task
from celery.signals import worker_process_init

import engine

EMBED_TASK = "voiceprint.embed_audio"


@shared_task(name=EMBED_TASK, acks_late=False, ignore_result=False)
def embed_audio_task(audio_base64: str, engine_name: str | None = None) -> dict:
    """Embed audio in the worker. Engine errors come back as data, not as pickled
    exceptions, so the web side re-raises the same typed error (see voiceprint.embedding)."""
    try:
        result = engine.embed_audio(base64.b64decode(audio_base64), engine_name)
    except engine.InsufficientSpeechError as exc:
        return {
            "error": type(exc).__name__,
            "speech_seconds": exc.speech_seconds,
            "minimum_seconds": exc.minimum_seconds,
        }
    except engine.EngineError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    return {
        "vector": result.vector.tolist(),
        "model": result.model,
        "dim": result.dim,
        "speech_seconds": result.speech_seconds,
        "duration_seconds": result.duration_seconds,
    }


@worker_process_init.connect
def _load_engine_in_worker(**kwargs) -> None:
    """Load the active engine when a worker process starts, not on its first job."""
    try:
        engine.active_engine()
    except engine.EngineError:
        pass  # each job will report it; the worker itself stays up
