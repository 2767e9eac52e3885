"""config.websocket_bridge: ASGI WebSocket applications on handed-over sockets, spoken to by a
real client (websockets.sync.client), and the upgrade path of the real server."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus
from websockets.sync.client import connect

from config.websocket_bridge import MAX_MESSAGE_BYTES, WebSocketBridge
from tests.config.service import Service


class _Listener:
    """A listening socket whose connections go to a bridge once their request head is read:
    what gunicorn's worker does, with a minimal reader."""

    def __init__(self, app, **options):
        self.bridge = WebSocketBridge(app, **options)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/ws") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                sock, client = self.sock.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(4096)
            head, leftover = data.split(b"\r\n\r\n", 1)
            line, *fields = head.decode("latin-1").split("\r\n")
            target = line.split(" ")[1]
            path, _, query = target.partition("?")
            headers = [tuple(part.strip() for part in field.split(":", 1)) for field in fields]
            self.bridge.serve(
                sock,
                path=path,
                query_string=query.encode(),
                headers=headers,
                client=client,
                server=self.sock.getsockname(),
                leftover=leftover,
            )

    def close(self) -> None:
        self.sock.close()
        self.bridge.shutdown(timeout=2)


class _Recorder:
    """ASGI apps for the tests, recording what they received."""

    def __init__(self):
        self.scopes: list[dict] = []
        self.received: list[dict] = []
        self.sent = 0
        self.done = threading.Event()

    def disconnects(self) -> list[dict]:
        return [m for m in self.received if m["type"] == "websocket.disconnect"]

    async def echo(self, scope, receive, send):
        self.scopes.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "subprotocol": "b" if scope["subprotocols"]
                    else None, "headers": [(b"x-bridge", b"yes")]})  # fmt: skip
        try:
            while True:
                message = await receive()
                self.received.append(message)
                if message["type"] == "websocket.disconnect":
                    return
                reply = {k: v for k, v in message.items() if k in ("bytes", "text") and v}
                if message.get("text") == "close please":
                    await send({"type": "websocket.close", "code": 4400, "reason": "asked to"})
                elif message.get("text") == "fail please":
                    raise RuntimeError("the application failed")
                else:
                    await send({"type": "websocket.send", **reply})
        finally:
            self.done.set()

    async def refuse(self, scope, receive, send):
        await receive()
        await send({"type": "websocket.close", "code": 4404})

    async def fail_before_accept(self, scope, receive, send):
        raise RuntimeError("no handshake")

    async def flood(self, scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(64):
            await send({"type": "websocket.send", "bytes": bytes(1 << 20)})
            self.sent += 1
        self.done.set()
        await receive()


@pytest.fixture
def recorder():
    return _Recorder()


@pytest.fixture
def serve():
    listeners = []

    def start(app, **options):
        listeners.append(_Listener(app, **options))
        return listeners[-1]

    yield start
    for listener in listeners:
        listener.close()


def test_echo_of_bytes_and_text_and_the_scope(serve, recorder):
    server = serve(recorder.echo)
    with connect(server.url("/a%20b/c?x=1&y=%32"), subprotocols=["a", "b"]) as ws:
        ws.send(b"\x00\x01\xff")
        assert ws.recv(timeout=5) == b"\x00\x01\xff"
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        assert ws.subprotocol == "b"
        assert ws.response.headers["x-bridge"] == "yes"
    scope = recorder.scopes[0]
    assert scope["type"] == "websocket" and scope["asgi"]["version"] == "3.0"
    assert scope["scheme"] == "ws" and scope["http_version"] == "1.1"
    assert scope["path"] == "/a b/c" and scope["raw_path"] == b"/a%20b/c"
    assert scope["query_string"] == b"x=1&y=%32"
    assert scope["subprotocols"] == ["a", "b"]
    assert (b"upgrade", b"websocket") in scope["headers"]
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", server.port]


def test_the_application_close_code_and_reason_reach_the_client(serve, recorder):
    with connect(serve(recorder.echo).url()) as ws:
        ws.send("close please")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4400, "asked to")
    assert recorder.done.wait(5)
    assert recorder.disconnects()[0]["code"] == 4400


def test_a_close_before_accept_refuses_the_handshake_with_403(serve, recorder):
    with pytest.raises(InvalidStatus) as refused:
        connect(serve(recorder.refuse).url(), open_timeout=5)
    assert refused.value.response.status_code == 403


