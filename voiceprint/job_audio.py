"""The audio of an embedding job, kept out of the broker message.

The web side puts the audio in Redis (the Celery result backend's server) under a random
key that expires with the job, and sends the worker only the key; the worker takes it,
reading and deleting it at once. So no queued message, broker dump or worker log line ever
holds audio, and the audio of a job that no worker finished (a killed worker, a job nobody
took) is gone when the job's time is up: the web side deletes it when it stops waiting,
and the expiry covers a web process that died meanwhile.
"""

from __future__ import annotations

import math
import secrets

from redis import Redis
from redis.exceptions import RedisError

KEY_PREFIX = "voiceprint:job-audio:"


def _redis() -> Redis:
    """The Redis result backend's client (and its connection pool)."""
    from config.celery import app

    client = getattr(app.backend, "client", None)
    if not isinstance(client, Redis):
        raise RedisError("the Celery result backend is not Redis")
    return client


def put(audio: bytes, ttl_seconds: float) -> str:
    """Store `audio` for at most `ttl_seconds` (rounded up); the key to pass to the worker."""
    key = KEY_PREFIX + secrets.token_urlsafe(24)
    _redis().set(key, audio, ex=max(1, math.ceil(ttl_seconds)))
    return key


def take(key: str) -> bytes | None:
    """The audio stored under `key`, deleted as it is read; None when it has expired (or
    was taken already)."""
    if not key.startswith(KEY_PREFIX):
        raise ValueError("not a job audio key")
    pipe = _redis().pipeline(transaction=True)  # GET and DEL as one step (any Redis version)
    pipe.get(key)
    pipe.delete(key)
    audio, _ = pipe.execute()
    return audio


def discard(key: str) -> None:
    """Delete the audio of a job the web side stopped waiting for."""
    _redis().delete(key)
