"""Server-side download of client-supplied ``audio_url`` values, hardened against SSRF.

Only the standard library is used, and nothing here imports Django: callers build a
:class:`FetchPolicy` from their settings and call :func:`fetch_url`.

How a URL is fetched, hop by hop (the first request and every redirect):

1. The URL is parsed and checked: ``http``/``https`` only, a host, no credentials,
   a port in 1..65535, no whitespace or control characters.
2. The host is resolved exactly once (``socket.getaddrinfo``). Unless the host is on
   the allowlist, *every* resolved address must be public (:func:`is_forbidden_address`);
   one bad address refuses the whole URL.
3. The TCP connection goes to one of those validated addresses, never to the name, so
   a DNS answer that changes between the check and the connect (DNS rebinding) has no
   effect. The ``Host`` header, TLS SNI and certificate verification still use the
   host name from the URL.
4. Redirects (301/302/303/307/308) are followed by hand, at most
   ``policy.max_redirects`` times, and each ``Location`` goes through steps 1-3 before
   any connection is made.

The body is streamed with a hard cap (``max_bytes``), per-operation socket timeouts and
an overall deadline, so neither a huge nor a slow-drip response can tie up a worker.

Policy decisions:

* Credentials in the URL (``user:pass@``) are refused: we never send them, they would
  end up in logs, and ``user@host`` is a classic trick to disguise the real host.
* Any port 1..65535 is accepted; port 0 is refused. The address check, not the port,
  is what keeps requests off internal services.
* Allowlist entries match the host exactly as written in the URL (case-insensitive,
  trailing dot ignored, IP literals compared by value): no wildcards, no subdomains.
  ``localhost`` and ``127.0.0.1`` are different entries. An allow-listed name skips the
  address check, so only list names whose DNS you control.
* A redirect may change scheme (``https`` to ``http`` included): nothing secret is
  sent, and the target is re-validated like any other URL.
* ``Accept-Encoding: identity`` is sent so a compressed body can't bypass the size cap.
* Host name resolution itself (``getaddrinfo``) cannot be given a timeout; it is bounded
  by the system resolver's own settings. The overall deadline is checked right after it.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import quote, urljoin, urlsplit

__all__ = [
    "FetchPolicy",
    "FetchedAudio",
    "UrlFetchError",
    "UrlFetchFailedError",
    "UrlNotAllowedError",
    "UrlTooLargeError",
    "fetch_url",
    "invalid_allowlist_entries",
    "is_forbidden_address",
    "parse_allowlist",
]

#: The fetcher's own default; callers pass their own limit (FetchPolicy.max_bytes).
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
USER_AGENT = "voiceprint-url-fetch/1.0"
ALLOWED_SCHEMES = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
# Letters, digits, '-' and '_' per label (after IDNA encoding); anything else in a host
# name is either an attack on a parser or a typo.
_HOSTNAME_RE = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_UNSAFE_CHARS_RE = re.compile(r"[\x00-\x20\x7f]")
# Printable ASCII stays as is; only non-ASCII gets percent-encoded for the request line.
_SAFE_URL_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))


# --------------------------------------------------------------------------- errors


class UrlFetchError(Exception):
    """Base class. ``message`` is safe to return to the API client."""

    default_message = "The URL could not be fetched."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class UrlNotAllowedError(UrlFetchError):
    """The URL (or a redirect target) is not acceptable: scheme, host, port, address."""

    default_message = "The URL is not allowed."


class UrlTooLargeError(UrlFetchError):
    """The response body is, or would be, larger than ``FetchPolicy.max_bytes``."""

    default_message = "The file at the URL is too large."


class UrlFetchFailedError(UrlFetchError):
    """The URL was acceptable but the download failed (DNS, network, TLS, HTTP status)."""

    default_message = "The URL could not be fetched."


# --------------------------------------------------------------------------- policy


def _normalize_host(host: str) -> str:
    """Canonical form used both for allowlist entries and for URL hosts."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.removesuffix(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def parse_allowlist(raw: str) -> frozenset[str]:
    """Parse a comma-separated ``VOICEPRINT_URL_ALLOWLIST`` value into host entries."""
    entries = (_normalize_host(item) for item in raw.split(","))
    return frozenset(entry for entry in entries if entry)


