"""voiceprint.stream_client, the reference streaming client, against the real server
(`python -m config.serve`: gunicorn and its WebSocket bridge, the embedded PostgreSQL, ge2e)
with voices enrolled through the REST API."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from tests.config.service import Service
from tests.conftest import PROJECT_ROOT, SHARED_AUDIO, require_shared
from voiceprint.stream_client import pcm_frames, stream_url

ZH = SHARED_AUDIO / "zh"
DEVICE = "living-room"


def _post(service: Service, path: str, token: str, body: bytes, **headers: str) -> dict:
    headers = {"Authorization": f"Bearer {token}", **headers}
    request = urllib.request.Request(service.base_url + path, body, headers, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        reply = json.loads(response.read())
    assert reply["code"] == 0, reply
    return reply["data"]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    require_shared(ZH)
    service = Service(tmp_path_factory.mktemp("stream-client") / "var",
                      extra_env={"VOICEPRINT_TORCH_THREADS": "1"})  # fmt: skip
    service.start(via_make=False)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def token(service) -> str:
    """A tenant with fangjun and leijun enrolled on DEVICE."""
    token = service.create_tenant("stream-client")
    _post(service, "/v1/voiceprint/devices", token, json.dumps({"device_id": DEVICE}).encode(),
          **{"Content-Type": "application/json"})  # fmt: skip
    for name in ("fangjun", "leijun"):
        headers = {"Content-Type": "audio/wav", "X-Device-Id": DEVICE, "X-Voice-Name": name}
        audio = (ZH / "enroll" / f"{name}-sr-1.wav").read_bytes()
        _post(service, "/v1/voiceprint/voices/create", token, audio, **headers)
    return token


def _client(service: Service, token: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "voiceprint.stream_client",
               str(ZH / "test" / "leijun-test-sr-1.wav"), "--device", DEVICE,
               "--url", f"ws://127.0.0.1:{service.port}", "--speed", "4", *args]  # fmt: skip
    return subprocess.run(command, cwd=PROJECT_ROOT, env={**service.env, "VOICEPRINT_TOKEN": token},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.slow
def test_the_client_prints_the_speakers_finals_and_exits_0(service, token):
    done = _client(service, token, "--agent", "butler")
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    finals = [line for line in lines if "  final " in line]
    assert finals and all("leijun" in line and "match" in line for line in finals), lines
    assert "ready" in lines[0] and "end" in lines[-1], lines
    assert "fangjun" not in done.stdout
    assert token not in done.stdout + done.stderr


@pytest.mark.slow
def test_json_prints_one_event_a_line_from_ready_to_end(service, token):
    done = _client(service, token, "--json", "--frame-ms", "40")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["type"] == "ready" and events[-1]["type"] == "end"
    finals = [event for event in events if event["type"] == "final"]
    assert finals and {event["voice_name"] for event in finals} == {"leijun"}
    assert events[-1]["utterances"] == len(finals)


@pytest.mark.slow
def test_a_wrong_token_exits_non_zero_with_4401_and_no_token(service, token):
    wrong = "vp_" + "x" * 40
    done = _client(service, wrong)
    assert done.returncode == 5, (done.stdout, done.stderr)
    assert "4401" in done.stderr
    assert wrong not in done.stdout + done.stderr


def test_frames_are_16_bit_pcm_of_the_frame_length_the_last_padded():
    samples = np.full(16_000 + 100, 0.5, dtype=np.float32)  # 1 s and 100 samples
    frames = pcm_frames(samples, 100)
    assert [len(frame) for frame in frames] == [3200] * 11
    pcm = np.frombuffer(b"".join(frames), dtype="<i2")
    assert (pcm[: len(samples)] == 16384).all() and not pcm[len(samples) :].any()


def test_the_url_gets_the_path_and_query_unless_it_has_a_path():
    assert stream_url("ws://h:1", device="a b", agent=None) == (
        "ws://h:1/v1/voiceprint/stream?device_id=a+b&sample_rate=16000"
    )
    assert stream_url("wss://h/x/", device="d", agent="g").startswith("wss://h/x/?device_id=d&")
