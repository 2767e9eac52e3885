"""WS /v1/voiceprint/stream against the real service (`make run`: gunicorn, the WebSocket
bridge, the embedded database), with a real WebSocket client and real speech
(../shared/audio/zh). Protocol: docs/STREAMING.md.

Audio is sent at four times real time: the partials are paced in audio seconds, so the
events are those of a real-time stream, sooner.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests import factories as make
from tests.config.service import Service, postmaster_pid, wait_for

pytestmark = pytest.mark.slow

STREAM = "/v1/voiceprint/stream"
DEVICE = "kitchen"
SPEAKERS = ("fangjun", "leijun", "liudehua")
FRAME = 1600  # 100 ms at 16 kHz
SPEED = 4.0
#: Settings of this module's service: short enough to test each limit.
LIMITS = {
    "VOICEPRINT_STREAM_IDLE_TIMEOUT": "3",
    "VOICEPRINT_STREAM_MAX_SECONDS": "40",
    "VOICEPRINT_STREAM_MAX_PER_TENANT": "2",
}


@pytest.fixture(scope="module")
def service(tmp_path_factory, shared_audio_module):
    # The tenant's stream cap is counted in Redis, over both web processes.
    env = {
        **LIMITS,
        "VOICEPRINT_RATE_LIMIT": "off",
        "VOICEPRINT_TOKEN_RATE_LIMIT": "off",
        "VOICEPRINT_CACHE_URL": "redis://127.0.0.1:6379/13",
        "VOICEPRINT_CACHE_KEY_PREFIX": f"stream-test-{uuid.uuid4().hex[:8]}",
    }
    service = Service(tmp_path_factory.mktemp("stream") / "var", extra_env=env)
    service.start(via_make=True)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def shared_audio_module():
    from tests.conftest import require_shared

    return require_shared()


@pytest.fixture(scope="module")
def token(service) -> str:
    """A tenant with the three zh speakers enrolled (every enroll recording) on DEVICE."""
    token = service.create_tenant("streaming")
    assert service.post("/v1/voiceprint/devices", token, {"device_id": DEVICE})["code"] == 0
    for speaker in SPEAKERS:
        first, *more = make.enroll_files(speaker)
        headers = {"X-Device-Id": DEVICE, "X-Voice-Name": speaker}
        created = service.post("/v1/voiceprint/voices/create", token, first, headers=headers)
        voice_id = created["data"]["voice_id"]
        for audio in more:
            added = service.post(f"/v1/voiceprint/voices/{voice_id}/samples", token, audio,
                                 headers={"X-Force": "true"})  # fmt: skip
            assert added["code"] == 0, added
    return token


@dataclass
class Stream:
    """What a client saw: the events in order, and how the socket closed."""

    events: list[dict] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def error(self) -> dict | None:
        errors = self.of("error")
        return errors[-1] if errors else None


def _url(service: Service, **query: str) -> str:
    query = {"device_id": DEVICE, **query}
    return f"ws://127.0.0.1:{service.port}{STREAM}?" + "&".join(
        f"{k}={v}" for k, v in query.items()
    )


def _open(service: Service, token: str | None, **query: str) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return connect(_url(service, **query), additional_headers=headers, open_timeout=30)


def _pcm(*recordings: bytes) -> bytes:
    samples = np.concatenate([make.decode(r)[0] for r in recordings])
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def _read_all(ws: ClientConnection, stream: Stream, timeout: float = 60) -> Stream:
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            stream.events.append(json.loads(ws.recv(timeout=deadline - time.monotonic())))
    except ConnectionClosed:
        pass
    stream.close_code, stream.close_reason = ws.close_code, ws.close_reason or ""
    return stream


def _stream(ws: ClientConnection, pcm: bytes, *, speed: float = SPEED, stop: bool = True) -> Stream:
    """Send `pcm` in 100 ms frames (whole frames only), then stop; every event until the
    close. Events are read as they come, so that the reader is never the slow one."""
    stream = Stream()
    step = FRAME * 2
    try:
        for start in range(0, len(pcm) - step + 1, step):
            ws.send(pcm[start : start + step])
            _drain(ws, stream)
            time.sleep(0.1 / speed)
        if stop:
            ws.send(json.dumps({"type": "stop"}))
    except ConnectionClosed:
        pass  # the server closed the stream: what it sent before is read below
    return _read_all(ws, stream)


def _drain(ws: ClientConnection, stream: Stream) -> None:
    try:
        while True:
            stream.events.append(json.loads(ws.recv(timeout=0)))
    except (TimeoutError, ConnectionClosed):
        pass


def _refused(service: Service, token: str | None, *, first: str | bytes | None = None,
             **query: str) -> Stream:  # fmt: skip
    with _open(service, token, **query) as ws:
        if first is not None:
            ws.send(first)
        return _read_all(ws, Stream(), timeout=30)


# --------------------------------------------------------------------------- identities


def test_final_names_the_speaker_with_the_fields_of_identify(service, token):
    probe = make.probe_speech("leijun", 1)
    with _open(service, token, agent_id="butler") as ws:
        stream = _stream(ws, _pcm(probe))
    assert stream.close_code == 1000, stream
    kinds = [e["type"] for e in stream.events]
    assert kinds[0] == "ready" and kinds[-1] == "end" and "speech_start" in kinds
    finals = stream.of("final")
    assert finals and all(f["voice_name"] == "leijun" and f["decision"] == "match"
                          for f in finals), finals  # fmt: skip
    assert stream.of("end")[0]["utterances"] == len(finals)
    # Exactly the fields of voices/identify, and the stream's own.
    identify = service.post("/v1/voiceprint/voices/identify", token, probe,
                            headers={"X-Device-Id": DEVICE, "X-Agent-Id": "butler"})  # fmt: skip
    assert set(finals[0]) - {"type", "at", "utterance", "start", "end"} == set(identify["data"])
    assert all(f["interrupt"] in ("true", "false") for f in finals)  # an agent was named
    for ended, final in zip(stream.of("speech_end"), finals, strict=False):
        assert ended["identified"] and ended["utterance"] == final["utterance"]


def test_partials_come_before_the_end_of_a_long_utterance_and_are_paced(service, token):
    # leijun-test-sr-1's second utterance runs about 7 s without a pause.
    with _open(service, token) as ws:
        stream = _stream(ws, _pcm(make.probe_speech("leijun", 1)))
    partials = stream.of("partial")
    ends = {e["utterance"]: e["at"] for e in stream.of("speech_end")}
    starts = {e["utterance"]: e["at"] for e in stream.of("speech_start")}
    early = [p for p in partials if p["at"] < ends[p["utterance"]] - 1.0]
    assert early, stream.events
    assert any(p["voice_name"] == "leijun" for p in early)
    for utterance in {p["utterance"] for p in partials}:
        times = [p["at"] for p in partials if p["utterance"] == utterance]
        assert times[0] - starts[utterance] >= 0.9  # a second of speech heard first
        assert all(b - a >= 0.5 - 1e-6 for a, b in itertools.pairwise(times))
    assert all(0 < p["compute_ms"] < 5000 and p["model"] == "ge2e" for p in partials)
    assert all(p["interrupt"] is None for p in partials)  # no agent named


def test_two_speakers_one_after_the_other_make_a_speaker_change(service, token):
    pcm = _pcm(make.probe_speech("leijun", 1), make.probe_speech("fangjun", 1))
    with _open(service, token) as ws:
        stream = _stream(ws, pcm)
    changes = stream.of("speaker_change")
    assert any(c["from"]["voice_name"] == "leijun" and c["to"]["voice_name"] == "fangjun"
               for c in changes), stream.events  # fmt: skip
    named = [f["voice_name"] for f in stream.of("final") if f["matched"]]
    assert named[0] == "leijun" and named[-1] == "fangjun", named
    assert named == sorted(named, key=["leijun", "fangjun"].index)  # never back to leijun


def test_device_statistics_count_each_utterance_once(service, token):
    def identify_count() -> int:
        return service.get(f"/v1/voiceprint/devices/{DEVICE}", token)[1]["data"]["stats"][
            "identify_count"
        ]

    before = identify_count()
    with _open(service, token) as ws:
        stream = _stream(ws, _pcm(make.probe_speech("fangjun", 1)))
    assert len(stream.of("partial")) > len(stream.of("final")) >= 1
    assert identify_count() - before == len(stream.of("final"))


def test_a_client_without_headers_authenticates_with_its_first_message(service, token):
    with connect(f"ws://127.0.0.1:{service.port}{STREAM}", open_timeout=30) as ws:
        ws.send(json.dumps({"type": "start", "token": token, "device_id": DEVICE,
                            "sample_rate": 8000}))  # fmt: skip
        ready = json.loads(ws.recv(timeout=30))
        assert ready["type"] == "ready" and ready["sample_rate"] == 8000
        samples = make.decode(make.probe_speech("liudehua", 1))[0]
        pcm = (samples[::2] * 32767).astype("<i2").tobytes()  # 8 kHz, 100 ms = 1600 bytes
        stream = Stream(events=[ready])
        for start in range(0, len(pcm) - 1600 + 1, 1600):
            ws.send(pcm[start : start + 1600])
            _drain(ws, stream)
            time.sleep(0.1 / SPEED)
        ws.send(json.dumps({"type": "stop"}))
        _read_all(ws, stream)
    assert stream.close_code == 1000
    assert any(f["voice_name"] == "liudehua" for f in stream.of("final")), stream.events


# --------------------------------------------------------------------------- refusals


def _assert_closed(stream: Stream, code: int, business: int) -> None:
    assert stream.close_code == code, stream
    assert stream.error is not None and stream.error["code"] == business, stream.events
    assert stream.close_reason and stream.close_reason in stream.error["msg"]


def test_authentication_failures_close_4401(service, token):
    _assert_closed(_refused(service, None, first=b"\0" * 3200), 4401, 40100)
    _assert_closed(_refused(service, "vp_00000000_forged"), 4401, 40100)
    start = json.dumps({"type": "start", "token": "nope", "device_id": DEVICE})
    _assert_closed(_refused(service, None, first=start), 4401, 40100)
    ticket = json.dumps({"type": "start", "ticket": "forged:ticket", "device_id": DEVICE})
    _assert_closed(_refused(service, None, first=ticket), 4401, 40100)


def _console_ticket(service: Service) -> str:
    """A console stream ticket for DEVICE, issued by another process than the web's."""
    code = (
        "from tenancy.models import Tenant\n"
        "from voiceprint.streaming.tickets import stream_ticket_issue\n"
        "tenant = Tenant.objects.get(name='streaming')\n"
        f"print(stream_ticket_issue(tenant_id=tenant.pk, device_id={DEVICE!r}, actor='console:t'))"
    )
    done = service.manage("shell", "-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def _first_event(service: Service, text: str) -> dict:
    with connect(f"ws://127.0.0.1:{service.port}{STREAM}", open_timeout=30) as ws:
        ws.send(text)
        return json.loads(ws.recv(timeout=30))


def test_a_console_ticket_opens_one_stream_over_every_web_process(service, token):
    start = json.dumps({"type": "start", "ticket": _console_ticket(service), "device_id": DEVICE})
    # Presented by four streams at once, to the service's two web processes: one opens.
    with ThreadPoolExecutor(4) as pool:
        firsts = list(pool.map(lambda _: _first_event(service, start), range(4)))
    assert sorted(e["type"] for e in firsts) == ["error", "error", "error", "ready"], firsts
    assert all(e["code"] == 40100 for e in firsts if e["type"] == "error")
    again = _refused(service, None, first=start)  # and never again
    _assert_closed(again, 4401, 40100)
    assert "already used" in again.error["msg"]


def test_scopes_decide_who_may_stream_for_a_device(service, token):
    def issued(scope: str, device: str = "") -> str:
        reply = service.post("/v1/voiceprint/tokens", token, {"scope": scope, "device_id": device})
        return reply["data"]["token"]

    _assert_closed(_refused(service, issued("read")), 4403, 40300)
    assert service.post("/v1/voiceprint/devices", token, {"device_id": "hall"})["code"] == 0
    _assert_closed(_refused(service, issued("device", "hall")), 4403, 40300)
    with _open(service, issued("device", DEVICE)) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
    _assert_closed(_refused(service, token, device_id="nowhere"), 4404, 40400)


def test_another_tenant_never_hears_this_tenants_voices(service, token):
    other = service.create_tenant("streaming-other")
    _assert_closed(_refused(service, other), 4404, 40400)  # "kitchen" is not theirs
    assert service.post("/v1/voiceprint/devices", other, {"device_id": DEVICE})["code"] == 0
    with _open(service, other) as ws:  # their own "kitchen", with no voices
        stream = _stream(ws, _pcm(make.probe_speech("leijun", 1)))
    assert stream.of("final") and not any(f["matched"] for f in stream.of("final"))
    assert all(f["candidates"] == [] for f in stream.of("final"))


def test_malformed_messages_close_4400(service, token):
    for first in (b"\0" * 3201, b"\0" * 20, b"\0" * 64000, "not json", '{"type": "dance"}'):
        with _open(service, token) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "ready"
            ws.send(first)
            stream = _read_all(ws, Stream())
        _assert_closed(stream, 4400, 40000)
    _assert_closed(_refused(service, token, sample_rate="96000"), 4400, 40000)


def test_an_idle_stream_closes_4408(service, token):
    started = time.monotonic()
    with _open(service, token) as ws:
        stream = _read_all(ws, Stream())
    assert stream.close_code == 4408, stream
    assert 2.5 <= time.monotonic() - started <= 15
    assert stream.error["code"] == 40000


def test_a_stream_ends_4413_at_its_longest_after_its_final(service, token):
    speech = _pcm(make.probe_speech("fangjun", 1))
    silence = b"\0" * (2 * 16_000 * 40)
    with _open(service, token) as ws:
        stream = _stream(ws, speech + silence, speed=50.0, stop=False)
    _assert_closed(stream, 4413, 41300)
    assert stream.of("final") and stream.of("final")[0]["voice_name"] == "fangjun"
    assert stream.events.index(stream.of("final")[-1]) < stream.events.index(stream.error)


def test_a_tenant_opens_at_most_its_streams_and_gets_places_back(service, token):
    first, second = _open(service, token), _open(service, token)
    try:
        for ws in (first, second):
            assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        _assert_closed(_refused(service, token), 4429, 42900)
    finally:
        first.close()
    with _open(service, token) as ws:  # the closed stream's place is free again
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
    second.close()


def test_other_paths_are_refused_at_the_handshake(service, token):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{service.port}/v1/voiceprint/other", open_timeout=30)
    assert refused.value.response.status_code == 403


# --------------------------------------------------------------------------- faults


def test_a_killed_database_closes_1013_and_streams_heal_without_a_restart(service, token):
    web_pid = service.process.pid

    def attempt() -> Stream:
        try:
            with _open(service, token) as ws:
                return _stream(ws, _pcm(make.clip(make.probe_speech("fangjun", 1), 0, 3)),
                               speed=20.0)  # fmt: skip
        except (OSError, InvalidStatus):
            return Stream()

    os.kill(postmaster_pid(service.pgdata), signal.SIGKILL)
    seen: list[Stream] = []

    def refused_for_now() -> bool:
        seen.append(attempt())
        return seen[-1].close_code in (1013, 1000)

    wait_for(refused_for_now, 60, "a stream while the database is down")
    assert all(s.close_code != 1011 for s in seen)  # never an internal error
    if seen[-1].close_code == 1013:
        assert seen[-1].error["code"] == 50300
    wait_for(lambda: attempt().close_code == 1000, 120, "streams after the database is back")
    assert service.process.pid == web_pid and service.process.poll() is None


def test_metrics_show_the_streams(service, token):
    with _open(service, token) as ws:
        _stream(ws, _pcm(make.probe_speech("leijun", 2)))
    _refused(service, "vp_00000000_forged")  # refusals count too
    request = f"http://127.0.0.1:{service.port}/metrics"
    import urllib.request

    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    assert "voiceprint_streams_open" in text
    assert 'voiceprint_streams_closed_total{code="1000"}' in text
    assert 'voiceprint_streams_closed_total{code="4401"}' in text
    opened = [line for line in text.splitlines() if line.startswith("voiceprint_streams_open ")]
    assert opened and float(opened[0].split()[-1]) == 0  # none left open
    count = [line for line in text.splitlines()
             if line.startswith("voiceprint_stream_partial_seconds_count")]  # fmt: skip
    assert count and float(count[0].split()[-1]) > 0
    assert 'voiceprint_stream_events_total{type="final"}' in text
