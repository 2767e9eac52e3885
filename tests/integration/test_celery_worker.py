"""The embedding job through a real Celery worker and the real Redis at 127.0.0.1:6379."""

from __future__ import annotations

import base64
import io
import itertools
import json
import uuid

import numpy as np
import pytest
import redis
import soundfile

import engine
from config.celery import app
from tests.engine.conftest import librispeech_windows
from tests.integration.conftest import REDIS_URL, keys_holding, new_queue, require_redis
from tests.local_servers import closed_port
from voiceprint import job_audio
from voiceprint.embedding import compute_embedding
from voiceprint.tasks import EMBED_TASK

pytestmark = pytest.mark.slow

#: Connections one embedding may try on a broker that refuses them (1 here: storing the
#: job's audio fails and nothing is enqueued); a client retrying in a loop would try many.
MAX_CONNECT_ATTEMPTS = 4


@pytest.fixture
def speech(shared_audio) -> bytes:
    """Real speech, made unique to this test (a random gain) so that its bytes can be
    looked for in a Redis that other test runs share."""
    samples, rate = soundfile.read(shared_audio / "zh/test/3d-speaker/speaker1_a_cn_16k.wav")
    gain = np.random.default_rng().uniform(0.7, 0.9)
    return _wav(samples * gain, rate)


def test_worker_embeds_exactly_like_the_local_engine(worker, through_broker, speech):
    through_broker(REDIS_URL)
    remote = compute_embedding(speech)
    local = engine.embed_audio(speech)
    assert remote.model == local.model and remote.dim == local.dim == len(remote.vector)
    np.testing.assert_allclose(remote.vector, local.vector, atol=1e-5)
    assert remote.speech_seconds == pytest.approx(local.speech_seconds)
    assert remote.quality == local.quality  # the probe's quality comes back with it
    assert remote.quality.speech_seconds == pytest.approx(remote.speech_seconds)


def test_worker_scores_spoofing_in_the_same_job_as_the_local_engine(worker, through_broker, speech):
    through_broker(REDIS_URL)
    remote = compute_embedding(speech, anti_spoofing=True)
    local = engine.embed_audio(speech, anti_spoofing=True)
    assert remote.spoof is not None and remote.spoof.model == local.spoof.model
    assert remote.spoof.score == pytest.approx(local.spoof.score, abs=1e-3)
    assert remote.spoof.windows == local.spoof.windows
    assert compute_embedding(speech).spoof is None  # only when asked


def test_the_worker_log_holds_no_embedding_or_audio(worker, through_broker, speech):
    through_broker(REDIS_URL)
    before = len(worker.text())
    vector = compute_embedding(speech).vector
    # The line Celery ends every task with, written after the result was sent.
    worker.wait_for("succeeded in", timeout=60, since=before)

    logged = worker.text()[before:]
    entries = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    (done,) = [e for e in entries if "succeeded in" in e["message"]]
    assert done["logger"] == "celery.app.trace" and done["request_id"]
    assert done["message"].endswith("[not logged]"), done  # no return value, no embedding
    for first, second in itertools.pairwise(float(value) for value in vector):
        assert f"{first}, {second}" not in logged and f"{first},{second}" not in logged
    assert base64.b64encode(speech).decode()[4000:4064] not in logged
    assert keys_holding(speech) == []


def test_concurrent_jobs_are_batched_and_each_gets_its_own_result(worker, through_broker):
    """The worker's thread pool runs queued jobs at once and embeds them as batches: each job
    still gets exactly its own audio's embedding (8 different speakers)."""
    through_broker(REDIS_URL)
    clips = [_wav(window) for window in librispeech_windows(8, 3.0)]
    expected = [engine.embed_audio(clip).vector for clip in clips]

    pending = [
        app.send_task(EMBED_TASK, args=[job_audio.put(clip, ttl_seconds=60), None])
        for clip in clips * 2
    ]
    replies = [job.get(timeout=120) for job in pending]

    assert max(reply["batch_size"] for reply in replies) > 1
    for index, reply in enumerate(replies):
        vector = np.asarray(reply["vector"], dtype=np.float32)
        np.testing.assert_allclose(vector, expected[index % len(clips)], atol=1e-5)


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


def test_audio_that_expired_before_a_worker_took_it_is_unavailable(worker, through_broker):
    through_broker(REDIS_URL)
    expired = job_audio.KEY_PREFIX + "never-stored"
    reply = app.send_task(EMBED_TASK, args=[expired, None]).get(timeout=60)
    assert reply["error"] == "EngineUnavailableError" and "expired" in reply["message"]


@pytest.mark.django_db
def test_healthz_counts_the_workers_on_our_queue(worker, through_broker, client):
    through_broker(REDIS_URL)
    body = client.get("/healthz").json()
    assert body["broker"] == {"status": "ok", "mode": "celery"}
    assert body["worker"] == {"status": "ok", "workers": 1}


@pytest.mark.django_db
def test_healthz_with_a_broker_but_no_worker_is_degraded(through_broker, client):
    require_redis()
    through_broker(REDIS_URL, queue=new_queue())
    response = client.get("/healthz")
    body = response.json()
    assert body["broker"]["status"] == "ok"
    assert body["worker"] == {"status": "down", "workers": 0}
    assert response.status_code == 503 and body["status"] == "degraded"


def test_broker_down_is_unavailable(through_broker, speech, connects):
    through_broker(f"redis://127.0.0.1:{closed_port()}/0", timeout=5)
    with pytest.raises(engine.EngineUnavailableError, match="queue is unavailable"):
        compute_embedding(speech)
    # Fails fast rather than hangs: a few refused connections (the client's own retries),
    # not a loop of them, and nothing reached anywhere else.
    assert 1 <= len(connects) <= MAX_CONNECT_ATTEMPTS, connects
    assert set(connects) == {connects[0]}


def test_no_worker_times_out_as_unavailable_and_leaves_no_audio(through_broker, speech):
    require_redis()
    queue = f"nobody-listens-{uuid.uuid4().hex[:8]}"
    through_broker(REDIS_URL, timeout=1.5, queue=queue)
    with pytest.raises(engine.EngineUnavailableError, match="did not answer"):
        compute_embedding(speech)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert client.llen(queue) == 1  # the job is still queued: nobody consumes that queue
        assert keys_holding(speech) == []  # but neither it nor anything else holds the audio
        # and no job's audio is kept without an expiry
        assert all(client.ttl(key) != -1 for key in client.scan_iter(job_audio.KEY_PREFIX + "*"))
    finally:
        client.delete(queue)


def _wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
