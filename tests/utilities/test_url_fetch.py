"""Tests for utilities.url_fetch.

Everything runs against HTTP servers on 127.0.0.0/8. Two autouse guards make the
no-traffic promise checkable: every ``connect()`` is recorded and anything outside
loopback fails the test before a packet is sent, and host name lookups are answered
from a fake table (numeric literals excepted) so no DNS query leaves the machine.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from utilities.url_fetch import (
    FetchedAudio,
    FetchPolicy,
    UrlFetchError,
    UrlFetchFailedError,
    UrlNotAllowedError,
    UrlTooLargeError,
    fetch_url,
    is_forbidden_address,
    parse_allowlist,
)

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(16) + b"data\x00\x00\x00\x00" + bytes(200)
SMALL_CAP = 64 * 1024
LOCAL = frozenset({"127.0.0.1"})


# --------------------------------------------------------------------------- guards


@dataclass
class NetworkLog:
    connects: list[tuple] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    # Fake DNS: name -> addresses; a list of lists gives one answer per lookup.
    dns: dict[str, list] = field(default_factory=dict)


@pytest.fixture(autouse=True)
def net(monkeypatch: pytest.MonkeyPatch) -> NetworkLog:
    log = NetworkLog(dns={"localhost": ["127.0.0.1", "::1"]})
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(sock: socket.socket, address: tuple) -> None:
        log.connects.append(address[:2])
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise AssertionError(f"test tried to connect outside loopback: {address!r}")
        real_connect(sock, address)

    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        log.lookups.append(host)
        if host in log.dns:
            answer = log.dns[host]
            if answer and isinstance(answer[0], list):  # scripted answers, one per call
                answer = answer.pop(0) if len(answer) > 1 else answer[0]
            return [_addrinfo(ip, port) for ip in answer]
        if host.endswith(".invalid"):  # RFC 6761: never resolves; answer without asking
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        try:  # numeric forms (127.1, 0x7f000001, ...) resolve locally, no DNS involved
            return real_getaddrinfo(host, port, *args, **{**kwargs, "flags": socket.AI_NUMERICHOST})
        except socket.gaierror:
            raise AssertionError(f"test tried a real DNS lookup for {host!r}") from None

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    return log


def _addrinfo(ip: str, port: int) -> tuple:
    if ":" in ip:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))


# --------------------------------------------------------------------------- local server


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str) -> None:
        self.hits: list[dict[str, str]] = []
        self.stop = threading.Event()
        super().__init__((host, 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() does a reverse DNS lookup (getfqdn); skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def url(self, path: str = "/audio.wav", host: str | None = None) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://{host or self.server_name}:{self.server_port}{path}"

    def paths(self) -> list[str]:
        return [hit["path"] for hit in self.hits]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(
            {"path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
        )
        parts = urlsplit(self.path)
        route = getattr(
            self, "route_" + parts.path.strip("/").replace("-", "_").replace(".", "_"), None
        )
        if route is None:
            self.send_error(404)
            return
        try:
            route({k: v[0] for k, v in parse_qs(parts.query).items()})
        except OSError:  # the client hung up on us, which many tests expect
            pass

    def _head(self, status: int = 200, **headers: str | int) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), str(value))
        self.send_header("Connection", "close")
        self.end_headers()

    def route_audio_wav(self, query: dict[str, str]) -> None:
        self._head(Content_Type="audio/wav", Content_Length=len(WAV))
        self.wfile.write(WAV)

    def route_big_declared(self, query: dict[str, str]) -> None:
        # Declares 50 MB, sends a few bytes, then stalls: a client that tried to read
        # the body would time out instead of refusing up front.
        self._head(Content_Type="audio/wav", Content_Length=50_000_000)
        self.wfile.write(b"RIFF")
        self.wfile.flush()
        self.server.stop.wait(5)

    def route_stream(self, query: dict[str, str]) -> None:
        self._head(Content_Type="audio/wav")  # no length: body runs until close
        for _ in range(256):
            self.wfile.write(bytes(8192))

    def route_chunked(self, query: dict[str, str]) -> None:
        self._head(Content_Type="audio/wav", Transfer_Encoding="chunked")
        for _ in range(256):
            self.wfile.write(b"2000\r\n" + bytes(8192) + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def route_short(self, query: dict[str, str]) -> None:
        self._head(Content_Length=100)
        self.wfile.write(bytes(10))

    def route_slow(self, query: dict[str, str]) -> None:
        self._head(Content_Length=len(WAV))
        self.wfile.flush()
        self.server.stop.wait(10)

    def route_drip(self, query: dict[str, str]) -> None:
        # Each byte arrives well within the read timeout; only the deadline stops it.
        self._head(Content_Length=1000)
        for _ in range(1000):
            self.wfile.write(b"x")
            self.wfile.flush()
            if self.server.stop.wait(0.1):
                return

    def route_drip_headers(self, query: dict[str, str]) -> None:
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(90):
            self.wfile.write(b"X-Pad: a\r\n")
            self.wfile.flush()
            if self.server.stop.wait(0.1):
                return

    def route_garbage(self, query: dict[str, str]) -> None:
        self.wfile.write(b"this is not http\r\n\r\n")

    def route_redirect(self, query: dict[str, str]) -> None:
        self._head(int(query.get("status", "302")), Location=query["to"], Content_Length=0)

    def route_loop(self, query: dict[str, str]) -> None:
        self._head(302, Location="/loop", Content_Length=0)

    def route_no_location(self, query: dict[str, str]) -> None:
        self._head(302, Content_Length=0)


@pytest.fixture
def make_server() -> Iterator[Callable[..., _Server]]:
    servers: list[_Server] = []

    def start(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> _Server:
        server = _Server(host)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(make_server: Callable[..., _Server]) -> _Server:
    return make_server()


@pytest.fixture
def other_server(make_server: Callable[..., _Server]) -> _Server:
    """A second, live server on another loopback address, to prove it is never hit."""
    try:
        return make_server("127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 is not usable on this machine")


@pytest.fixture
def body_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every block of a response body the fetcher read (a spy on read1)."""
    reads: list[int] = []
    real_read1 = http.client.HTTPResponse.read1

    def counting_read1(response: http.client.HTTPResponse, *args: object) -> bytes:
        block = real_read1(response, *args)
        reads.append(len(block))
        return block

    monkeypatch.setattr(http.client.HTTPResponse, "read1", counting_read1)
    return reads


