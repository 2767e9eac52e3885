"""The embedded database's life beside the running service (issue: operational reliability).

Every test runs the real thing: `make run` (gunicorn, several worker processes) on a private
embedded PostgreSQL folder, real management commands beside it, signals and SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from config.embedded_postgres import server_for
from tests.config.service import Service, postmaster_pid, wait_for
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """`make run` on its own database folder and port, for the whole module. The traffic
    threads below send as fast as the server answers, beyond the per-token rate limit, which
    these tests are not about."""
    quiet = {"VOICEPRINT_RATE_LIMIT": "off", "VOICEPRINT_TOKEN_RATE_LIMIT": "off"}
    service = Service(tmp_path_factory.mktemp("service") / "var", extra_env=quiet)
    service.start(via_make=True)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def token(service) -> str:
    return service.create_tenant("lifecycle")


def _roles_code(service: Service, token: str) -> int:
    status, body = service.get("/v1/voiceprint/roles", token)
    assert status == 200 and set(body) == {"code", "msg", "data"}, (status, body)
    return body["code"]


class _Traffic:
    """Threads that keep requesting until stopped, collecting the business codes seen."""

    def __init__(self, service: Service, token: str, threads: int = 6):
        self.codes: list[int] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(service, token), daemon=True)
            for _ in range(threads)
        ]

    def _loop(self, service: Service, token: str) -> None:
        while not self._stop.is_set():
            self.codes.append(_roles_code(service, token))

    def __enter__(self) -> _Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def test_management_commands_under_load_never_stop_the_server(service, token):
    server_pid = postmaster_pid(service.pgdata)
    with _Traffic(service, token) as traffic:
        for index in range(3):
            done = service.manage("create_token", "lifecycle", "--label", f"under-load-{index}")
            assert done.returncode == 0, done.stderr[-2000:]
            assert postmaster_pid(service.pgdata) == server_pid
    assert traffic.codes and set(traffic.codes) == {0}, set(traffic.codes)
    assert postmaster_pid(service.pgdata) == server_pid
    assert _roles_code(service, token) == 0


def test_a_killed_database_answers_50300_then_heals_without_a_restart(service, token):
    web_pid = service.process.pid
    with _Traffic(service, token) as traffic:
        wait_for(lambda: len(traffic.codes) > 10, 60, "traffic before the kill")
        os.kill(postmaster_pid(service.pgdata), signal.SIGKILL)
        wait_for(lambda: 50300 in traffic.codes, 60, "a 50300 while the database is down")
        status, health = service.get("/healthz")
        seen_down = health["database"]["status"] == "down"
        # A request that started before the kill may still end 0 after another's 50300:
        # recovery is a request sent now that succeeds.
        wait_for(lambda: _roles_code(service, token) == 0, 120, "recovery")
    assert set(traffic.codes) <= {0, 50300}, set(traffic.codes)  # never a 50000
    assert seen_down or status == 200  # /healthz may catch the database already back
    assert service.process.pid == web_pid and service.process.poll() is None
    assert postmaster_pid(service.pgdata) is not None
    assert service.get("/healthz")[1]["database"]["status"] == "ok"


def test_healthz_is_degraded_while_the_database_is_down(service, token):
    running = wait_for(lambda: postmaster_pid(service.pgdata), 120, "a running database")
    os.kill(running, signal.SIGKILL)
    wait_for(lambda: postmaster_pid(service.pgdata) is None, 30, "the postmaster to die")
    status, body = service.get("/healthz")
    # The owner restarts the server within about a second; catch it down or see it healed.
    if postmaster_pid(service.pgdata) is None and body["database"]["status"] == "down":
        assert status == 503 and body["status"] == "degraded"
    wait_for(lambda: service.get("/healthz")[0] == 200, 120, "a healthy service again")
    assert _roles_code(service, token) == 0


def test_oversized_request_line_and_headers_keep_each_surface_shape(service, token):
    long_path = "/v1/voiceprint/voices/" + "a" * 9000
    status, body = _raw_request(service.port, f"GET {long_path} HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and body["code"] == 40000 and body["data"] is None, body
    big_header = f"GET /v1/voiceprint/roles HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 9000}\r\n\r\n"
    status, body = _raw_request(service.port, big_header)
    assert status == 200 and body["code"] == 40000, body
    status, body = _raw_request(
        service.port, f"GET /v1/voice/identify?{'q' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert status == 400 and body["error"]["code"] == 40000, body
    assert _roles_code(service, token) == 0  # the workers survived


def _raw_request(port: int, text: str) -> tuple[int, dict]:
    import json

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(text.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_sigterm_to_make_run_leaves_no_server_behind(tmp_path):
    service = Service(tmp_path / "var").start(via_make=True)
    server_pid = postmaster_pid(service.pgdata)
    web_pids = _children_of(service.process.pid)
    assert server_pid and web_pids
    service.stop(signal.SIGTERM)
    wait_for(lambda: postmaster_pid(service.pgdata) is None, 60, "the database to stop")
    wait_for(lambda: not any(_alive(pid) for pid in web_pids), 60, "the web server to stop")


def test_a_server_left_by_a_crash_is_adopted_and_stopped_by_its_new_owner(tmp_path):
    service = Service(tmp_path / "var")
    _connect_and_get_killed(service)  # leaves a running server nobody owns
    orphan = postmaster_pid(service.pgdata)
    assert orphan
    service.start(via_make=False)
    assert postmaster_pid(service.pgdata) == orphan  # adopted, not restarted
    service.stop(signal.SIGINT)
    wait_for(lambda: postmaster_pid(service.pgdata) is None, 60, "the database to stop")


def test_a_command_stops_the_server_it_started_only_when_nobody_else_uses_it(tmp_path):
    service = Service(tmp_path / "var")
    service.var_dir.mkdir(parents=True)
    done = service.manage("migrate", "--noinput")
    assert done.returncode == 0, done.stderr[-2000:]
    assert postmaster_pid(service.pgdata) is None  # started and stopped by the command

    holder = _hold_a_connection(service)
    try:
        done = service.manage("create_tenant", "beside-a-user")
        assert done.returncode == 0, done.stderr[-2000:]
        assert postmaster_pid(service.pgdata) is not None  # the holder still uses it
    finally:
        holder.kill()  # SIGKILL: it cannot stop the server it started
        holder.wait()
        server_for(service.pgdata).stop()


def test_concurrent_first_starts_share_one_server(tmp_path):
    service = Service(tmp_path / "var")
    service.var_dir.mkdir(parents=True)
    script = (
        "import django; django.setup(); from django.db import connection;"
        "connection.ensure_connection(); print(connection.cursor().connection.info.backend_pid)"
    )
    processes = [_python(service, script) for _ in range(4)]
    try:
        outputs = [process.communicate(timeout=180) for process in processes]
        assert all(process.returncode == 0 for process in processes), [e for _, e in outputs]
        assert len({out.strip() for out, _ in outputs}) == 4  # four sessions of one server
    finally:
        # The first starter may have left it to the others, who never stop what they did
        # not start: stop it here.
        server_for(service.pgdata).stop()
    assert postmaster_pid(service.pgdata) is None


def _connect_and_get_killed(service: Service) -> None:
    holder = _hold_a_connection(service)
    holder.kill()
    holder.wait()


def _hold_a_connection(service: Service) -> subprocess.Popen:
    """A process that connects (starting the server) and then sleeps until killed."""
    script = (
        "import django, sys, time; django.setup(); from django.db import connection;"
        "connection.ensure_connection(); print('connected', flush=True); time.sleep(600)"
    )
    process = _python(service, script)
    assert process.stdout.readline().strip() == "connected", process.stderr.read()[-2000:]
    return process


def _python(service: Service, script: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT,
        env={**service.env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _children_of(pid: int) -> list[int]:
    import psutil

    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_with_database_url_the_service_reconnects_after_an_outage(tmp_path):
    """An external PostgreSQL (played by a server this test starts and restarts itself)."""
    from urllib.parse import quote

    database = server_for(tmp_path / "external" / "pgdata")
    info = database.ensure_running()
    params = {"host": str(info.socket_dir), "port": info.port, "user": "postgres"}
    database.ensure_database(params, "voiceprint")
    url = f"postgres://postgres@{quote(str(info.socket_dir), safe='')}:{info.port}/voiceprint"
    service = Service(tmp_path / "var", extra_env={"DATABASE_URL": url})
    try:
        service.start(via_make=False)
        token = service.create_tenant("external")
        with _Traffic(service, token, threads=3) as traffic:
            wait_for(lambda: len(traffic.codes) > 10, 60, "traffic before the outage")
            os.kill(postmaster_pid(database.pgdata), signal.SIGKILL)
            wait_for(lambda: 50300 in traffic.codes, 60, "a 50300 while the database is down")
            wait_for(lambda: postmaster_pid(database.pgdata) is None, 60, "the database to die")
            database.ensure_running()  # the operator brings it back
            wait_for(lambda: _roles_code(service, token) == 0, 120, "the service to reconnect")
        assert set(traffic.codes) <= {0, 50300}, set(traffic.codes)
        assert service.process.poll() is None  # the same service, never restarted
    finally:
        service.stop()
        database.stop()