def test_an_oversized_message_closes_with_1009(serve, recorder):
    with connect(serve(recorder.echo).url(), max_size=None) as ws:
        ws.send(bytes(MAX_MESSAGE_BYTES))  # the limit itself passes
        assert len(ws.recv(timeout=5)) == MAX_MESSAGE_BYTES
        ws.send(bytes(MAX_MESSAGE_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1009
    assert recorder.done.wait(5)
    assert recorder.disconnects()[0]["code"] == 1009


def test_an_application_exception_closes_with_1011_or_refuses_with_500(serve, recorder, caplog):
    with connect(serve(recorder.echo).url()) as ws:
        ws.send("fail please")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1011
    assert "RuntimeError" in caplog.text and "fail please" not in caplog.text
    with pytest.raises(InvalidStatus) as refused:
        connect(serve(recorder.fail_before_accept).url(), open_timeout=5)
    assert refused.value.response.status_code == 500


def test_the_client_leaving_reaches_the_application_as_a_disconnect(serve, recorder):
    server = serve(recorder.echo)
    with connect(server.url()) as ws:
        ws.send(b"x")
        ws.recv(timeout=5)
    assert recorder.done.wait(5)
    assert recorder.disconnects() == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]

    vanishing = _Recorder()
    server = serve(vanishing.echo)
    ws = connect(server.url())
    ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the peer is simply gone
    assert vanishing.done.wait(5)
    assert vanishing.disconnects()[0]["code"] == 1006
    ws.close()


def test_send_waits_for_a_slow_reader_without_blocking_the_loop(serve, recorder):
    server = serve(recorder.flood)
    slow = connect(server.url(), max_size=None)
    time.sleep(1)
    assert recorder.sent < 64  # back-pressure: the socket's buffers hold far less than 64 MiB
    echo = _Recorder()
    with connect(serve(echo.echo).url()) as other:  # the loop serves others meanwhile
        other.send("still here")
        assert other.recv(timeout=5) == "still here"
    for _ in range(64):
        slow.recv(timeout=10)
    assert recorder.done.wait(5) and recorder.sent == 64
    slow.close()


def test_shutdown_closes_every_connection_with_1001(serve, recorder):
    server = serve(recorder.echo)
    with connect(server.url()) as ws:
        ws.send(b"x")
        ws.recv(timeout=5)
        server.bridge.shutdown(timeout=5)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1001
    assert recorder.done.wait(5)
    assert recorder.disconnects()[0]["code"] == 1001
    assert server.bridge.open_connections == 0
    with pytest.raises(InvalidMessage):
        connect(server.url(), open_timeout=5)  # a bridge shut down serves no one


@pytest.mark.slow
def test_the_real_server_refuses_an_unknown_path_and_still_serves_http(tmp_path):
    service = Service(tmp_path / "var", extra_env={"VOICEPRINT_WEB_WORKERS": "1"})
    service.start(via_make=False)
    try:
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{service.port}/v1/unknown-path", open_timeout=10)
        response = refused.value.response
        assert response.status_code == 403  # close 4404 before the accept: the bridge's refusal
        assert b"WebSocket connection refused" in response.body
        status, body = service.get("/healthz")  # the only worker still answers HTTP
        assert status == 200, body
    finally:
        service.stop()
    log = service.log_tail(50000)
    assert "Traceback" not in log and "Exception during worker exit" not in log


def _masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = b"\x01\x02\x03\x04"
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


_HANDSHAKE = (
    "GET /ws?device_id=d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


def test_a_frame_sent_with_the_request_is_not_lost(serve, recorder):
    """Bytes read beyond the request head (`leftover`) are the connection's first frames."""
    server = serve(recorder.echo)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(_HANDSHAKE.encode() + _masked_text_frame("early"))
        data = b""
        while b"early" not in data:
            data += sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 101 ")
    assert data.endswith(b"\x81\x05early")  # the echo, unmasked from the server


def test_the_worker_finds_upgrades_and_the_bytes_beyond_their_head():
    """What EnvelopeThreadWorker.handle_request hands over, from gunicorn's own parser."""
    from gunicorn.config import Config

    from config.gunicorn_worker import EnvelopeRequestParser, is_websocket_upgrade

    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(_HANDSHAKE.encode() + b"frame bytes")
        request = next(EnvelopeRequestParser(Config(), ours, ("127.0.0.1", 1)))
        assert is_websocket_upgrade(request)
        assert (request.path, request.query) == ("/ws", "device_id=d")
        parser_buffer = request.unreader.buf.getvalue()
    assert parser_buffer == b"frame bytes"
    plain = _HANDSHAKE.replace("Upgrade: websocket\r\n", "")
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(plain.encode())
        assert not is_websocket_upgrade(next(EnvelopeRequestParser(Config(), ours, None)))
