"""A gunicorn worker that answers malformed HTTP in the API's own reply shape, and hands
WebSocket upgrades to an asyncio loop in the same process.

gunicorn refuses some requests before Django sees them (a request line over 8 KB, too many
or too large headers, a malformed request line) and answers with a plain-text page. Under
`/v1/voiceprint/` the contract is the `{code, msg, data}` envelope whatever goes wrong, and
under `/v1/voice/` the `{"error": {...}}` body: this worker keeps both. The path is taken
from the request when gunicorn parsed it, else from the start of the request line.

A WebSocket upgrade request (GET with `Upgrade: websocket` and `Connection: upgrade`) is not
WSGI's: the worker gives its socket to the process's `config.websocket_bridge.WebSocketBridge`,
which serves `config.asgi.application` on its own event loop, and forgets the connection.
Every other request is served by the threads as before.
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import threading
from functools import partial

from gunicorn.http import errors as http_errors
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser
from gunicorn.workers import gthread

#: Refusals caused by the client's request, and the message the client is shown.
_CLIENT_ERRORS: dict[type[Exception], str] = {
    http_errors.LimitRequestLine: "request line is too long",
    http_errors.LimitRequestHeaders: "request headers are too many or too large",
    http_errors.InvalidHeader: "malformed request header",
    http_errors.InvalidHeaderName: "malformed request header",
    http_errors.InvalidRequestLine: "malformed request line",
    http_errors.InvalidRequestMethod: "malformed request line",
    http_errors.InvalidHTTPVersion: "unsupported HTTP version",
    http_errors.ObsoleteFolding: "malformed request header",
    http_errors.UnsupportedTransferCoding: "unsupported transfer coding",
}
_PATH = re.compile(rb"^[A-Z]{1,16} +(/[^ ?#\r\n]{0,64})")


class EnvelopeRequest(Request):
    """Remembers the start of the request line, so that a refusal knows the path."""

    line_start = b""

    def read_line(self, unreader, buf, limit=0):
        try:
            return super().read_line(unreader, buf, limit)
        except http_errors.LimitRequestLine:
            self.line_start = buf.getvalue()[:96]
            raise

    def parse(self, unreader):
        try:
            return super().parse(unreader)
        except Exception as exc:
            exc.request_path = self.path or _path_from_line(self.line_start)
            raise


class EnvelopeRequestParser(RequestParser):
    mesg_class = EnvelopeRequest


class EnvelopeConnection(gthread.TConn):
    def init(self):
        if self.parser is None and not self.cfg.is_ssl:
            self.parser = EnvelopeRequestParser(self.cfg, self.sock, self.client)
        super().init()


class EnvelopeThreadWorker(gthread.ThreadWorker):
    """gunicorn's threaded worker, with API-shaped refusals and WebSocket upgrades."""

    _websocket_bridge = None
    _websocket_lock = threading.Lock()

    def accept(self, server, listener):
        # gthread.ThreadWorker.accept, with our connection class.
        try:
            sock, client = listener.accept()
            conn = EnvelopeConnection(self.cfg, sock, client, server)
            self.nr_conns += 1
            with self._lock:
                self.poller.register(
                    conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn)
                )
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise

    def handle_request(self, req, conn):
        if not is_websocket_upgrade(req) or self.cfg.is_ssl:
            return super().handle_request(req, conn)
        self._websockets().serve(
            _take_socket(conn),
            path=req.path,
            query_string=req.query.encode("latin-1"),
            headers=req.headers,
            client=conn.client,
            server=conn.server,
            leftover=conn.parser.unreader.buf.getvalue(),  # read beyond the request's head
        )
        return False  # gunicorn forgets the connection; closing its detached socket is a no-op

    def _websockets(self):
        with self._websocket_lock:
            if self._websocket_bridge is None:
                from config.asgi import application
                from config.websocket_bridge import WebSocketBridge

                self._websocket_bridge = WebSocketBridge(application)
            return self._websocket_bridge

    def shutdown_websockets(self, *, timeout: float) -> None:
        """Close this process's WebSocket connections with 1001 (going away)."""
        if self._websocket_bridge is not None:
            self._websocket_bridge.shutdown(
                code=1001, reason="server shutting down", timeout=timeout
            )

    def handle_error(self, req, client, addr, exc):
        path = getattr(req, "path", None) or getattr(exc, "request_path", None) or ""
        reply = api_error_reply(path, exc)
        if reply is None:
            return super().handle_error(req, client, addr, exc)
        self.log.warning("refused a malformed request: %s", type(exc).__name__)
        try:
            client.sendall(reply)
        except OSError:
            self.log.debug("failed to send the error reply")


def is_websocket_upgrade(req) -> bool:
    """GET with `Upgrade: websocket` and a `Connection` header naming `upgrade`."""
    if req.method != "GET":
        return False
    upgrade = connection = ""
    for name, value in req.headers:
        if name == "UPGRADE":
            upgrade = value
        elif name == "CONNECTION":
            connection += "," + value
    tokens = {token.strip().lower() for token in connection.split(",")}
    return upgrade.strip().lower() == "websocket" and "upgrade" in tokens


def _take_socket(conn) -> socket.socket:
    """The connection's socket as a new object; gunicorn's own is left detached, so that
    gunicorn's close (or shutdown) of it cannot reach the connection."""
    sock = conn.sock
    return socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())


def _path_from_line(line: bytes) -> str:
    match = _PATH.match(line or b"")
    return match.group(1).decode("latin-1") if match else ""


def api_error_reply(path: str, exc: Exception) -> bytes | None:
    """The raw HTTP reply for a refused request under an API prefix, else None: the same
    reply `core.envelope.error_response` gives inside Django, written to the socket."""
    from core.envelope import API_PREFIXES, error_response
    from core.exceptions import ApiError, ErrorCode

    if not path.startswith(API_PREFIXES):
        return None
    message = next((text for cls, text in _CLIENT_ERRORS.items() if isinstance(exc, cls)), None)
    error = (
        ApiError(ErrorCode.INVALID_PARAMETER, message)
        if message
        else ApiError(ErrorCode.INTERNAL, "internal error")
    )
    response = error_response(error, path)
    head = (
        f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n"
        f"Content-Type: {response['Content-Type']}\r\n"
        f"Content-Length: {len(response.content)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + response.content
