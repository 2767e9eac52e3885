"""The stream's rules without a socket: parameters, frames, close codes (protocol), the
pacing of partials and the cutting of utterances (session), and a slow reader, driving the
ASGI application directly (the live server's tests: test_stream_live.py)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from config import observability
from core.exceptions import ApiError, ErrorCode
from tests import factories as make
from voiceprint.streaming.asgi import application, stream_threads_stop
from voiceprint.streaming.protocol import (
    PATH,
    StreamParams,
    close_code,
    close_reason,
    frame_check,
    start_message,
    stream_params,
)
from voiceprint.streaming.session import StreamLimits, StreamSession
from voiceprint.streaming.tickets import stream_ticket_issue

LIMITS = StreamLimits(
    max_seconds=600, idle_timeout=10, endpoint_seconds=0.6, max_utterance_seconds=15,
    partial_min_speech=1.0, partial_interval=0.5, partial_window=3.0,
)  # fmt: skip


def _frames(audio: bytes, rate: int = 16_000, ms: int = 100) -> list[bytes]:
    samples = make.decode(audio)[0]
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    step = rate * ms // 1000
    return [pcm[i : i + step].tobytes() for i in range(0, len(pcm) - step + 1, step)]


# --------------------------------------------------------------------------- protocol


@pytest.mark.parametrize(
    ("code", "close"),
    [
        (ErrorCode.INVALID_PARAMETER, 4400), (ErrorCode.UNAUTHORIZED, 4401),
        (ErrorCode.FORBIDDEN, 4403), (ErrorCode.NOT_FOUND, 4404), (ErrorCode.CONFLICT, 4409),
        (ErrorCode.AUDIO_TOO_LARGE, 4413), (ErrorCode.RATE_LIMITED, 4429),
        (ErrorCode.INTERNAL, 1011), (ErrorCode.UNAVAILABLE, 1013),
    ],
)  # fmt: skip
def test_close_codes_follow_the_business_codes(code, close):
    assert close_code(ApiError(code, "x")) == close


def test_a_close_reason_fits_a_close_frame_on_a_character_boundary():
    reason = close_reason("声纹" * 100)
    assert len(reason.encode()) <= 123 and "声纹".startswith(reason[-1:])


def test_parameters_come_from_the_query_and_the_start_message():
    params = stream_params({"device_id": "a", "sample_rate": "8000"}, {"agent_id": "b"})
    assert params == StreamParams(device_id="a", agent_id="b", sample_rate=8000, top_k=3)
    assert stream_params({"device_id": "a"}, {"device_id": "c"}).device_id == "c"


@pytest.mark.parametrize(
    ("query", "start"),
    [
        ({}, None), ({"device_id": " "}, None), ({"device_id": "a", "sample_rate": "96000"}, None),
        ({"device_id": "a", "sample_rate": "x"}, None), ({"device_id": "a"}, {"sample_rate": 1.5}),
        ({"device_id": "a", "top_k": "0"}, None), ({"device_id": "a" * 129}, None),
        ({"device_id": "a"}, {"agent_id": 7}),
    ],
)  # fmt: skip
def test_bad_parameters_are_40000(query, start):
    with pytest.raises(ApiError) as refused:
        stream_params(query, start)
    assert refused.value.code == ErrorCode.INVALID_PARAMETER


@pytest.mark.parametrize("rate", [8_000, 16_000, 48_000])
def test_frames_are_20_to_200_ms_of_16_bit_pcm(rate):
    params = StreamParams(device_id="a", agent_id=None, sample_rate=rate, top_k=3)
    for ms in (20, 100, 200):
        frame_check(b"\0" * (rate * ms // 1000 * 2), params)
    for size in (rate // 50 * 2 - 2, rate // 5 * 2 + 2, rate // 10 * 2 + 1):
        with pytest.raises(ApiError):
            frame_check(b"\0" * size, params)


@pytest.mark.parametrize("text", ["", "[1]", '{"kind": "stop"}', "{" * 5000, '{"type": 3}'])
def test_text_messages_are_typed_json_objects(text):
    with pytest.raises(ApiError):
        start_message(text)


# --------------------------------------------------------------------------- session


def test_partials_wait_for_a_second_of_speech_then_come_every_half_second(shared_audio):
    session = StreamSession(sample_rate=16_000, limits=LIMITS)
    partials, starts, finals = [], [], []
    for frame in _frames(make.probe_speech("leijun", 1)):
        events, ended = session.push(frame)
        starts += [e for e in events if e["type"] == "speech_start"]
        finals += ended
        if session.partial_due():
            job = session.take_partial()
            if job is not None:
                partials.append(job)
    assert len(starts) == 2 and len(finals) == 1  # the second ends with the stream
    first = [p for p in partials if p.utterance == 1]
    assert first[0].at - starts[0]["at"] >= 1.0 and first[0].speech_seconds >= 1.0
    for utterance in (1, 2):
        times = [p.at for p in partials if p.utterance == utterance]
        assert times and all(b - a >= 0.5 for a, b in itertools.pairwise(times))
    # A partial is decided on the newest window only.
    assert all(len(make.decode(p.wav)[0]) <= 3.0 * 16_000 + 480 for p in partials)
    _, last = session.flush()
    assert [job.utterance for job in last] == [2] and last[0].start == starts[1]["at"]


def test_an_utterance_with_too_little_speech_gets_no_final(shared_audio):
    session = StreamSession(sample_rate=16_000, limits=LIMITS)
    short = make.clip(make.probe_speech("fangjun", 2), 0.3, 0.8)
    events, finals = [], []
    for frame in _frames(short) + _frames(make.silence(1.5)):
        more, ended = session.push(frame)
        events += more
        finals += ended
    ended = [e for e in events if e["type"] == "speech_end"]
    assert ended and not ended[0]["identified"] and ended[0]["reason"] == "too_little_speech"
    assert finals == []


def test_a_stream_is_exhausted_at_its_most_audio():
    limits = StreamLimits(**{**LIMITS.__dict__, "max_seconds": 1.0})
    session = StreamSession(sample_rate=8_000, limits=limits)
    for _ in range(9):
        session.push(b"\0" * 1600)
    assert not session.exhausted
    session.push(b"\0" * 1600)
    assert session.exhausted and session.received_seconds == pytest.approx(1.0, abs=0.02)


# --------------------------------------------------------------------------- a slow reader


@pytest.fixture
def stream_threads():
    """The stream pool's threads hold database connections: closed after the test."""
    yield
    stream_threads_stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_threads")
