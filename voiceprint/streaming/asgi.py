"""WS /v1/voiceprint/stream: the ASGI application, one `StreamConnection` per socket
(protocol: docs/STREAMING.md).

Three tasks share a connection, so that none waits on another's slow part:
- receiving: frames in, checked and segmented at once (StreamSession: cheap numpy, about
  0.1 ms per 100 ms frame). An utterance that ends is made a job (its WAV and the engine's
  count of its speech, 10-17 ms for 15 s) in the thread pool below, never on the event
  loop that every stream of the process shares; its `speech_end` waits for it;
- analysing: partials and finals, run in a thread pool (`VOICEPRINT_STREAM_THREADS`,
  shared by the process's streams) because they embed and query the database (a partial's
  window is made a job there too, and replies are serialised there). Finals queue
  in order; a partial is cut from the newest audio only when the analysis is free, so a
  stream that falls behind skips partials instead of piling them up;
- sending: events out through an outbox. A client that reads slowly makes only this task
  wait; when its unsent events pile up, partials are dropped, never the other events.

Events follow the audio: a change of the session (frames pushed, a flush, a split) and the
events it causes are emitted under one lock (`_order`), so that the receiving task and the
analysis, each waiting on the pool, never interleave their events.

Database work runs in the pool's threads like a request: old or broken connections are closed
before and after each call (as Django does around requests), so a database that restarts
is reconnected to by the next stream, without a restart of the web server.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connections

from audit.context import acting_as, current_actor
from config import observability
from core.auth_guard import forwarded_client_address
from core.authentication import TenantPrincipal, authenticate_plaintext, bearer_plaintext
from core.exception_handlers import api_error_from_exception
from core.exceptions import ApiError, ErrorCode, forbidden, invalid
from core.limits import failing_open, lease_release, lease_renew, lease_take
from core.scopes import device_action_check
from devices.models import Device
from devices.selectors import device_get
from tenancy.models import Tenant
from voiceprint import services
from voiceprint.api.serializers import VoiceIdentifyOutputSerializer
from voiceprint.api.views import identify_reply
from voiceprint.spoofing import anti_spoofing_wanted
from voiceprint.streaming.protocol import (
    IDLE_CLOSE,
    NORMAL_CLOSE,
    PATH,
    StreamParams,
    close_code,
    close_reason,
    error_event,
    frame_check,
    start_message,
    stream_params,
)
from voiceprint.streaming.session import (
    Step,
    StreamLimits,
    StreamSession,
    UtteranceAudio,
    UtteranceEnded,
    UtteranceJob,
    partial_job,
)
from voiceprint.streaming.tickets import Ticket, stream_ticket_redeem

logger = logging.getLogger(__name__)

#: Unsent events beyond which a partial is dropped rather than queued.
OUTBOX_PARTIAL_LIMIT = 4
#: Seconds a tenant's stream place is held without renewal (a dead process frees it).
LEASE_TTL = 60.0
#: Seconds the last events and the close frame may take to reach a slow client.
CLOSE_TIMEOUT = 5.0
#: What a start message's "token" that is no token is told (and counted for, as a malformed
#: Authorization header is).
START_TOKEN_FORMAT = 'the start message\'s "token" must be a non-empty string'
#: The outbox's last item: the sender stops there, and the close frame follows.
_CLOSE = object()

_pool: ThreadPoolExecutor | None = None


async def application(scope: dict, receive: Callable, send: Callable) -> None:
    """The ASGI entry point (config.asgi routes PATH here)."""
    if scope["type"] != "websocket" or scope.get("path") != PATH:
        raise ValueError(f"not a stream connection: {scope['type']} {scope.get('path')}")
    await StreamConnection(scope, receive, send).run()


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(settings.VOICEPRINT_STREAM_THREADS, "stream")
    return _pool


def stream_threads_stop() -> None:
    """Stop the pool's threads, closing their database connections (a test database can
    then be dropped); the next stream starts a new pool."""
    global _pool
    pool, _pool = _pool, None
    if pool is None:
        return
    threads = len(pool._threads)
    # One task per thread: each waits for the others, so no thread takes two.
    together = threading.Barrier(threads)

    def close() -> None:
        connections.close_all()
        together.wait(timeout=10)

    for _ in range(threads):
        pool.submit(close)
    pool.shutdown(wait=True)


class Closing(Exception):
    """End the stream with this close code (after an `error` event when `error` is set)."""

    def __init__(self, code: int, reason: str = "", error: ApiError | None = None) -> None:
        super().__init__(reason)
        self.code, self.reason, self.error = code, reason, error

    @classmethod
    def for_error(cls, error: ApiError) -> Closing:
        return cls(close_code(error), close_reason(error.message), error)


class Disconnected(Exception):
    """The client went away (websocket.disconnect)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Opened:
    """Who streams, for which device: what authentication and authorisation found."""

    tenant: Tenant
    device: Device
    actor: str
    #: Whether the utterances are checked for spoofing (the request, the device, the tenant).
    anti_spoofing: bool = False


