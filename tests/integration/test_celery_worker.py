"""The embedding job through a real Celery worker and the real Redis at 127.0.0.1:6379."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import redis

import engine
from config.celery import app
from tests.conftest import PROJECT_ROOT
from voiceprint.embedding import compute_embedding

REDIS_URL = os.environ.get("VOICEPRINT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
pytestmark = pytest.mark.slow


def _require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            raise AssertionError(f"CI needs Redis at {REDIS_URL}: {exc}") from exc
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")


@pytest.fixture(scope="module")
def queue() -> str:
    # A queue of our own, so that no other worker on this Redis takes our jobs.
    return f"voiceprint-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def worker(queue, tmp_path_factory):
    """A real worker process consuming `queue`."""
    _require_redis()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {**os.environ, "CELERY_BROKER_URL": REDIS_URL, "CELERY_TASK_DEFAULT_QUEUE": queue}
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
               "--concurrency=1", "-Q", queue, "--without-gossip", "--without-mingle",
               "--loglevel=INFO"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_until_ready(process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"worker exited early:\n{log.read_text()[-3000:]}")
        if "ready." in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"worker not ready in {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def through_broker(settings, queue):
    """Point this process's Celery app at the real broker (and back afterwards)."""
    saved = {key: app.conf[key] for key in ("broker_url", "result_backend", "task_default_queue",
                                            "task_always_eager")}

    def use(broker_url: str, timeout: float = 60):
        settings.CELERY_TASK_ALWAYS_EAGER = False
        settings.VOICEPRINT_EMBED_TIMEOUT = timeout
        app.conf.update(broker_url=broker_url, result_backend=broker_url,
                        task_default_queue=queue, task_always_eager=False)
        _drop_connections()

    yield use
    app.conf.update(saved)
    _drop_connections()


def _drop_connections() -> None:
    """Make the app connect anew with its current configuration."""
    app._after_fork()  # forgets the connection and producer pools
    app._backend_cache = None
    app._local = threading.local()


@pytest.fixture
def speech(shared_audio) -> bytes:
    return (shared_audio / "zh/test/3d-speaker/speaker1_a_cn_16k.wav").read_bytes()


def test_worker_embeds_exactly_like_the_local_engine(worker, through_broker, speech):
    through_broker(REDIS_URL)
    remote = compute_embedding(speech)
    local = engine.embed_audio(speech)
    assert remote.model == local.model and remote.dim == local.dim == len(remote.vector)
    np.testing.assert_allclose(remote.vector, local.vector, atol=1e-5)
    assert remote.speech_seconds == pytest.approx(local.speech_seconds)


def test_worker_reports_typed_audio_errors(worker, through_broker):
    through_broker(REDIS_URL)
    with pytest.raises(engine.AudioDecodeError):
        compute_embedding(b"definitely not audio")
    silence = _wav(np.zeros(16000 * 3, dtype=np.float32))
    with pytest.raises(engine.InsufficientSpeechError) as caught:
        compute_embedding(silence)
    assert caught.value.minimum_seconds > caught.value.speech_seconds


def test_unknown_engine_in_worker_is_typed(worker, through_broker, speech):
    through_broker(REDIS_URL)
    with pytest.raises(engine.UnknownEngineError):
        compute_embedding(speech, "no-such-engine")


def test_broker_down_is_unavailable(through_broker, speech):
    through_broker("redis://127.0.0.1:1/0", timeout=5)
    started = time.monotonic()
    with pytest.raises(engine.EngineUnavailableError):
        compute_embedding(speech)
    assert time.monotonic() - started < 30, "must fail fast, not hang"


def test_no_worker_times_out_as_unavailable(settings, through_broker, speech):
    _require_redis()
    through_broker(REDIS_URL, timeout=1.5)
    app.conf.task_default_queue = f"nobody-listens-{uuid.uuid4().hex[:8]}"
    with pytest.raises(engine.EngineUnavailableError, match="did not answer"):
        compute_embedding(speech)


def _wav(samples: np.ndarray) -> bytes:
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