def test_a_slow_reader_loses_partials_never_finals_and_never_slows_the_analysis(
    tenant_and_token, shared_audio
):
    tenant, token = tenant_and_token
    kitchen = make.device(tenant, "kitchen")
    for speaker in ("leijun", "fangjun"):
        make.speaker_voice(tenant, speaker, devices=[kitchen])
    frames = _frames(make.probe_speech("leijun", 1)) + _frames(make.probe_speech("fangjun", 1))
    dropped_before = observability.STREAM_PARTIALS_DROPPED._value.get()
    sent, reading = asyncio.run(_stream_to_a_reader_that_stops(token, frames))
    events = [json.loads(m["text"]) for m in sent if m["type"] == "websocket.send"]
    kinds = [e["type"] for e in events]
    assert sent[-1] == {"type": "websocket.close", "code": 1000, "reason": ""}
    identified = [e for e in events if e["type"] == "speech_end" and e["identified"]]
    assert len(identified) == kinds.count("final") >= 2 and kinds[-1] == "end"
    assert kinds.count("speech_start") == kinds.count("speech_end")
    assert observability.STREAM_PARTIALS_DROPPED._value.get() > dropped_before
    # Everything was decided while the reader read nothing: once it reads, it all comes.
    assert reading < 2.0, reading


