"""Real Celery workers on the real Redis at 127.0.0.1:6379 (db 15), each on a private queue
so that no other worker on that Redis takes our jobs, and what a job leaves in Redis."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.celery import app
from tests.conftest import PROJECT_ROOT

REDIS_URL = os.environ.get("VOICEPRINT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            raise AssertionError(f"CI needs Redis at {REDIS_URL}: {exc}") from exc
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")


def new_queue() -> str:
    return f"voiceprint-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def queue() -> str:
    return new_queue()


class Worker:
    """A `celery worker` process consuming one queue, with the thread pool of `make worker`;
    its output goes to `log`."""

    def __init__(self, queue: str, log: Path, **env: str):
        require_redis()
        self.queue, self.log = queue, log
        environment = {
            **os.environ,
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            **env,
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
        ]
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 120, since: int = 0) -> None:
        """Until `needle` is in the log after its first `since` characters (the timeout
        bounds the wait; it is no speed requirement)."""
        deadline = time.monotonic() + timeout
        while needle not in self.text()[since:]:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r} in {timeout} s:\n{self.text()[-3000:]}")
            time.sleep(0.01)

    def wait_until_ready(self) -> Worker:
        self.wait_for(" ready.")
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def worker(queue, tmp_path_factory) -> Iterator[Worker]:
    """A real worker consuming `queue`, shared by a module's tests."""
    started = Worker(queue, tmp_path_factory.mktemp("worker") / "worker.log")
    try:
        yield started.wait_until_ready()
    finally:
        started.stop()


@pytest.fixture
def through_broker(settings, queue):
    """Point this process's Celery app at the real broker (and back afterwards)."""
    saved = {
        key: app.conf[key]
        for key in ("broker_url", "result_backend", "task_default_queue", "task_always_eager")
    }

    def use(broker_url: str, timeout: float = 60, queue: str = queue):
        settings.CELERY_BROKER_URL = broker_url
        settings.CELERY_TASK_ALWAYS_EAGER = False
        settings.VOICEPRINT_EMBED_TIMEOUT = timeout
        app.conf.update(
            broker_url=broker_url,
            result_backend=broker_url,
            task_default_queue=queue,
            task_always_eager=False,
        )
        _drop_connections()

    yield use
    app.conf.update(saved)
    _drop_connections()


def _drop_connections() -> None:
    """Make the app connect anew with its current configuration."""
    app._after_fork()  # forgets the connection and producer pools
    app._backend_cache = None
    app._local = threading.local()


# --------------------------------------------------------------------------- Redis contents


def redis_values(client: redis.Redis) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) for every value in the database: strings, and each item of lists, sets,
    sorted sets and hashes; a queued Celery message also as its decoded body."""
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            items = [client.get(key)]
        elif kind == b"list":
            items = client.lrange(key, 0, -1)
        elif kind == b"set":
            items = list(client.smembers(key))
        elif kind == b"zset":
            items = client.zrange(key, 0, -1)
        elif kind == b"hash":
            items = list(client.hvals(key))
        else:
            continue
        for item in items:
            if item is not None:
                yield key, item
                yield from ((key, body) for body in _message_bodies(item))


def _message_bodies(item: bytes) -> list[bytes]:
    """A kombu message keeps its body base64-encoded inside a JSON envelope."""
    try:
        message = json.loads(item)
    except ValueError:
        return []
    if isinstance(message, list) and message:  # the unacked hash: [message, exchange, key]
        message = message[0]
    if not isinstance(message, dict) or "body" not in message:
        return []
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        return [base64.b64decode(body)]
    return [str(body).encode()]


def keys_holding(audio: bytes) -> list[bytes]:
    """Keys of REDIS_URL's database holding `audio`, raw or as base64."""
    raw = audio[len(audio) // 2 :][:64]
    encoded = base64.b64encode(audio)
    as_base64 = encoded[len(encoded) // 8 * 4 :][:64]  # a 4-aligned slice: the same in any copy
    found = redis_values(redis.Redis.from_url(REDIS_URL))
    return sorted({key for key, value in found if raw in value or as_base64 in value})
