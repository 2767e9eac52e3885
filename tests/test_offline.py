"""The session's guards (tests/offline.py): no 3D-Speaker weights can be had, and nothing
outside the machine is reached."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from engine.errors import ModelNotFoundError
from engine.settings import EngineSettings
from engine.speaker3d import CAMPPLUS, ERES2NET, resolve_model_dir
from tests import offline


@pytest.mark.parametrize("spec", [ERES2NET, CAMPPLUS], ids=lambda spec: spec.name)
def test_no_3d_speaker_model_can_be_found_or_downloaded(spec):
    with pytest.raises(ModelNotFoundError, match="downloads disabled"):
        resolve_model_dir(spec, EngineSettings.from_env())
    assert offline.attempts == []


def test_processes_started_by_tests_inherit_the_pinned_environment():
    names = [*offline.PINNED_ENV, "MODELSCOPE_CACHE"]
    script = f"import os; print([os.environ.get(n) for n in {names!r}])"
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == repr([*offline.PINNED_ENV.values(), os.environ["MODELSCOPE_CACHE"]])


def test_connections_and_lookups_outside_the_machine_are_refused():
    with pytest.raises(OSError, match="tests are offline"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1
    with pytest.raises(OSError, match="tests are offline"):
        socket.getaddrinfo("modelscope.cn", 443)
    with pytest.raises(OSError, match="tests are offline"):
        socket.socket().connect_ex(("192.0.2.1", 80))
    assert offline.attempts == [
        "connect to ('192.0.2.1', 443)",
        "name lookup of 'modelscope.cn'",
        "connect to ('192.0.2.1', 80)",
    ]
    offline.attempts.clear()  # expected here: the guard must not fail this test


def test_loopback_stays_reachable():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    assert socket.getaddrinfo("localhost", 80)
    assert offline.attempts == []
