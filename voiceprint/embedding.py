"""The one function the API calls to turn audio into an embedding.

With a broker (CELERY_BROKER_URL) the work runs in a Celery worker, which keeps the
models loaded, and this waits for it up to VOICEPRINT_EMBED_TIMEOUT seconds; a timeout
or an unreachable broker is EngineUnavailableError (business code 50300). Without a
broker it runs here, in the calling process.

Metrics (config.observability): the embedding time per engine, measured where the work
runs (the worker reports its own), and the queue wait of worker jobs.
"""

from __future__ import annotations

import base64
import logging
import time

import numpy as np
from celery.exceptions import CeleryError
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

import engine
from config import observability
from voiceprint.tasks import embed_audio_task

logger = logging.getLogger(__name__)

_REMOTE_ERRORS: dict[str, type[engine.EngineError]] = {
    cls.__name__: cls
    for cls in (
        engine.AudioDecodeError,
        engine.EngineUnavailableError,
        engine.ModelNotFoundError,
        engine.UnknownEngineError,
    )
}


def compute_embedding(audio: bytes, engine_name: str | None = None) -> engine.EmbeddingResult:
    """Audio bytes -> embedding with the named engine (None: the active one)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        started = time.perf_counter()
        result = engine.embed_audio(audio, engine_name)
        observability.observe_embedding(result.model, "in-process", time.perf_counter() - started)
        return result
    return _result_from_payload(_run_in_worker(audio, engine_name))


def _run_in_worker(audio: bytes, engine_name: str | None) -> dict:
    timeout = settings.VOICEPRINT_EMBED_TIMEOUT
    enqueued_at = time.time()  # wall clock: the worker's start time is compared with it
    try:
        pending = embed_audio_task.apply_async(
            args=[base64.b64encode(audio).decode("ascii"), engine_name],
            expires=timeout,  # a job nobody picked up in time is not worth doing later
        )
    # Celery's Redis result consumer gives up with a bare RuntimeError ("retry limit exceeded").
    except (KombuError, RedisError, OSError, CeleryError, RuntimeError) as exc:
        logger.warning("embedding queue unreachable: %s", exc.__class__.__name__)
        raise engine.EngineUnavailableError("the embedding queue is unavailable") from exc
    try:
        payload = pending.get(timeout=timeout, propagate=True)
    except CeleryTimeoutError as exc:
        pending.revoke()
        raise engine.EngineUnavailableError(
            f"the embedding worker did not answer within {timeout:g} s"
        ) from exc
    except (KombuError, RedisError, OSError) as exc:
        raise engine.EngineUnavailableError("the embedding queue is unavailable") from exc
    finally:
        pending.forget()
    _observe_worker_timings(payload, enqueued_at)
    return payload


def _observe_worker_timings(payload: dict, enqueued_at: float) -> None:
    """The queue wait and embedding time a worker reported (older workers report none)."""
    started_at = payload.get("started_at")
    if isinstance(started_at, int | float):
        observability.observe_queue_wait(started_at - enqueued_at)
    embed_seconds = payload.get("embed_seconds")
    if isinstance(embed_seconds, int | float) and "model" in payload:
        observability.observe_embedding(payload["model"], "celery", embed_seconds)


def _result_from_payload(payload: dict) -> engine.EmbeddingResult:
    error = payload.get("error")
    if error == engine.InsufficientSpeechError.__name__:
        raise engine.InsufficientSpeechError(payload["speech_seconds"], payload["minimum_seconds"])
    if error:
        raise _REMOTE_ERRORS.get(error, engine.EngineUnavailableError)(payload["message"])
    return engine.EmbeddingResult(
        vector=np.asarray(payload["vector"], dtype=np.float32),
        model=payload["model"],
        dim=payload["dim"],
        speech_seconds=payload["speech_seconds"],
        duration_seconds=payload["duration_seconds"],
    )