def invalid_allowlist_entries(raw: str) -> list[str]:
    """The entries of an allowlist value that no URL host can match (a scheme, a port, a
    path or a wildcard written by mistake), as written."""
    bad = []
    for entry in filter(None, (item.strip() for item in raw.split(","))):
        try:
            _parse_host(entry)
        except UrlNotAllowedError:
            bad.append(entry)
    return bad


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one :func:`fetch_url` call; build it once from settings.

    ``total_timeout`` bounds the whole fetch, redirects included; ``None`` means
    ``connect_timeout + 2 * read_timeout``. ``ssl_context`` defaults to the system
    trust store; a custom one must still verify certificates and host names.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    allowlist: frozenset[str] = frozenset()
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_redirects: int = 5
    total_timeout: float | None = None
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive.")
        if min(self.connect_timeout, self.read_timeout, self.deadline_seconds) <= 0:
            raise ValueError("Timeouts must be positive.")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative.")
        ctx = self.ssl_context
        if ctx is not None and (ctx.verify_mode != ssl.CERT_REQUIRED or not ctx.check_hostname):
            raise ValueError("ssl_context must verify certificates and host names.")
        # Normalise here so direct construction matches parse_allowlist() semantics.
        object.__setattr__(self, "allowlist", _normalize_entries(self.allowlist))

    @property
    def deadline_seconds(self) -> float:
        if self.total_timeout is not None:
            return self.total_timeout
        return self.connect_timeout + 2 * self.read_timeout


def _normalize_entries(entries: Iterable[str]) -> frozenset[str]:
    return frozenset(e for e in (_normalize_host(entry) for entry in entries) if e)


@dataclass(frozen=True)
class FetchedAudio:
    content: bytes
    final_url: str
    content_type: str | None


# --------------------------------------------------------------------------- addresses


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address really reaches (mapped, NAT64, 6to4), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def is_forbidden_address(address: IPAddress) -> bool:
    """True unless ``address`` is a globally routable unicast address.

    ``is_global`` alone is not enough: it is True for multicast and for IPv6 site-local,
    and it judges IPv4-mapped IPv6 by the IPv6 range rather than the IPv4 target.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_forbidden_address(embedded)
        if address.is_site_local:
            return True
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


# --------------------------------------------------------------------------- URL parsing


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # normalised: lower-case, IDNA, IP literals without brackets
    port: int
    path: str  # request target: path plus query, ASCII only
    url: str  # normalised absolute URL (no fragment), base for relative redirects


def _parse_url(url: str) -> _Target:
    if not isinstance(url, str) or not url.strip():
        raise UrlNotAllowedError("A URL is required.")
    url = url.strip()
    if _UNSAFE_CHARS_RE.search(url):
        raise UrlNotAllowedError("The URL contains whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowedError("The URL is malformed.") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UrlNotAllowedError("Only http and https URLs are allowed.")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowedError("URLs with credentials are not allowed.")
    host = _parse_host(parts.hostname or "")
    if port == 0:
        raise UrlNotAllowedError("The URL port is not valid.")
    path = quote(parts.path or "/", safe=_SAFE_URL_CHARS)
    if parts.query:
        path += "?" + quote(parts.query, safe=_SAFE_URL_CHARS)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return _Target(
        scheme=scheme,
        host=host,
        port=port or ALLOWED_SCHEMES[scheme],
        path=path,
        url=f"{scheme}://{netloc}{path}",
    )


def _parse_host(raw: str) -> str:
    if not raw:
        raise UrlNotAllowedError("The URL has no host.")
    if "%" in raw:  # IPv6 zone ids and percent-encoded names
        raise UrlNotAllowedError("The URL host is not valid.")
    host = _normalize_host(raw)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME_RE.fullmatch(host):
            raise UrlNotAllowedError("The URL host is not valid.") from None
    return host


# --------------------------------------------------------------------------- resolution

_SockAddr = tuple[int, tuple]  # (address family, sockaddr)


def _resolve(target: _Target, policy: FetchPolicy) -> list[_SockAddr]:
    """Resolve once and return the addresses we may connect to, or refuse the URL."""
    try:
        infos = socket.getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError):
        raise UrlFetchFailedError("The URL host could not be resolved.") from None
    addresses = list(dict.fromkeys((family, sockaddr) for family, _, _, _, sockaddr in infos))
    if not addresses:
        raise UrlFetchFailedError("The URL host could not be resolved.")
    if target.host not in policy.allowlist:
        for _, sockaddr in addresses:
            if _is_forbidden_sockaddr(sockaddr):
                raise UrlNotAllowedError(
                    "The URL host is not allowed: it resolves to a private or reserved address."
                )
    return addresses


def _is_forbidden_sockaddr(sockaddr: tuple) -> bool:
    try:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
    except ValueError:  # not an IP at all: never connect to it
        return True
    return is_forbidden_address(address)


# --------------------------------------------------------------------------- connections


class _Deadline:
    """Overall time budget for one fetch_url() call, redirects included."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def timeout(self, limit: float) -> float:
        """The socket timeout to use next: ``limit``, or less if the deadline is near."""
        remaining = self._end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("Overall fetch deadline exceeded.")
        return min(limit, remaining)