def local_policy(**overrides: object) -> FetchPolicy:
    options: dict = {"allowlist": LOCAL, "connect_timeout": 2.0, "read_timeout": 2.0}
    return FetchPolicy(**{**options, **overrides})


def redirect_to(server: _Server, target: str, status: int = 302) -> str:
    return server.url(f"/redirect?status={status}&to={quote(target, safe='')}")


# --------------------------------------------------------------------------- policy


def test_parse_allowlist() -> None:
    raw = " 127.0.0.1, Media.Example.COM ,, [::1] ,cdn.example.org., [::FFFF:127.0.0.1] "
    assert parse_allowlist(raw) == {
        "127.0.0.1",
        "media.example.com",
        "::1",
        "cdn.example.org",
        "::ffff:7f00:1",
    }


@pytest.mark.parametrize("raw", ["", "  ", " , ,, "])
def test_parse_allowlist_empty(raw: str) -> None:
    assert parse_allowlist(raw) == frozenset()


def test_policy_defaults_and_normalised_allowlist() -> None:
    policy = FetchPolicy(allowlist=frozenset({"LOCALHOST", "[::1]"}))
    assert policy.max_bytes == 10 * 1024 * 1024
    assert policy.allowlist == {"localhost", "::1"}
    assert (policy.connect_timeout, policy.read_timeout, policy.max_redirects) == (5.0, 15.0, 5)
    assert policy.deadline_seconds == 35.0


@pytest.mark.parametrize(
    "options",
    [
        {"max_bytes": 0},
        {"connect_timeout": 0},
        {"read_timeout": -1},
        {"total_timeout": 0},
        {"max_redirects": -1},
        {"ssl_context": ssl._create_unverified_context()},
    ],
)
def test_policy_rejects_unsafe_values(options: dict) -> None:
    with pytest.raises(ValueError):
        FetchPolicy(**options)