async def _stream_to_a_reader_that_stops(token: str, frames: list[bytes]):
    sent: list[dict] = []
    reader_back = asyncio.Event()
    loop = asyncio.get_running_loop()
    back_at: list[float] = []

    async def send(message: dict) -> None:
        if message["type"] == "websocket.send" and sent and not reader_back.is_set():
            await reader_back.wait()  # the client stopped reading after `ready`
        sent.append(message)

    async def reader_returns() -> None:
        await asyncio.sleep(1.0)  # long enough for the last final
        back_at.append(loop.time())
        reader_back.set()

    await _stream(_scope(b"device_id=kitchen", token), send, frames, pace=0.1,
                  after_stop=reader_returns)  # fmt: skip
    return sent, loop.time() - back_at[0]


def _scope(query: bytes, token: str | None = None) -> dict:
    """A stream's ASGI scope, with the bearer header when a token is given."""
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return {"type": "websocket", "path": PATH, "query_string": query, "headers": headers,
            "client": ("10.0.0.1", 1)}  # fmt: skip


async def _stream(
    scope: dict,
    send: Callable[[dict], Awaitable[None]],
    frames: list[bytes],
    *,
    pace: float,
    after_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run the application on `frames`, one every `pace` seconds, then a stop, until it ends."""
    incoming: asyncio.Queue = asyncio.Queue()
    await incoming.put({"type": "websocket.connect"})
    app = asyncio.create_task(application(scope, incoming.get, send))
    for frame in frames:
        await incoming.put({"type": "websocket.receive", "bytes": frame})
        await asyncio.sleep(pace)
    await incoming.put({"type": "websocket.receive", "text": '{"type": "stop"}'})
    if after_stop is not None:
        await after_stop()
    await asyncio.wait_for(app, 60)


# --------------------------------------------------------------------------- console tickets


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_threads")
def test_a_ticket_streams_for_its_own_device_only(tenant):
    make.device(tenant, "kitchen")
    make.device(tenant, "hall")
    ticket = stream_ticket_issue(tenant_id=tenant.pk, device_id="kitchen", actor="console:ann")

    def first_reply(device_id: str, ticket: str) -> list[dict]:
        start = {"type": "start", "ticket": ticket, "device_id": device_id}
        return asyncio.run(_replies_to([json.dumps(start)]))

    ready = first_reply("kitchen", ticket)
    assert json.loads(ready[1]["text"])["type"] == "ready"
    refused = first_reply("hall", ticket)
    assert json.loads(refused[1]["text"])["code"] == 40300 and refused[-1]["code"] == 4403
    forged = first_reply("kitchen", ticket[:-2] + "xx")
    assert forged[-1]["code"] == 4401


async def _replies_to(texts: list[str]) -> list[dict]:
    """What the application sends for these first messages, then an idle client's close."""
    incoming: asyncio.Queue = asyncio.Queue()
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)
        if len(sent) >= 2:  # accept, then the first event: enough
            await incoming.put({"type": "websocket.disconnect", "code": 1000})

    await incoming.put({"type": "websocket.connect"})
    for text in texts:
        await incoming.put({"type": "websocket.receive", "text": text})
    await asyncio.wait_for(application(_scope(b""), incoming.get, send), 30)
    return sent


# --------------------------------------------------------------------------- anti-spoofing


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_threads")
def test_a_stream_checks_its_utterances_when_asked(tenant_and_token, shared_audio, settings):
    tenant, token = tenant_and_token
    kitchen = make.device(tenant, "kitchen")
    make.speaker_voice(tenant, "leijun", devices=[kitchen])
    settings.VOICEPRINT_SPOOF_THRESHOLD = 1000.0  # every probe is a spoof
    frames = _frames(make.probe_speech("leijun", 1))
    sent = asyncio.run(
        _stream_in_process(token, frames, query=b"device_id=kitchen&anti_spoofing=true")
    )
    events = [json.loads(m["text"]) for m in sent if m["type"] == "websocket.send"]
    assert events[0]["type"] == "ready" and events[0]["anti_spoofing"] is True
    decided = [e for e in events if e["type"] in ("partial", "final")]
    assert decided and all(e["decision"] == "spoof" and e["spoof"]["is_spoof"] for e in decided)
    assert not any(e["matched"] for e in decided)


async def _stream_in_process(token: str, frames: list[bytes], *, query: bytes) -> list[dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await _stream(_scope(query, token), send, frames, pace=0.05)
    return sent