def _open_socket(addresses: list[_SockAddr], timeout: float, deadline: _Deadline) -> socket.socket:
    """Connect to the first reachable validated address (never re-resolving the name)."""
    last_error: OSError | None = None
    for family, sockaddr in addresses:
        attempt_timeout = deadline.timeout(timeout)  # raises once the overall budget is spent
        sock: socket.socket | None = None
        try:
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.settimeout(attempt_timeout)
            sock.connect(sockaddr)
        except OSError as exc:  # e.g. refused, unreachable, no IPv6: try the next one
            if sock is not None:
                sock.close()
            last_error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise last_error or ConnectionError("No address to connect to.")


class _DeadlineSocketReader(io.RawIOBase):
    """Socket reader that re-arms the socket timeout before every recv.

    Each recv gets at most ``read_timeout`` and never more than the time left overall,
    so a server trickling bytes (even in the headers) can't outlive the deadline.
    """

    def __init__(
        self, raw: io.RawIOBase, sock: socket.socket, read_timeout: float, deadline: _Deadline
    ) -> None:
        super().__init__()
        self._raw = raw  # the socket's own SocketIO: it keeps the fd open for the response
        self._sock = sock
        self._read_timeout = read_timeout
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:  # type: ignore[override]
        self._sock.settimeout(self._deadline.timeout(self._read_timeout))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(
        self, sock: socket.socket, *args, read_timeout: float, deadline: _Deadline, **kwargs
    ) -> None:
        super().__init__(sock, *args, **kwargs)
        raw = self.fp.detach()  # swap the plain buffered reader for a deadline-aware one
        self.fp = io.BufferedReader(_DeadlineSocketReader(raw, sock, read_timeout, deadline))


class _PinnedConnectionMixin:
    """Connects to pre-validated addresses; ``self.host`` stays the URL's host name."""

    _addresses: list[_SockAddr]
    _policy: FetchPolicy
    _deadline: _Deadline

    def _pin(self, addresses: list[_SockAddr], policy: FetchPolicy, deadline: _Deadline) -> None:
        self._addresses = addresses
        self._policy = policy
        self._deadline = deadline
        self.response_class = partial(
            _DeadlineResponse, read_timeout=policy.read_timeout, deadline=deadline
        )

    def _open_pinned_socket(self) -> socket.socket:
        return _open_socket(self._addresses, self._policy.connect_timeout, self._deadline)

    def _arm_read_timeout(self, sock: socket.socket) -> None:
        sock.settimeout(self._deadline.timeout(self._policy.read_timeout))


