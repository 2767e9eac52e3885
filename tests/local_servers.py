"""Local HTTP servers for audio_url tests, on loopback only, and a socket.connect recorder
that proves a refused URL was never connected to. Loaded by tests/conftest.py."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class AudioServer:
    """A local HTTP server: `routes` maps a path to (status, headers, body); every request
    path is logged in `requests`."""

    host: str
    routes: dict[str, tuple[int, dict, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def serve(self, path: str, body: bytes, status: int = 200, **headers: str) -> str:
        self.routes[path] = (status, headers, body)
        return self.url(path)


@contextmanager
def running_server(host: str) -> Iterator[AudioServer]:
    server_state = AudioServer(host)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            server_state.requests.append(self.path)
            status, headers, body = server_state.routes.get(self.path, (404, {}, b"not found"))
            self.send_response(status)
            for name, value in {"Content-Type": "audio/wav", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    try:
        httpd = ThreadingHTTPServer((host, 0), Handler)
    except OSError as exc:
        pytest.skip(f"cannot listen on {host}: {exc}")
    server_state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def audio_server(settings) -> Iterator[AudioServer]:
    """A server on 127.0.0.1, which the tests allow-list (API.md)."""
    settings.VOICEPRINT_URL_ALLOWLIST = "127.0.0.1"
    with running_server("127.0.0.1") as server:
        yield server


@pytest.fixture
def forbidden_server() -> Iterator[AudioServer]:
    """A server on another loopback address, never allow-listed."""
    with running_server("127.0.0.2") as server:
        yield server


@pytest.fixture
def connects(monkeypatch) -> list[tuple]:
    """Every socket.connect() made while the test runs, as (host, port)."""
    log: list[tuple] = []
    real_connect = socket.socket.connect

    def recording_connect(sock: socket.socket, address) -> None:
        log.append(tuple(address[:2]))
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    return log


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