def test_errors_share_a_base_with_a_client_safe_message() -> None:
    for error in (UrlNotAllowedError, UrlTooLargeError, UrlFetchFailedError):
        assert issubclass(error, UrlFetchError)
        assert error().message
    assert UrlFetchFailedError("boom").message == "boom" == str(UrlFetchFailedError("boom"))


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("8.8.8.8", False),
        ("1.1.1.1", False),
        ("2606:4700:4700::1111", False),
        ("::ffff:8.8.8.8", False),  # mapped: judged by the IPv4 it reaches
        ("64:ff9b::808:808", False),  # NAT64 of a public address
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("240.0.0.1", True),
        ("255.255.255.255", True),
        ("192.0.2.1", True),
        ("198.18.0.1", True),
        ("::", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("::7f00:1", True),  # IPv4-compatible (deprecated)
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 of 169.254.169.254
        ("2002:a00:1::", True),  # 6to4 of 10.0.0.1
        ("fe80::1", True),
        ("fc00::1", True),
        ("fec0::1", True),
        ("ff02::1", True),
        ("2001:db8::1", True),
    ],
)
def test_is_forbidden_address(address: str, forbidden: bool) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address)) is forbidden


# --------------------------------------------------------------------------- success


def test_fetch_allowlisted_local_file(server: _Server, net: NetworkLog) -> None:
    url = server.url()
    result = fetch_url(url, local_policy())

    assert result == FetchedAudio(content=WAV, final_url=url, content_type="audio/wav")
    assert net.connects == [("127.0.0.1", server.server_port)]
    [hit] = server.hits
    assert hit["host"] == f"127.0.0.1:{server.server_port}"
    assert hit["user-agent"].startswith("voiceprint-url-fetch/")
    assert "audio/*" in hit["accept"]
    assert hit["accept-encoding"] == "identity"
    assert "cookie" not in hit and "authorization" not in hit


def test_body_exactly_at_the_cap_is_accepted(server: _Server) -> None:
    assert fetch_url(server.url(), local_policy(max_bytes=len(WAV))).content == WAV
    with pytest.raises(UrlTooLargeError):
        fetch_url(server.url(), local_policy(max_bytes=len(WAV) - 1))


def test_resolves_once_and_connects_to_the_checked_address(
    server: _Server, net: NetworkLog
) -> None:
    # A rebinding resolver: the second answer would point elsewhere. We must never ask.
    net.dns["media.test"] = [["127.0.0.1"], ["127.0.0.3"]]
    url = server.url(host="media.test")

    result = fetch_url(url, local_policy(allowlist=frozenset({"media.test"})))

    assert result.content == WAV
    assert net.lookups == ["media.test"]
    assert net.connects == [("127.0.0.1", server.server_port)]
    assert server.hits[0]["host"] == f"media.test:{server.server_port}"


def test_allowlisted_name_falls_back_across_its_addresses(server: _Server, net: NetworkLog) -> None:
    # localhost -> ::1 first (nothing listens there), then 127.0.0.1.
    net.dns["localhost"] = ["::1", "127.0.0.1"]
    result = fetch_url(
        server.url(host="LocalHost"), local_policy(allowlist=frozenset({"localhost"}))
    )
    assert result.content == WAV
    assert [address[0] for address in net.connects] == ["::1", "127.0.0.1"]


def test_non_ascii_host_and_path_are_encoded(server: _Server, net: NetworkLog) -> None:
    net.dns["xn--bcher-kva.test"] = ["127.0.0.1"]
    policy = local_policy(allowlist=parse_allowlist("Bücher.test"))
    result = fetch_url(f"http://bücher.test:{server.server_port}/audio.wav?name=é", policy)

    assert (
        result.final_url == f"http://xn--bcher-kva.test:{server.server_port}/audio.wav?name=%C3%A9"
    )
    assert net.lookups == ["xn--bcher-kva.test"]
    [hit] = server.hits
    assert hit["path"] == "/audio.wav?name=%C3%A9"
    assert hit["host"] == f"xn--bcher-kva.test:{server.server_port}"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_within_allowlisted_host(server: _Server, status: int) -> None:
    result = fetch_url(redirect_to(server, "/audio.wav", status), local_policy())
    assert result.content == WAV
    assert result.final_url == server.url("/audio.wav")
    assert server.paths()[1] == "/audio.wav"


def test_absolute_redirect_to_same_server(server: _Server) -> None:
    result = fetch_url(redirect_to(server, server.url()), local_policy())
    assert result.final_url == server.url()


# --------------------------------------------------------------------------- refusals


def test_loopback_refused_without_allowlist(server: _Server, net: NetworkLog) -> None:
    with pytest.raises(UrlNotAllowedError) as caught:
        fetch_url(server.url(), FetchPolicy())
    assert "private or reserved" in caught.value.message
    assert net.connects == [] and server.hits == []


