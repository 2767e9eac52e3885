"""Serve ASGI WebSocket applications on sockets that gunicorn's threaded worker hands over.

gunicorn's gthread worker serves HTTP (WSGI) and parses every request's head; when the request
is a WebSocket upgrade, `config.gunicorn_worker` hands the socket, the parsed request and any
bytes read beyond it to this process's `WebSocketBridge`, and forgets the connection. The
bridge runs one asyncio event loop per process, in a daemon thread started at the first
connection, and speaks the protocol with the `websockets` package's sans-I/O layer
(`websockets.server.ServerProtocol`: handshake, framing, ping/pong, the close handshake and
the message size limit); the application sees the ASGI WebSocket interface
(https://asgi.readthedocs.io/en/latest/specs/www.html#websocket):

- scope: `type` "websocket", `asgi`, `http_version`, `scheme` "ws", `path`, `raw_path`,
  `query_string`, `root_path`, `headers` (lower-case byte pairs), `client`, `server`,
  `subprotocols`;
- `receive()`: `websocket.connect`, then `websocket.receive` (`bytes` or `text`), then
  `websocket.disconnect` (`code`, `reason`) once the peer closed or vanished (forever after);
- `send()`: `websocket.accept` (`subprotocol`, `headers`), `websocket.send` (`bytes` or
  `text`; it waits while the socket's buffer is full, without blocking the loop) and
  `websocket.close` (`code`, `reason`). A close before the accept refuses the handshake with
  HTTP 403, as the spec says. `send()` on a closed connection raises `ConnectionClosed` (an
  OSError, as the spec asks). Since `send()` waits for a slow reader, an application whose
  work must not wait for its client sends from a task of its own.

A message over `max_message_bytes` closes the connection with 1009; an application that raises
closes it with 1011 (before the accept: HTTP 500) and is logged without any message content.
A peer that stops answering pings is disconnected. `shutdown()` closes every connection with
1001 (going away) and stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from websockets.datastructures import Headers
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import CLOSED, CONNECTING, OPEN
from websockets.server import ServerProtocol

logger = logging.getLogger("voiceprint.websocket")
# websockets logs frame contents at DEBUG: its protocol logger stays at WARNING, so that no
# audio or token reaches a log whatever LOG_LEVEL says (the bridge logs each connection's end).
_protocol_logger = logging.getLogger("voiceprint.websocket.protocol")
_protocol_logger.setLevel(logging.WARNING)

ASGIApp = Callable[
    [dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]
]

#: Audio frames are at most 200 ms of 16-bit mono PCM at 48 kHz (19 200 bytes).
MAX_MESSAGE_BYTES = 64 * 1024
READ_CHUNK = 65536
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0
#: How long a close handshake (ours or the peer's) may take before the socket is dropped.
CLOSE_TIMEOUT = 5.0
MAX_CONNECTIONS = 1000


class ConnectionClosed(OSError):
    """`send()` on a connection that is closed or closing."""


class WebSocketBridge:
    """ASGI WebSocket connections on one event loop, in a thread of this process."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_connections: int = MAX_CONNECTIONS,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
    ) -> None:
        self.app = app
        self.max_message_bytes = max_message_bytes
        self.max_connections = max_connections
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._connections: set[_Connection] = set()  # touched on the loop only

    def serve(
        self,
        sock: socket.socket,
        *,
        path: str,
        query_string: bytes,
        headers: Sequence[tuple[str, str]],
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        leftover: bytes = b"",
    ) -> None:
        """Serve the upgrade request already read from `sock`; returns at once.

        The bridge owns `sock` from now on. `path` is the request target's path as received
        (percent-encoded), `query_string` the part after "?", `headers` the request's header
        pairs in any case, `leftover` the bytes read from the socket beyond the request.
        """
        request = _HandOver(sock, path, query_string, list(headers), client, server, leftover)
        loop = self._running_loop()
        if loop is None:
            _close_quietly(sock)  # shut down: the process is exiting
            return
        asyncio.run_coroutine_threadsafe(self._serve(request), loop)

    def shutdown(
        self, *, code: int = 1001, reason: str = "server shutting down", timeout: float = 5.0
    ) -> None:
        """Close every connection with `code` (going away), wait up to `timeout` seconds for
        their close handshakes and applications, then stop the loop. Idempotent."""
        with self._lock:
            stopped, self._stopped = self._stopped, True
            loop, thread = self._loop, self._thread
        if loop is None or stopped:
            return
        future = asyncio.run_coroutine_threadsafe(self._close_all(code, reason, timeout), loop)
        try:
            future.result(timeout + 1)
        except Exception:  # the loop is stopped below either way
            logger.warning("websocket connections did not close in time")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=2)

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def _running_loop(self) -> asyncio.AbstractEventLoop | None:
        with self._lock:
            if self._stopped:
                return None
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="websocket-bridge", daemon=True
                )
                self._thread.start()
            return self._loop

    async def _serve(self, request: _HandOver) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=request.sock, limit=READ_CHUNK)
        except OSError:
            _close_quietly(request.sock)
            return
        connection = _Connection(self, request, reader, writer)
        if len(self._connections) >= self.max_connections:
            await connection.refuse(503, "too many WebSocket connections\n")
            return
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    async def _close_all(self, code: int, reason: str, timeout: float) -> None:
        connections = list(self._connections)
        for connection in connections:
            await connection.going_away(code, reason)
        tasks = [connection.task for connection in connections if connection.task]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:  # applications that ignored the disconnect
            task.cancel()
        for connection in connections:
            connection.abort()
        if pending:
            await asyncio.wait(pending, timeout=1)