class _PinnedHTTPConnection(_PinnedConnectionMixin, http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = self._open_pinned_socket()
        self._arm_read_timeout(self.sock)


class _PinnedHTTPSConnection(_PinnedConnectionMixin, http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, context: ssl.SSLContext) -> None:
        super().__init__(host, port, context=context)
        self._tls_context = context

    def connect(self) -> None:
        sock = self._open_pinned_socket()
        try:
            # The handshake counts as connecting; SNI and certificate checks use the
            # URL's host name, not the IP we connected to.
            self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self._arm_read_timeout(self.sock)


def _default_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _make_connection(
    target: _Target, addresses: list[_SockAddr], policy: FetchPolicy, deadline: _Deadline
) -> http.client.HTTPConnection:
    conn: _PinnedHTTPConnection | _PinnedHTTPSConnection
    if target.scheme == "https":
        context = policy.ssl_context or _default_ssl_context()
        conn = _PinnedHTTPSConnection(target.host, target.port, context=context)
    else:
        conn = _PinnedHTTPConnection(target.host, target.port)
    conn._pin(addresses, policy, deadline)
    return conn


# --------------------------------------------------------------------------- fetching

_REQUEST_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept": "audio/*, */*;q=0.8",
    "Accept-Encoding": "identity",
    "Connection": "close",
}


def fetch_url(url: str, policy: FetchPolicy) -> FetchedAudio:
    """Download ``url`` under ``policy``, following redirects safely.

    Raises :class:`UrlNotAllowedError`, :class:`UrlTooLargeError` or
    :class:`UrlFetchFailedError`; nothing else for network or HTTP trouble.
    """
    deadline = _Deadline(policy.deadline_seconds)
    target = _parse_url(url)
    for _ in range(policy.max_redirects + 1):
        addresses = _resolve(target, policy)
        result = _fetch_hop(target, addresses, policy, deadline)
        if isinstance(result, FetchedAudio):
            return result
        target = _parse_url(urljoin(target.url, result))
    raise UrlFetchFailedError("The URL redirected too many times.")


def _fetch_hop(
    target: _Target, addresses: list[_SockAddr], policy: FetchPolicy, deadline: _Deadline
) -> FetchedAudio | str:
    """One request. Returns the downloaded file, or the raw Location of a redirect."""
    conn = _make_connection(target, addresses, policy, deadline)
    try:
        conn.request("GET", target.path, headers=_REQUEST_HEADERS)
        with conn.getresponse() as response:
            return _handle_response(response, target, policy)
    except (OSError, http.client.HTTPException) as exc:  # incl. timeouts and TLS errors
        raise UrlFetchFailedError(_failure_message(exc)) from exc
    finally:
        conn.close()


def _handle_response(
    response: http.client.HTTPResponse, target: _Target, policy: FetchPolicy
) -> FetchedAudio | str:
    if response.status in REDIRECT_STATUSES:
        return _redirect_location(response)
    if response.status >= 400:
        raise UrlFetchFailedError(f"The URL returned HTTP status {response.status}.")
    if not 200 <= response.status < 300:
        raise UrlFetchFailedError(f"Unexpected HTTP status {response.status} from the URL.")
    content = _read_body(response, policy.max_bytes)
    content_type = response.getheader("Content-Type")
    return FetchedAudio(content=content, final_url=target.url, content_type=content_type)


def _redirect_location(response: http.client.HTTPResponse) -> str:
    location = response.getheader("Location")
    if not location:
        raise UrlFetchFailedError("The URL redirected without a Location.")
    # http.client decodes headers as Latin-1; servers usually mean UTF-8.
    try:
        return location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return location


def _read_body(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    declared = response.length  # None when chunked or no valid Content-Length
    if declared is not None and declared > max_bytes:
        raise UrlTooLargeError()
    body = bytearray()
    while chunk := response.read1(CHUNK_SIZE):
        body += chunk
        if len(body) > max_bytes:
            raise UrlTooLargeError()
    if declared is not None and len(body) != declared:
        raise UrlFetchFailedError("The URL's response ended early.")
    return bytes(body)


def _failure_message(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "Timed out fetching the URL."
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "The URL's TLS certificate could not be verified."
    if isinstance(exc, ssl.SSLError):
        return "TLS error while fetching the URL."
    if isinstance(exc, http.client.HTTPException):
        return "The URL returned a malformed HTTP response."
    if isinstance(exc, ConnectionRefusedError):
        return "Connection to the URL was refused."
    if isinstance(exc, OSError):
        return "Could not connect to the URL."
    return UrlFetchFailedError.default_message