def test_other_loopback_address_not_covered_by_allowlist(
    other_server: _Server, net: NetworkLog
) -> None:
    with pytest.raises(UrlNotAllowedError):
        fetch_url(other_server.url(), local_policy())
    assert net.connects == [] and other_server.hits == []


def test_ip_entry_does_not_allow_a_name_resolving_to_it(server: _Server, net: NetworkLog) -> None:
    with pytest.raises(UrlNotAllowedError):
        fetch_url(server.url(host="localhost"), local_policy())
    assert net.connects == []


def test_any_forbidden_answer_refuses_the_host(net: NetworkLog) -> None:
    net.dns["mixed.test"] = ["93.184.215.14", "10.1.2.3"]
    with pytest.raises(UrlNotAllowedError) as caught:
        fetch_url("http://mixed.test/a.wav", FetchPolicy())
    assert "10.1.2.3" not in caught.value.message
    assert net.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/audio.wav",
        "gopher://127.0.0.1:70/_GET%20/",
        "data:audio/wav;base64,UklGRg==",
        "javascript:alert(1)",
        "127.0.0.1/audio.wav",
        "//127.0.0.1/audio.wav",
        "",
        "   ",
    ],
)
def test_non_http_urls_refused_even_for_allowlisted_hosts(url: str, net: NetworkLog) -> None:
    with pytest.raises(UrlNotAllowedError):
        fetch_url(url, local_policy())
    assert net.connects == [] and net.lookups == []


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "[::]",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[fe80::1]",
        "[fc00::1]",
        "[fec0::1]",
        "[ff02::1]",
        "[64:ff9b::a00:1]",
        "[2002:a00:1::]",
        # Alternative spellings of 127.0.0.1 that the C resolver accepts:
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
    ],
)
def test_forbidden_addresses_refused_without_connecting(host: str, net: NetworkLog) -> None:
    with pytest.raises(UrlNotAllowedError):
        fetch_url(f"http://{host}/audio.wav", local_policy())
    assert net.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "http://",
        "http:///audio.wav",
        "http://127.0.0.1:0/audio.wav",
        "http://127.0.0.1:65536/audio.wav",
        "http://127.0.0.1:http/audio.wav",
        "http://user:secret@127.0.0.1/audio.wav",
        "http://user@127.0.0.1/audio.wav",
        "http://127.0.0.1\\@example.com/",
        "http://exa mple.com/",
        "http://127.0.0.1/audio.wav\r\nX-Injected: 1",
        "http://127.0.0.1/\taudio.wav",
        "http://[fe80::1%25eth0]/",
        "http://127.0.0.1%2f/",
        "http://a..b/",
        "http://bad!host/",
        "http://[127.0.0.1]/",
    ],
)
def test_malformed_urls_refused(url: str, net: NetworkLog) -> None:
    with pytest.raises(UrlNotAllowedError):
        fetch_url(url, local_policy())
    assert net.connects == []


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{other}/audio.wav",
        "http://localhost:{port}/audio.wav",
        "http://[::1]:{port}/audio.wav",
        "http://[::ffff:127.0.0.1]:{port}/audio.wav",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://user:pw@127.0.0.1:{port}/audio.wav",
        "file:///etc/passwd",
        "gopher://127.0.0.1:{port}/_x",
    ],
)
def test_redirect_to_forbidden_target_refused_before_connecting(
    server: _Server, other_server: _Server, net: NetworkLog, target: str
) -> None:
    target = target.format(port=server.server_port, other=other_server.server_port)
    with pytest.raises(UrlNotAllowedError):
        fetch_url(redirect_to(server, target), local_policy())
    assert net.connects == [("127.0.0.1", server.server_port)]  # the first hop only
    assert len(server.hits) == 1
    assert other_server.hits == []


# --------------------------------------------------------------------------- size cap


def test_declared_length_over_cap_refused_before_reading(
    server: _Server, body_reads: list[int]
) -> None:
    with pytest.raises(UrlTooLargeError):
        fetch_url(server.url("/big-declared"), local_policy(max_bytes=SMALL_CAP))
    # The server stalls after the headers: reading the body would have timed out instead.
    assert body_reads == []


@pytest.mark.parametrize("path", ["/stream", "/chunked"])
def test_streamed_body_over_cap_cut_off(server: _Server, path: str) -> None:
    with pytest.raises(UrlTooLargeError):
        fetch_url(server.url(path), local_policy(max_bytes=SMALL_CAP))


