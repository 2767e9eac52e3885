"""The one function the API calls to turn audio into an embedding.

With a broker (CELERY_BROKER_URL) the work runs in a Celery worker, which keeps the
models loaded, and this waits for it up to VOICEPRINT_EMBED_TIMEOUT seconds; a timeout
or an unreachable broker is EngineUnavailableError (business code 50300). Without a
broker it runs here, in the calling process. The audio goes to the worker through Redis
under a short-lived key (voiceprint.job_audio), not in the broker message.

Metrics (config.observability): the embedding time per engine, measured where the work
runs (the worker reports its own), the queue wait of worker jobs, and the size of the batch
each embedding was computed in (engine.batching; the worker reports it too).
"""

from __future__ import annotations

import logging
import time
from typing import NoReturn

import numpy as np
from celery.exceptions import CeleryError
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

import engine
from config import observability
from voiceprint import job_audio
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


def compute_embedding(
    audio: bytes, engine_name: str | None = None, *, anti_spoofing: bool = False
) -> engine.EmbeddingResult:
    """Audio bytes -> embedding with the named engine (None: the active one); with
    `anti_spoofing`, the countermeasure's score of the same audio too (one job)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        started = time.perf_counter()
        result = engine.embed_audio(audio, engine_name, anti_spoofing=anti_spoofing)
        observability.observe_embedding(result.model, "in-process", time.perf_counter() - started)
        observability.observe_batch_size(result.model, "in-process", result.batch_size)
        return result
    result = _result_from_payload(_run_in_worker(audio, engine_name, anti_spoofing))
    observability.observe_batch_size(result.model, "celery", result.batch_size)
    return result


def _run_in_worker(audio: bytes, engine_name: str | None, anti_spoofing: bool) -> dict:
    """The worker's reply. The message carries a key to the audio, never the audio itself
    (voiceprint.job_audio); the audio and the result are deleted however the job ends."""
    timeout = settings.VOICEPRINT_EMBED_TIMEOUT
    enqueued_at = time.time()  # wall clock: the worker's start time is compared with it
    try:
        audio_key = job_audio.put(audio, ttl_seconds=timeout)
    except (RedisError, OSError) as exc:
        _queue_unreachable(exc)
    try:
        pending = _enqueue(audio_key, engine_name, anti_spoofing, timeout)
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
    finally:
        _discard(audio_key)  # already taken, unless no worker got to this job
    _observe_worker_timings(payload, enqueued_at)
    return payload


def _enqueue(audio_key: str, engine_name: str | None, anti_spoofing: bool, timeout: float):
    try:
        return embed_audio_task.apply_async(
            args=[audio_key, engine_name],
            # Only when asked: workers of the release before anti-spoofing take the others.
            kwargs={"anti_spoofing": True} if anti_spoofing else {},
            argsrepr=repr(["<job audio key>", engine_name]),  # what a worker's DEBUG log shows
            expires=timeout,  # a job nobody picked up in time is not worth doing later
        )
    # Celery's Redis result consumer gives up with a bare RuntimeError ("retry limit exceeded").
    except (KombuError, RedisError, OSError, CeleryError, RuntimeError) as exc:
        _queue_unreachable(exc)


def _queue_unreachable(exc: Exception) -> NoReturn:
    logger.warning("embedding queue unreachable: %s", exc.__class__.__name__)
    raise engine.EngineUnavailableError("the embedding queue is unavailable") from exc


def _discard(audio_key: str) -> None:
    try:
        job_audio.discard(audio_key)
    except (RedisError, OSError) as exc:  # it expires anyway; the reply matters more
        logger.warning("job audio not deleted (it expires): %s", exc.__class__.__name__)


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
    if "quality" not in payload:  # a worker of an older release, still draining the queue
        raise engine.EngineUnavailableError(
            "the embedding worker runs an older release (no probe quality): restart the workers"
        )
    spoof = payload.get("spoof")
    return engine.EmbeddingResult(
        spoof=engine.SpoofResult(**spoof) if spoof else None,
        vector=np.asarray(payload["vector"], dtype=np.float32),
        model=payload["model"],
        dim=payload["dim"],
        speech_seconds=payload["speech_seconds"],
        duration_seconds=payload["duration_seconds"],
        quality=engine.ProbeQuality.from_dict(payload["quality"]),
        batch_size=payload.get("batch_size", 1),  # workers of an older release batch nothing
    )
