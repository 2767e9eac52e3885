"""A worker killed in the middle of a job: the API answers 50300 and stores nothing, Redis
keeps nothing of the job's audio, and the next job, on a new worker, works."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest

from tests.conftest import SHARED_AUDIO
from tests.helpers import envelope
from tests.integration.conftest import REDIS_URL, Worker, keys_holding, new_queue
from tests.voiceprint.conftest import create_device, enroll, nothing_stored, post_raw, wav_bytes

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

ENROLL_TIMEOUT = 10  # VOICEPRINT_EMBED_TIMEOUT while the worker dies: the wait for 50300


def long_speech() -> bytes:
    """15 s of one speaker (a raw body may have 512 KB), with a random gain: bytes no other
    test run has."""
    parts = ["test/leijun-test-sr-1.wav", "test/leijun-test-sr-2.wav"]
    samples = np.concatenate([_read(part) for part in parts])
    gain = np.random.default_rng().uniform(0.7, 0.9)
    return wav_bytes((samples * gain).astype(np.int16))


def _read(part: str) -> np.ndarray:
    import soundfile

    samples, rate = soundfile.read(SHARED_AUDIO / "zh" / part, dtype="int16")
    assert rate == 16000
    return samples


def kill_when_it_starts_the_job(worker: Worker, failures: list[BaseException]) -> None:
    try:
        worker.wait_for("] received", timeout=ENROLL_TIMEOUT + 30)
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
    except BaseException as exc:  # reported by the test, not lost in this thread
        failures.append(exc)


def test_a_worker_killed_mid_job(api, client, media_root, through_broker, tmp_path, shared_audio):
    queue = new_queue()
    through_broker(REDIS_URL, timeout=ENROLL_TIMEOUT, queue=queue)
    create_device(api, "kitchen")
    audio = long_speech()

    doomed = Worker(queue, tmp_path / "doomed.log").wait_until_ready()
    failures: list[BaseException] = []
    killer = threading.Thread(target=kill_when_it_starts_the_job, args=(doomed, failures))
    killer.start()
    try:
        with nothing_stored(media_root):
            response = post_raw(api, "voices/create", audio, device_id="kitchen", voice_name="a")
            envelope(response, 50300)
    finally:
        killer.join()
        doomed.stop()
    assert not failures, failures
    assert doomed.process.returncode == -signal.SIGKILL
    log = doomed.text()
    assert "] received" in log and "succeeded in" not in log, "killed before it finished"
    assert keys_holding(audio) == [], "the job's audio outlived the job"
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["worker"]["status"] == "down"

    through_broker(REDIS_URL, timeout=120, queue=queue)
    successor = Worker(queue, tmp_path / "successor.log").wait_until_ready()
    try:
        voice = enroll(api, audio, "kitchen", voice_name="leijun")
    finally:
        successor.stop()
    assert voice["voice_name"] == "leijun"
    assert envelope(api.get(f"/v1/voiceprint/voices/{voice['voice_id']}"))["voice_id"]
    assert keys_holding(audio) == []