def test_streamed_body_within_cap_accepted(server: _Server) -> None:
    result = fetch_url(server.url("/chunked"), local_policy(max_bytes=4 * 1024 * 1024))
    assert len(result.content) == 256 * 8192


# --------------------------------------------------------------------------- failures


def test_http_error_status(server: _Server) -> None:
    with pytest.raises(UrlFetchFailedError, match="HTTP status 404"):
        fetch_url(server.url("/missing.wav"), local_policy())


def test_connection_refused(net: NetworkLog) -> None:
    with socket.socket() as probe:  # grab a free port, then leave it closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UrlFetchFailedError, match="refused"):
        fetch_url(f"http://127.0.0.1:{port}/audio.wav", local_policy())
    assert net.connects == [("127.0.0.1", port)]


def test_read_timeout(server: _Server) -> None:
    # The server stalls 20 read timeouts, then hangs up: without the read timeout the
    # fetch would end "early", and the overall deadline is far beyond the stall.
    with pytest.raises(UrlFetchFailedError, match="Timed out"):
        fetch_url(server.url("/slow"), local_policy(read_timeout=0.5, total_timeout=60))


@pytest.mark.parametrize("path", ["/drip", "/drip-headers"])
def test_slow_drip_stopped_by_overall_deadline(server: _Server, path: str) -> None:
    # Every byte comes within the read timeout; the body takes 100 s, the headers 9 s and
    # then break off: only the overall deadline makes this a timeout.
    with pytest.raises(UrlFetchFailedError, match="Timed out"):
        fetch_url(server.url(path), local_policy(read_timeout=0.5, total_timeout=1.0))


def test_redirect_loop(server: _Server) -> None:
    with pytest.raises(UrlFetchFailedError, match="too many"):
        fetch_url(server.url("/loop"), local_policy(max_redirects=3))
    assert server.paths() == ["/loop"] * 4


def test_no_redirects_allowed(server: _Server) -> None:
    with pytest.raises(UrlFetchFailedError, match="too many"):
        fetch_url(redirect_to(server, "/audio.wav"), local_policy(max_redirects=0))
    assert len(server.hits) == 1


def test_redirect_without_location(server: _Server) -> None:
    with pytest.raises(UrlFetchFailedError):
        fetch_url(server.url("/no-location"), local_policy())


def test_dns_failure(net: NetworkLog) -> None:
    with pytest.raises(UrlFetchFailedError, match="resolved"):
        fetch_url("http://no-such-host.invalid/audio.wav", FetchPolicy())
    assert net.connects == []


@pytest.mark.parametrize("path", ["/garbage", "/short"])
def test_malformed_or_truncated_response(server: _Server, path: str) -> None:
    with pytest.raises(UrlFetchFailedError):
        fetch_url(server.url(path), local_policy())


# --------------------------------------------------------------------------- HTTPS


@pytest.fixture
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_server(make_server: Callable[..., _Server], tls_files: tuple[str, str]) -> _Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return make_server(tls=context)


@pytest.fixture
def trusting_context(tls_files: tuple[str, str]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=tls_files[0])


def test_https_verifies_the_url_host_name(
    tls_server: _Server, trusting_context: ssl.SSLContext, net: NetworkLog
) -> None:
    net.dns["localhost"] = ["127.0.0.1"]
    policy = local_policy(allowlist=frozenset({"localhost"}), ssl_context=trusting_context)
    result = fetch_url(tls_server.url(host="localhost"), policy)
    assert result.content == WAV
    assert net.connects == [("127.0.0.1", tls_server.server_port)]


def test_https_certificate_for_another_name_rejected(
    tls_server: _Server, trusting_context: ssl.SSLContext, net: NetworkLog
) -> None:
    # We connect to the same 127.0.0.1, but the name in the URL is not in the certificate.
    net.dns["media.test"] = ["127.0.0.1"]
    policy = local_policy(allowlist=frozenset({"media.test"}), ssl_context=trusting_context)
    with pytest.raises(UrlFetchFailedError, match="certificate"):
        fetch_url(tls_server.url(host="media.test"), policy)
    assert tls_server.hits == []


def test_https_untrusted_certificate_rejected_by_default(tls_server: _Server) -> None:
    with pytest.raises(UrlFetchFailedError, match="certificate"):
        fetch_url(tls_server.url(), local_policy())
    assert tls_server.hits == []
