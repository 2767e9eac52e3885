"""The service as an operator runs it: `make run` (or `python -m config.serve`) in a child
process, on its own embedded database folder and port, and management commands beside it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.conftest import PROJECT_ROOT

START_TIMEOUT = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the live postmaster of `pgdata`, or None."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    try:
        alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return None
    return pid if alive else None


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Service:
    """One instance of the service; `env` points it at a private database and media folder."""

    var_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def pgdata(self) -> Path:
        return self.var_dir / "pgdata"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "VOICEPRINT_VAR_DIR": str(self.var_dir),
            "VOICEPRINT_PGDATA": str(self.pgdata),
            "PORT": str(self.port),
            "VOICEPRINT_WEB_WORKERS": "2",
            "VOICEPRINT_WEB_THREADS": "4",
            "VOICEPRINT_ENGINE": "ge2e",
            "VOICEPRINT_MODEL_DOWNLOAD": "0",
            "LOG_FORMAT": "json",
            **self.extra_env,
        }

    def start(self, via_make: bool = True) -> Service:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.var_dir / "service.log"
        command = (
            ["make", "--no-print-directory", "run", f"PORT={self.port}"]
            if via_make
            else [sys.executable, "-m", "config.serve", "--port", str(self.port)]
        )
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(self._ready, START_TIMEOUT, f"the service on port {self.port}\n{self.log_tail()}")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the service exited early:\n{self.log_tail()}")
        try:
            status, _ = self.get("/healthz")
        except OSError:
            return False
        return status == 200

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            message = f"the service ignored signal {signum}:\n{self.log_tail()}"
            raise AssertionError(message) from None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path else ""

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def create_tenant(self, name: str) -> str:
        done = self.manage("create_tenant", name)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip().splitlines()[-1]

    def get(self, path: str, token: str | None = None, timeout: float = 30) -> tuple[int, dict]:
        request = urllib.request.Request(self.base_url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def post(
        self, path: str, token: str, body: bytes | dict, *, headers: dict[str, str] | None = None
    ) -> dict:
        """POST JSON (a dict) or raw audio (bytes); the reply's JSON body."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        kind = "application/json" if isinstance(body, dict) else "audio/wav"
        request = urllib.request.Request(self.base_url + path, data=data, method="POST")
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", kind)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())