@dataclass
class _HandOver:
    """What the worker hands over: the socket and the request gunicorn parsed."""

    sock: socket.socket
    path: str
    query_string: bytes
    headers: list[tuple[str, str]]
    client: Any
    server: Any
    leftover: bytes

    def target(self) -> str:
        query = self.query_string.decode("latin-1")
        return f"{self.path}?{query}" if query else self.path

    def scope(self) -> dict[str, Any]:
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers
        ]
        return {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": unquote(self.path),
            "raw_path": self.path.encode("latin-1"),
            "query_string": self.query_string,
            "root_path": "",
            "headers": headers,
            "client": _address(self.client),
            "server": _address(self.server),
            "subprotocols": _subprotocols(headers),
            "extensions": {},
        }


class _Connection:
    """One WebSocket: the socket's reader, the application's task, and the protocol between."""

    def __init__(self, bridge: WebSocketBridge, request: _HandOver, reader, writer) -> None:
        self.bridge = bridge
        self.request = request
        self.reader: asyncio.StreamReader = reader
        self.writer: asyncio.StreamWriter = writer
        self.protocol = ServerProtocol(max_size=bridge.max_message_bytes, logger=_protocol_logger)
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.task: asyncio.Task | None = None
        self.accepted = False
        self.refused = False
        self.disconnect: dict | None = None
        self.pending = bytearray()  # bytes the peer sent before the handshake completed
        self.fragments: list[bytes] = []
        self.fragment_opcode: Opcode | None = None
        self.pongs: dict[bytes, asyncio.Future] = {}
        self.pinging: asyncio.Task | None = None
        self.parsed: Request | None = None
        self.close_timer: asyncio.TimerHandle | None = None
        self.refused_status: int | None = None
        self.started = time.monotonic()

    async def run(self) -> None:
        self.task = asyncio.current_task()
        self.parsed = self._parse_request()
        if self.parsed is None:
            await self.refuse(400, "malformed WebSocket request\n")
            return
        self.pending += self.request.leftover
        self.inbox.put_nowait({"type": "websocket.connect"})
        reading = asyncio.create_task(self._read())
        try:
            await self._run_app()
        except asyncio.CancelledError:
            self.abort()
            raise
        finally:
            await self._finish(reading)

    def _parse_request(self) -> Request | None:
        # The protocol parses the request itself, so that its own parser moves on to frames;
        # gunicorn already checked the request line and the header limits.
        headers = Headers(self.request.headers)
        self.protocol.receive_data(Request(self.request.target(), headers).serialize())
        events = self.protocol.events_received()
        return events[0] if events and isinstance(events[0], Request) else None

    async def _run_app(self) -> None:
        try:
            await self.bridge.app(self.request.scope(), self.receive, self.send)
        except asyncio.CancelledError:
            raise
        except ConnectionClosed:  # it sent on a connection its peer had left
            logger.info("websocket application on %s sent after the peer left", self.request.path)
        except Exception as exc:
            logger.error("websocket application failed on %s: %s",
                         self.request.path, type(exc).__name__, exc_info=True)  # fmt: skip
            await self._close_at_end(500, 1011, "internal error")
            return
        if not self.accepted and not self.refused:
            logger.error("websocket application on %s returned without accepting or closing",
                         self.request.path)  # fmt: skip
        await self._close_at_end(500, 1000, "")

    async def _close_at_end(self, status: int, code: int, reason: str) -> None:
        """The application is done: refuse the handshake, or close the connection."""
        if not self.accepted and not self.refused:
            await self.refuse(status, "WebSocket application error\n")
        elif self.protocol.state is OPEN and self.disconnect is None:
            self.protocol.send_close(code, reason)
            try:
                await self._flush()
            except ConnectionClosed:
                pass

    # ASGI receive and send

    async def receive(self) -> dict:
        if self.disconnect is not None and self.inbox.empty():
            return self.disconnect
        return await self.inbox.get()

    async def send(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "websocket.accept":
            await self._accept(message)
        elif kind == "websocket.send":
            await self._send_data(message)
        elif kind == "websocket.close":
            await self._close(message)
        else:
            raise ValueError(f"unexpected ASGI message type {kind!r}")

    async def _accept(self, message: dict) -> None:
        if self.refused or self.disconnect is not None:
            raise ConnectionClosed("the WebSocket is closed")
        if self.accepted:
            raise RuntimeError("websocket.accept sent twice")
        subprotocol = message.get("subprotocol")
        self.protocol.available_subprotocols = [subprotocol] if subprotocol else None
        response = self.protocol.accept(self.parsed)
        if response.status_code != 101:  # the request was no valid WebSocket handshake
            self.refused = True
            self.protocol.send_response(response)
            await self._flush()
            self._disconnected()
            raise ConnectionClosed(f"handshake refused: {response.status_code}")
        for name, value in message.get("headers") or ():
            response.headers[name.decode("latin-1")] = value.decode("latin-1")
        self.protocol.send_response(response)
        self.accepted = True
        if self.pending:  # frames that followed the request closely, in order, after the 101
            data, self.pending = bytes(self.pending), bytearray()
            self._received(data)
        await self._flush()
        self.pinging = asyncio.create_task(self._keepalive())

    async def _send_data(self, message: dict) -> None:
        if not self.accepted:
            raise RuntimeError("websocket.send before websocket.accept")
        if self.protocol.state is not OPEN or self.disconnect is not None:
            raise ConnectionClosed("the WebSocket is closed")
        if message.get("bytes") is not None:
            self.protocol.send_binary(message["bytes"])
        elif message.get("text") is not None:
            self.protocol.send_text(message["text"].encode())
        else:
            raise ValueError("websocket.send needs bytes or text")
        await self._flush()

    async def _close(self, message: dict) -> None:
        code = message.get("code") or 1000
        # The protocol allows 123 bytes of reason.
        reason = (message.get("reason") or "").encode()[:123].decode(errors="ignore")
        if not self.accepted:
            if not self.refused:
                await self.refuse(403, "WebSocket connection refused\n")
            return
        if self.protocol.state is OPEN:
            self.protocol.send_close(code, reason)
            await self._flush()

    async def refuse(self, status: int, text: str) -> None:
        """Answer the handshake with an HTTP error and close."""
        self.refused, self.refused_status = True, status
        if self.protocol.state is CONNECTING:
            self.protocol.send_response(self.protocol.reject(status, text))
            self._write(self.protocol.data_to_send())
        self._disconnected()
        self.writer.close()  # after what is buffered

    async def going_away(self, code: int, reason: str) -> None:
        if self.accepted and self.protocol.state is OPEN:
            self.protocol.send_close(code, reason)
            await self._flush(wait=False)
        elif not self.accepted and not self.refused:
            await self.refuse(503, "the server is shutting down\n")

    # the socket

    async def _read(self) -> None:
        try:
            while self.protocol.state is not CLOSED:
                data = await self.reader.read(READ_CHUNK)
                if not data:
                    if self.accepted:
                        self.protocol.receive_eof()
                        self._after_receive()
                    break
                if not self.accepted:
                    self.pending += data  # frames are read once the handshake is done
                    if len(self.pending) > self.bridge.max_message_bytes:
                        break
                    continue
                self._received(data)
        except OSError:
            pass
        finally:
            self._disconnected()

    def _received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._after_receive()

    def _after_receive(self) -> None:
        for event in self.protocol.events_received():
            self._event(event)
        self._write(self.protocol.data_to_send())
        self._expect_close()
        if self.protocol.state is not OPEN:  # closing: no message will follow
            self._disconnected()

    def _event(self, frame) -> None:
        if frame.opcode is Opcode.PONG:
            waiter = self.pongs.pop(bytes(frame.data), None)
            if waiter and not waiter.done():
                waiter.set_result(None)
            return
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self.fragment_opcode, self.fragments = frame.opcode, [frame.data]
        elif frame.opcode is Opcode.CONT:
            self.fragments.append(frame.data)
        else:
            return  # ping (the protocol answered it) or close (handled after the events)
        if frame.fin:
            self._message(self.fragment_opcode, b"".join(self.fragments))
            self.fragments = []

    def _message(self, opcode: Opcode, data: bytes) -> None:
        if opcode is Opcode.BINARY:
            self.inbox.put_nowait({"type": "websocket.receive", "bytes": data})
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.protocol.fail(1007, "invalid UTF-8")
            return
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})

    def _disconnected(self) -> None:
        """Tell the application, once: the code the peer closed with, else the one we closed
        with (1009 for an oversized message), else 1006 (the peer vanished)."""
        if self.disconnect is not None:
            return
        close = self.protocol.close_rcvd or self.protocol.close_sent
        code, reason = (close.code, close.reason) if close else (1006, "")
        self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.inbox.put_nowait(self.disconnect)

    def _write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            if self.writer.is_closing():
                return
            if chunk:
                self.writer.write(chunk)
            elif self.writer.can_write_eof():
                self.writer.write_eof()  # the protocol's end of stream

    async def _flush(self, wait: bool = True) -> None:
        self._write(self.protocol.data_to_send())
        self._expect_close()
        if not wait:
            return
        try:
            await self.writer.drain()  # back-pressure: the peer reads slower than we send
        except OSError as exc:
            self._disconnected()
            raise ConnectionClosed("the WebSocket peer is gone") from exc

    def _expect_close(self) -> None:
        """A peer that does not finish the close handshake in time is dropped."""
        if self.close_timer is None and self.protocol.close_expected():
            self.close_timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.abort)

    async def _keepalive(self) -> None:
        """Ping the peer now and then; one that does not answer is gone (1006)."""
        loop = asyncio.get_running_loop()
        count = 0
        while self.protocol.state is OPEN:
            await asyncio.sleep(self.bridge.ping_interval)
            if self.protocol.state is not OPEN:
                return
            count += 1
            payload = count.to_bytes(4, "big")
            waiter = self.pongs[payload] = loop.create_future()
            self.protocol.send_ping(payload)
            self._write(self.protocol.data_to_send())
            try:
                await asyncio.wait_for(waiter, self.bridge.ping_timeout)
            except TimeoutError:
                logger.info("websocket on %s: no pong, dropping it", self.request.path)
                self.abort()
                return

    def abort(self) -> None:
        if not self.writer.transport.is_closing():
            self.writer.transport.abort()
        self._disconnected()

    async def _finish(self, reading: asyncio.Task) -> None:
        """After the application: wait for the close handshake, then drop the socket."""
        if self.pinging:
            self.pinging.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(reading), CLOSE_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError):
            reading.cancel()
        self.writer.close()
        if self.close_timer:
            self.close_timer.cancel()
        if self.accepted:
            close = self.protocol.close_sent or self.protocol.close_rcvd
            outcome = f"closed {close.code if close else 1006}"
        else:
            outcome = f"refused {self.refused_status}"
        logger.info("websocket on %s %s after %.1f s", self.request.path, outcome,
                    time.monotonic() - self.started)  # fmt: skip


def _address(address) -> list | None:
    if isinstance(address, (tuple, list)) and len(address) >= 2:
        return [str(address[0]), int(address[1])]
    return [str(address), None] if address else None


def _subprotocols(headers: list[tuple[bytes, bytes]]) -> list[str]:
    offered = (
        value.decode("latin-1") for name, value in headers if name == b"sec-websocket-protocol"
    )
    return [name.strip() for value in offered for name in value.split(",") if name.strip()]


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
