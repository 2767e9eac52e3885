"""The stream's rules without a socket: parameters, frames, close codes (protocol), the
pacing of partials and the cutting of utterances (session), and a slow reader, driving the
ASGI application directly (the live server's tests: test_stream_live.py)."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from config import observability
from core.exceptions import ApiError, ErrorCode
from tenancy.models import ApiToken
from tests import factories as make
from tests.conftest import make_client, redis_caches
from tests.helpers import VP
from tests.local_servers import closed_port
from voiceprint.streaming import session as session_module
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
from voiceprint.streaming.session import (
    Step,
    StreamLimits,
    StreamSession,
    UtteranceEnded,
    UtteranceJob,
    partial_job,
)
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


def _decided(steps: list[Step]) -> tuple[list[dict], list[UtteranceJob]]:
    """The session's steps as the connection makes them: events, and the finals' jobs."""
    events, finals = [], []
    for step in steps:
        if isinstance(step, UtteranceEnded):
            event, final = step.decided()
            events.append(event)
            finals += [final] if final is not None else []
        else:
            events.append(step)
    return events, finals


def test_partials_wait_for_a_second_of_speech_then_come_every_half_second(shared_audio):
    session = StreamSession(sample_rate=16_000, limits=LIMITS)
    partials, starts, finals = [], [], []
    for frame in _frames(make.probe_speech("leijun", 1)):
        events, ended = _decided(session.push(frame))
        starts += [e for e in events if e["type"] == "speech_start"]
        finals += ended
        if session.partial_due():
            window = session.take_partial()
            job = partial_job(window, min_speech=session.min_speech)
            if job is None:
                session.partial_refused(window)
            else:
                partials.append(job)
    assert len(starts) == 2 and len(finals) == 1  # the second ends with the stream
    first = [p for p in partials if p.utterance == 1]
    assert first[0].at - starts[0]["at"] >= 1.0 and first[0].speech_seconds >= 1.0
    for utterance in (1, 2):
        times = [p.at for p in partials if p.utterance == utterance]
        assert times and all(b - a >= 0.5 for a, b in itertools.pairwise(times))
    # A partial is decided on the newest window only.
    assert all(len(make.decode(p.wav)[0]) <= 3.0 * 16_000 + 480 for p in partials)
    _, last = _decided(session.flush())
    assert [job.utterance for job in last] == [2] and last[0].start == starts[1]["at"]


def test_an_utterance_with_too_little_speech_gets_no_final(shared_audio):
    session = StreamSession(sample_rate=16_000, limits=LIMITS)
    short = make.clip(make.probe_speech("fangjun", 2), 0.3, 0.8)
    events, finals = [], []
    for frame in _frames(short) + _frames(make.silence(1.5)):
        more, ended = _decided(session.push(frame))
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


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_threads")
def test_utterance_work_runs_in_the_pool_and_the_events_keep_the_audios_order(
    tenant_and_token, shared_audio, monkeypatch
):
    tenant, token = tenant_and_token
    kitchen = make.device(tenant, "kitchen")
    for speaker in ("leijun", "fangjun"):
        make.speaker_voice(tenant, speaker, devices=[kitchen])
    # Where the stream makes each utterance's (or window's) WAV and counts its speech: the
    # real functions, noting their thread.
    threads: list[str] = []

    def noting_the_thread(function: Callable) -> Callable:
        def noted(*args, **kwargs):
            threads.append(threading.current_thread().name)
            return function(*args, **kwargs)

        return noted

    for name in ("wav_encode", "engine_speech_seconds"):
        monkeypatch.setattr(session_module, name, noting_the_thread(getattr(session_module, name)))
    frames = _frames(make.probe_speech("leijun", 1)) + _frames(make.probe_speech("fangjun", 1))
    sent = asyncio.run(_stream_in_process(token, frames, query=b"device_id=kitchen"))
    events = [json.loads(m["text"]) for m in sent if m["type"] == "websocket.send"]
    kinds = [e["type"] for e in events]
    assert kinds.count("partial") >= 2 and kinds.count("final") >= 2, kinds
    # Never on the event loop's thread (this one), every stream's frames go through it.
    assert threads and all(name.startswith("stream") for name in threads), set(threads)
    # Each utterance: its start, its partials, its end, then its final (when identified).
    starts = [e["utterance"] for e in events if e["type"] == "speech_start"]
    assert starts == list(range(1, len(starts) + 1))
    for utterance in starts:
        own = [e for e in events if e.get("utterance") == utterance]
        mine = [e["type"] for e in own if e["type"] != "speaker_change"]
        assert "speech_end" in mine, mine
        end = next(e for e in own if e["type"] == "speech_end")
        tail = ["speech_end", "final"] if end["identified"] else ["speech_end"]
        assert mine[0] == "speech_start" and mine[-len(tail) :] == tail, mine
        assert set(mine[1 : -len(tail)]) <= {"partial"}, mine
    identified = [e for e in events if e["type"] == "speech_end" and e["identified"]]
    assert len(identified) == kinds.count("final")


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


def _scope(
    query: bytes,
    token: str | None = None,
    *,
    authorization: str | None = None,
    address: str = "10.0.0.1",
) -> dict:
    """A stream's ASGI scope from `address`, with the bearer header when a token is given
    (or `authorization` as it is)."""
    if token:
        authorization = f"Bearer {token}"
    headers = [(b"authorization", authorization.encode())] if authorization is not None else []
    return {"type": "websocket", "path": PATH, "query_string": query, "headers": headers,
            "client": (address, 1)}  # fmt: skip


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
    other = stream_ticket_issue(tenant_id=tenant.pk, device_id="kitchen", actor="console:ann")
    refused = first_reply("hall", other)
    assert json.loads(refused[1]["text"])["code"] == 40300 and refused[-1]["code"] == 4403
    forged = first_reply("kitchen", ticket[:-2] + "xx")
    assert forged[-1]["code"] == 4401


def _ticket_start(ticket: str) -> str:
    return json.dumps({"type": "start", "ticket": ticket, "device_id": "kitchen"})


def _first_event(sent: list[dict]) -> dict:
    return json.loads(sent[1]["text"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_threads", "counts_in_redis")
def test_a_ticket_opens_one_stream_only(tenant):
    make.device(tenant, "kitchen")
    ticket = stream_ticket_issue(tenant_id=tenant.pk, device_id="kitchen", actor="console:ann")
    assert _first_event(asyncio.run(_replies_to([_ticket_start(ticket)])))["type"] == "ready"
    again = asyncio.run(_replies_to([_ticket_start(ticket)]))
    assert _first_event(again)["code"] == 40100 and again[-1]["code"] == 4401
    assert "already used" in _first_event(again)["msg"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_threads", "counts_in_redis")
def test_without_the_cache_tickets_answer_50300_and_work_again_once_it_is_back(tenant, settings):
    make.device(tenant, "kitchen")
    ticket = stream_ticket_issue(tenant_id=tenant.pk, device_id="kitchen", actor="console:ann")
    reachable = settings.CACHES
    settings.CACHES = redis_caches(f"redis://127.0.0.1:{closed_port()}/0", "gone")
    with pytest.raises(ApiError) as refused:
        stream_ticket_issue(tenant_id=tenant.pk, device_id="kitchen", actor="console:ann")
    assert refused.value.code == ErrorCode.UNAVAILABLE
    down = asyncio.run(_replies_to([_ticket_start(ticket)]))
    assert _first_event(down)["code"] == 50300 and down[-1]["code"] == 1013
    settings.CACHES = reachable
    # The outage used nothing up: the ticket opens its one stream now.
    assert _first_event(asyncio.run(_replies_to([_ticket_start(ticket)])))["type"] == "ready"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_threads", "counts_in_redis")
def test_of_streams_presenting_one_ticket_at_once_exactly_one_opens(tenant):
    make.device(tenant, "kitchen")
    for _ in range(3):
        ticket = stream_ticket_issue(tenant_id=tenant.pk, device_id="kitchen", actor="console:a")

        async def together(ticket: str = ticket) -> list[list[dict]]:
            return await asyncio.gather(*(_replies_to([_ticket_start(ticket)]) for _ in range(4)))

        firsts = [_first_event(sent)["type"] for sent in asyncio.run(together())]
        assert sorted(firsts) == ["error", "error", "error", "ready"], firsts


async def _replies_to(texts: list[str], scope: dict | None = None) -> list[dict]:
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
    await asyncio.wait_for(application(scope or _scope(b""), incoming.get, send), 30)
    return sent


# --------------------------------------------------------------------------- failed authentication


@pytest.fixture
def three_failures(settings):
    """Locked out after 3 failed authentications within a minute, for a minute."""
    settings.VOICEPRINT_AUTH_FAILURE_LIMIT = 3
    settings.VOICEPRINT_AUTH_FAILURE_WINDOW = 60


def _attempt(address: str, *, authorization: str | None = None, start: dict | None = None):
    """The first event and the close code of a stream from `address`."""
    scope = _scope(b"device_id=kitchen", authorization=authorization, address=address)
    texts = [json.dumps({"type": "start", "device_id": "kitchen", **start})] if start else []
    sent = asyncio.run(_replies_to(texts, scope))
    return _first_event(sent), sent[-1].get("code")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_threads", "counts_in_redis", "three_failures")
def test_malformed_credentials_count_towards_the_lockout_as_on_the_api(tenant_and_token):
    tenant, token = tenant_and_token
    make.device(tenant, "kitchen")
    used_before = ApiToken.objects.get(tenant=tenant).last_used_at
    malformed = [{"authorization": "Basic Zm9v"}, {"authorization": "Bearer "},
                 {"start": {"token": 12345}}]  # fmt: skip
    for attempt in malformed:
        event, code = _attempt("203.0.113.7", **attempt)
        assert (event["code"], code) == (40100, 4401), attempt
    # Locked out: the good token is refused unchecked, on the stream and on the API alike.
    for attempt in ({"authorization": f"Bearer {token}"}, {"start": {"token": token}},
                    {"authorization": "Basic Zm9v"}):  # fmt: skip
        event, code = _attempt("203.0.113.7", **attempt)
        assert (event["code"], code) == (42900, 4429), attempt
        assert "failed authentication" in event["msg"]
    assert ApiToken.objects.get(tenant=tenant).last_used_at == used_before
    api = make_client(token)
    assert api.get(VP + "roles", REMOTE_ADDR="203.0.113.7").json()["code"] == 42900
    # Another address streams; a start message without any token is never counted.
    assert _attempt("198.51.100.2", authorization=f"Bearer {token}")[0]["type"] == "ready"
    for _ in range(4):
        assert _attempt("198.51.100.3", start={"sample_rate": 16000})[1] == 4401
    assert _attempt("198.51.100.3", start={"token": token})[0]["type"] == "ready"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_threads", "counts_in_redis", "three_failures")
def test_failures_on_the_api_lock_the_stream_out(tenant_and_token):
    tenant, token = tenant_and_token
    make.device(tenant, "kitchen")
    anonymous = make_client(None)
    for header in ("Basic Zm9v", "Bearer ", "Bearer vp_00000000_nope"):
        reply = anonymous.get(VP + "roles", REMOTE_ADDR="203.0.113.8", HTTP_AUTHORIZATION=header)
        assert reply.json()["code"] == 40100
    event, code = _attempt("203.0.113.8", authorization=f"Bearer {token}")
    assert (event["code"], code) == (42900, 4429)


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
