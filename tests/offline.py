"""The test session is offline and finds no 3D-Speaker weights, whatever the machine has.

The suite expects the default engine (eres2net) to be unobtainable, so that the service
falls back to ge2e. On a machine with network access or a ModelScope cache it would
otherwise download or load ERes2Net and fail. So, before any test runs (and for every
process a test starts, which inherits the environment):

- downloads are off (VOICEPRINT_MODEL_DOWNLOAD=0), no model folder is configured and the
  ModelScope cache is an empty folder of this session; the engine settings are the
  documented defaults (eres2net, falling back to ge2e);
- in this process, a connection to anything but loopback (or a local socket) and a name
  lookup of anything but localhost (address literals need none) are refused before a
  packet leaves, and the test that tried fails, naming what it tried to reach
  (tests/test_url_fetch.py fakes DNS on top of this guard).

Loaded by tests/conftest.py (pytest_plugins).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import tempfile

import pytest

#: The environment every test (and every process it starts) sees.
PINNED_ENV = {
    "VOICEPRINT_MODEL_DOWNLOAD": "0",
    "VOICEPRINT_MODEL_DIR": "",
    "VOICEPRINT_ENGINE": "eres2net",
    "VOICEPRINT_ENGINE_FALLBACK": "ge2e",
}

#: Names a test may look up: they never leave the machine.
LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", socket.gethostname()}


class NetworkRefusedError(ConnectionRefusedError):
    """A test tried to reach outside the machine; nothing was sent."""


#: What the current test tried to reach (cleared per test by `_no_network_reached`).
attempts: list[str] = []

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _is_local_host(host: str | None) -> bool:
    if host is None:
        return True
    name = host.lower().removesuffix(".")
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        return True
    address = _ip_address(name)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _check_address(sock: socket.socket, address) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket (PostgreSQL, ...) stays on the machine
    if not _is_local_host(str(address[0])):
        attempts.append(f"connect to {address!r}")
        raise NetworkRefusedError(f"tests are offline: refused to connect to {address!r}")


def _guarded_connect(sock: socket.socket, address) -> None:
    _check_address(sock, address)
    return _real_connect(sock, address)


def _guarded_connect_ex(sock: socket.socket, address) -> int:
    _check_address(sock, address)
    return _real_connect_ex(sock, address)


def _guarded_getaddrinfo(host, port, *args, **kwargs):
    text = host.decode() if isinstance(host, bytes) else host
    if not (_is_local_host(text) or _is_numeric(host)):
        attempts.append(f"name lookup of {text!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"tests are offline: no lookup of {text!r}")
    return _real_getaddrinfo(host, port, *args, **kwargs)


def _is_numeric(host) -> bool:
    """An address in any form the resolver reads without asking anyone (127.1, 0x7f000001)."""
    try:
        _real_getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    cache = tempfile.mkdtemp(prefix="voiceprint-test-modelscope-")
    config.stash[_CACHE_KEY] = cache
    os.environ.update(PINNED_ENV, MODELSCOPE_CACHE=cache)
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo


def pytest_unconfigure(config: pytest.Config) -> None:
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    socket.getaddrinfo = _real_getaddrinfo
    shutil.rmtree(config.stash.get(_CACHE_KEY, ""), ignore_errors=True)


_CACHE_KEY = pytest.StashKey[str]()


@pytest.fixture(autouse=True)
def _no_network_reached():
    """Fails the test that tried to reach the network, even where the code under test
    took the refusal for an offline machine."""
    attempts.clear()
    yield
    if attempts:
        pytest.fail("a test must stay on this machine; it tried: " + "; ".join(attempts))