@dataclass(frozen=True)
class Speaker:
    voice_id: str
    voice_name: str
    #: The utterance it was matched in.
    utterance: int


class StreamConnection:
    def __init__(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._receive, self._send = receive, send
        self._headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                         for k, v in scope.get("headers", [])}  # fmt: skip
        self._query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        client = scope.get("client") or ("", 0)
        self._address = forwarded_client_address(
            remote_addr=client[0], forwarded_for=self._headers.get("x-forwarded-for", "")
        )
        self.stream_id = uuid.uuid4().hex
        self._limits = StreamLimits.from_settings()
        self._actor = "system"
        self._outbox: deque[Any] = deque()
        self._outbox_ready = asyncio.Event()
        self._wake = asyncio.Event()  # new audio or a final for the analysis
        self._idle = asyncio.Event()  # the analysis has nothing to do
        self._finals: deque[UtteranceJob] = deque()
        # The session's changes and the events they cause, one at a time (see above).
        self._order = asyncio.Lock()
        self._session: StreamSession | None = None
        self._params: StreamParams | None = None
        self._opened: Opened | None = None
        self._lease: str | None = None
        self._speaker: Speaker | None = None  # the last voice matched on the stream
        self._utterance_voice: dict[int, str] = {}  # the voice the utterance's partials matched
        self._utterances = 0

    # --- the connection's life ------------------------------------------------------------

    async def run(self) -> None:
        if (await self._receive())["type"] != "websocket.connect":
            return
        await self._send({"type": "websocket.accept"})
        sender = asyncio.create_task(self._send_loop())
        closing: Closing | None
        try:
            await self._serve()
            closing = Closing(NORMAL_CLOSE)
        except Closing as exc:
            closing = exc
        except Disconnected as exc:
            closing = None
            self._count_close(exc.code)
        except Exception as exc:  # mapped once, like a request's (core.exception_handlers)
            closing = Closing.for_error(api_error_from_exception(exc))
        finally:
            await self._release()
        if closing is None:
            sender.cancel()
            return
        await self._close(closing, sender)

    async def _serve(self) -> None:
        header = self._headers.get("authorization")
        start = None if header is not None else await self._start_message()
        # Who streams comes first, as on the API: a bad credential learns nothing else.
        credential, actor = await self._in_thread(self._authenticate, header=header, start=start)
        self._params = stream_params(self._query, start)
        opened = await self._in_thread(self._open, credential, actor=actor)
        wanted = anti_spoofing_wanted(
            opened.tenant, requested=self._params.anti_spoofing, device=opened.device
        )
        self._opened = replace(opened, anti_spoofing=wanted)
        self._actor = self._opened.actor
        await self._take_place()
        self._session = StreamSession(sample_rate=self._params.sample_rate, limits=self._limits)
        observability.stream_opened()
        self._emit({
            "type": "ready", "stream_id": self.stream_id, "device_id": self._params.device_id,
            "agent_id": self._params.agent_id, "sample_rate": self._params.sample_rate,
            "anti_spoofing": self._opened.anti_spoofing, "limits": self._limits.as_dict(),
        })  # fmt: skip
        await self._until_one_ends(self._receive_loop(), self._analysis_loop(), self._renew_loop())

    async def _until_one_ends(self, *loops: Awaitable[None]) -> None:
        """Run the loops until the first ends; its exception (if any) ends the stream."""
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _close(self, closing: Closing, sender: asyncio.Task) -> None:
        if closing.error is not None:
            self._emit(error_event(closing.error))
        self._outbox.append(_CLOSE)
        self._outbox_ready.set()
        try:
            await asyncio.wait_for(asyncio.shield(sender), CLOSE_TIMEOUT)
        except Exception:  # a client that stopped reading, or one that is gone
            sender.cancel()
        try:
            await self._send({"type": "websocket.close", "code": closing.code,
                              "reason": closing.reason})  # fmt: skip
        except Exception:
            pass  # already closed by the sender, or the client is gone
        self._count_close(closing.code)

    # --- authentication and the tenant's place ---------------------------------------------

    async def _start_message(self) -> dict[str, Any]:
        message = await self._next_message()
        if message.get("text") is None:
            raise ApiError(
                ErrorCode.UNAUTHORIZED,
                'without an Authorization header the first message must be {"type": "start", '
                '"token": ...}',
            )
        start = start_message(message["text"])
        if start["type"] != "start":
            raise invalid("type", 'the first message must be of type "start"')
        return start

    def _authenticate(
        self, *, header: str | None, start: dict[str, Any] | None
    ) -> tuple[TenantPrincipal | Ticket, str]:
        """The stream's credential and its audit actor (in a pool thread: cache and database).

        A token, in the handshake's Authorization header or the start message, counts
        towards its address's lockout as the API's do, malformed ones included, and a
        locked-out address is refused 42900 before it is looked up (core.authentication).
        A console ticket is not counted: signed by the server, it cannot be guessed, and it
        opens one stream only (tickets.stream_ticket_redeem)."""
        if header is not None:
            principal = authenticate_plaintext(bearer_plaintext(header), address=self._address)
            return principal, current_actor()  # the token's, set by authenticate_plaintext
        if isinstance(start.get("ticket"), str):
            ticket = stream_ticket_redeem(start["ticket"])
            return ticket, ticket.actor
        token = start.get("token")
        if token is None:  # no credential at all: like a request without Authorization
            raise ApiError(ErrorCode.UNAUTHORIZED, "missing bearer token")
        principal = authenticate_plaintext(
            token if isinstance(token, str) else None,
            address=self._address,
            malformed=START_TOKEN_FORMAT,
        )
        return principal, current_actor()

    def _open(self, credential: TenantPrincipal | Ticket, *, actor: str) -> Opened:
        """Authorise the credential for the stream's device (in a pool thread)."""
        device_id = self._params.device_id
        if isinstance(credential, Ticket):
            tenant = Tenant.objects.filter(pk=credential.tenant_id, is_active=True).first()
            if tenant is None:
                raise ApiError(ErrorCode.UNAUTHORIZED, "the stream ticket's tenant is gone")
            if credential.device_id != device_id:
                raise forbidden(f"this ticket may only stream for device {credential.device_id!r}")
            return Opened(tenant, device_get(tenant, device_id=device_id), actor)
        device_action_check(credential, device_id=device_id)
        return Opened(credential.tenant, device_get(credential.tenant, device_id=device_id), actor)

    async def _take_place(self) -> None:
        limit = settings.VOICEPRINT_STREAM_MAX_PER_TENANT
        key = f"stream:tenant:{self._opened.tenant.pk}"

        def take() -> str | None:
            with failing_open("stream limit"):
                place = lease_take(cache, key, limit=limit, holder=self.stream_id, ttl=LEASE_TTL)
                if place is None:
                    raise ApiError(
                        ErrorCode.RATE_LIMITED,
                        f"the tenant has {limit} streams open (VOICEPRINT_STREAM_MAX_PER_TENANT)",
                    )
                return place
            return None  # the cache is unreachable: no limit rather than no streams

        self._lease = await self._in_thread(take)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(LEASE_TTL / 3)
            if self._lease is not None:
                await self._in_thread(self._renew)

    def _renew(self) -> None:
        with failing_open("stream limit"):
            lease_renew(cache, self._lease, holder=self.stream_id, ttl=LEASE_TTL)

    async def _release(self) -> None:
        if self._lease is None:
            return
        place, self._lease = self._lease, None

        def release() -> None:
            with failing_open("stream limit"):
                lease_release(cache, place, holder=self.stream_id)

        try:
            await self._in_thread(release)
        except Exception:
            logger.warning("stream place not released (it expires)")

    # --- receiving ---------------------------------------------------------------------------

    async def _next_message(self) -> dict[str, Any]:
        try:
            message = await asyncio.wait_for(self._receive(), self._limits.idle_timeout)
        except TimeoutError:
            seconds = f"{self._limits.idle_timeout:g}"
            error = invalid(
                "stream", f"no message for {seconds} s (VOICEPRINT_STREAM_IDLE_TIMEOUT)"
            )
            raise Closing(IDLE_CLOSE, close_reason(error.message), error) from None
        if message["type"] == "websocket.disconnect":
            raise Disconnected(message.get("code", 1005))
        return message

    async def _receive_loop(self) -> None:
        while True:
            message = await self._next_message()
            if message.get("bytes") is not None:
                await self._audio(message["bytes"])
                await asyncio.sleep(0)  # frames already buffered must not starve the analysis
                if self._session.exhausted:
                    await self._drain()
                    error = ApiError(
                        ErrorCode.AUDIO_TOO_LARGE,
                        f"the stream reached {self._limits.max_seconds:g} s of audio "
                        "(VOICEPRINT_STREAM_MAX_SECONDS)",
                    )
                    raise Closing.for_error(error)
                continue
            control = start_message(message.get("text") or "")
            if control["type"] == "stop":
                await self._drain()
                self._emit({"type": "end", "utterances": self._utterances})
                return
            if control["type"] == "start":
                raise invalid("type", '"start" may only be the first message')
            raise invalid("type", f"unknown message type {control['type'][:32]!r}")

    async def _audio(self, pcm: bytes) -> None:
        frame_check(pcm, self._params)
        async with self._order:
            await self._queue(self._session.push(pcm))

    async def _drain(self) -> None:
        """End the utterance in progress and wait until every final is sent."""
        async with self._order:
            await self._queue(self._session.flush())
        await self._idle.wait()

    async def _queue(self, steps: list[Step]) -> None:
        """Send the session's events, in order (an utterance that ended is decided in the
        pool first); its finals, and the next partial, go to the analysis. Called under
        `_order`."""
        for step in steps:
            if isinstance(step, UtteranceEnded):
                event, final = await self._computed(step.decided)
                self._emit(event)
                if final is not None:
                    self._finals.append(final)
            else:
                self._emit(step)
        self._idle.clear()
        self._wake.set()

    # --- analysing ----------------------------------------------------------------------------

    async def _analysis_loop(self) -> None:
        while True:
            if self._finals:
                await self._final(self._finals.popleft())
            elif self._session.partial_due():
                await self._partial(self._session.take_partial())
            else:
                self._idle.set()
                await self._wake.wait()
                self._wake.clear()

    async def _partial(self, audio: UtteranceAudio) -> None:
        opened, params = self._opened, self._params
        started = time.perf_counter()
        decided = await self._in_thread(
            _partial_decided, audio, min_speech=self._session.min_speech,
            tenant=opened.tenant, device=opened.device, agent_id=params.agent_id,
            anti_spoofing=opened.anti_spoofing,
        )  # fmt: skip
        if decided is None:
            self._session.partial_refused(audio)
            return
        job, result, reply = decided
        observability.observe_stream_partial(time.perf_counter() - started)
        async with self._order:
            if job.utterance != self._session.utterance or not self._session.in_speech:
                return  # the utterance ended meanwhile: its final says more
            utterance = job.utterance
            if self._took_over(result, utterance):
                # Another speaker without a pause: the utterance so far is the first speaker's.
                await self._queue(self._session.split())
                utterance = self._session.utterance
                # This partial is the new utterance's first: the next ones compare with it.
                self._utterance_voice = {utterance: result.best.voice.voice_id}
            self._emit({
                "type": "partial", "at": round(job.at, 3), "utterance": utterance,
                "speech_seconds": round(job.speech_seconds, 3),
                **{name: reply[name] for name in _PARTIAL_FIELDS},
                **({"spoof": reply["spoof"]} if "spoof" in reply else {}),
                "compute_ms": round((time.perf_counter() - started) * 1000),
            })  # fmt: skip
            self._track_speaker(result, utterance)

    def _took_over(self, result: services.VoiceIdentifyResult, utterance: int) -> bool:
        """A partial matched a voice other than the one this utterance's partials matched."""
        if not result.matched:
            return False
        voice_id = result.best.voice.voice_id
        previous = self._utterance_voice.get(utterance)
        self._utterance_voice = {utterance: voice_id}
        return previous is not None and previous != voice_id

    async def _final(self, job: UtteranceJob) -> None:
        opened, params = self._opened, self._params
        result, reply = await self._in_thread(
            _replied, services.voice_identify,
            opened.tenant, device=opened.device, audio=job.wav, agent_id=params.agent_id,
            top_k=params.top_k, anti_spoofing=opened.anti_spoofing,
        )  # fmt: skip
        self._utterances += 1
        self._emit({"type": "final", "utterance": job.utterance, "start": round(job.start, 3),
                    "end": round(job.at, 3), **reply})  # fmt: skip
        self._track_speaker(result, job.utterance)

    def _track_speaker(self, result: services.VoiceIdentifyResult, utterance: int) -> None:
        """`speaker_change` when a match names another voice than the last match did, in the
        order of the audio (a final of an utterance before the last one matched changes
        nothing: a partial of a later one has spoken since)."""
        if not result.matched:
            return
        voice = result.best.voice
        last = self._speaker
        if last is not None and utterance < last.utterance:
            return
        if last is not None and last.voice_id != voice.voice_id:
            self._emit({
                "type": "speaker_change", "utterance": utterance,
                "from": {"voice_id": last.voice_id, "voice_name": last.voice_name},
                "to": {"voice_id": voice.voice_id, "voice_name": voice.name},
            })  # fmt: skip
        self._speaker = Speaker(voice.voice_id, voice.name, utterance)

    async def _in_thread(self, function: Callable, *args: Any, **kwargs: Any) -> Any:
        call = functools.partial(_database_call, self._actor, function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(_threads(), call)

    async def _computed(self, function: Callable, *args: Any) -> Any:
        """CPU work without the database (an utterance's WAV and speech count) in the pool."""
        return await asyncio.get_running_loop().run_in_executor(_threads(), function, *args)

    # --- sending ------------------------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> None:
        if "at" not in event:
            seconds = self._session.received_seconds if self._session else 0.0
            event = {"type": event["type"], "at": round(seconds, 3), **event}
        if event["type"] == "partial" and len(self._outbox) >= OUTBOX_PARTIAL_LIMIT:
            observability.count_stream_partial_dropped()
            return
        self._outbox.append(json.dumps(event))
        self._outbox_ready.set()
        observability.count_stream_event(event["type"])

    async def _send_loop(self) -> None:
        while True:
            while not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
            item = self._outbox.popleft()
            if item is _CLOSE:
                return
            await self._send({"type": "websocket.send", "text": item})

    def _count_close(self, code: int) -> None:
        # Refusals before `ready` are counted too; only an opened stream was counted open.
        observability.stream_closed(code, opened=self._session is not None)


#: The fields of the identify reply a partial carries (and `spoof` when it was checked).
_PARTIAL_FIELDS = ("matched", "voice_id", "voice_name", "role_id", "role_name", "score",
                   "threshold", "decision", "probability", "interrupt", "model")  # fmt: skip


def _replied(
    identify: Callable[..., services.VoiceIdentifyResult], *args: Any, **kwargs: Any
) -> tuple[services.VoiceIdentifyResult, dict[str, Any]]:
    """An identification and its reply as identify's `data` (in a pool thread)."""
    result = identify(*args, **kwargs)
    return result, VoiceIdentifyOutputSerializer(identify_reply(result)).data


def _partial_decided(
    audio: UtteranceAudio,
    *,
    min_speech: float,
    tenant: Tenant,
    device: Device,
    agent_id: str | None,
    anti_spoofing: bool,
) -> tuple[UtteranceJob, services.VoiceIdentifyResult, dict[str, Any]] | None:
    """A partial (in a pool thread): its window made a job, then identified provisionally;
    None when the engine finds too little speech in the window."""
    job = partial_job(audio, min_speech=min_speech)
    if job is None:
        return None
    result, reply = _replied(
        services.voice_identify_provisional, tenant, device=device, audio=job.wav,
        agent_id=agent_id, anti_spoofing=anti_spoofing,
    )  # fmt: skip
    return job, result, reply


def _database_call(actor: str, function: Callable, /, *args: Any, **kwargs: Any) -> Any:
    """One call in a pool thread, framed like a request: stale connections closed before and
    after, and the stream's actor for the audit log."""
    close_old_connections()
    try:
        with acting_as(actor):
            return function(*args, **kwargs)
    finally:
        close_old_connections()
