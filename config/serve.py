"""`make run` and `make dev`: serve the API, and own the embedded database while doing so.

    python -m config.serve [--host 127.0.0.1] [--port 8000] [--dev]

0. It runs Django's system checks (core/checks.py checks our settings): a malformed
   setting stops it here, with a message naming the variable, before anything starts.
1. With no DATABASE_URL, this process becomes the owner of the embedded PostgreSQL
   server (config.embedded_postgres): it starts it, or adopts one left running by a crash,
   and restarts it whenever it dies.
2. It applies the migrations.
3. It runs the web server as a child process: gunicorn with the settings'
   workers and threads (`config/gunicorn_conf.py`), or with `--dev` Django's autoreloading
   development server.
4. On SIGINT or SIGTERM it stops the web server, then the database server, and exits.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import django

from utilities.env import EnvError, env_int, env_str

logger = logging.getLogger("voiceprint.serve")

#: prctl(2) option: the signal a child receives when its parent dies.
PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> int:
    try:
        options = _parse_args(argv)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        django.setup()
    except EnvError as exc:  # a variable of the wrong type: the settings could not be read
        raise SystemExit(f"Configuration error: {exc}") from None
    _check()
    from django.conf import settings

    server = _own_embedded_database(settings)
    try:
        _migrate()
        web = _start_web_server(options, settings)
        supervisor = _supervise(server)
        try:
            return _wait(web)
        finally:
            if supervisor is not None:
                supervisor.stop()
    finally:
        if server is not None:
            server.stop()
            server.release_ownership()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m config.serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default=env_str("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=env_int("PORT", 8000))
    parser.add_argument("--dev", action="store_true", help="Django's autoreloading server")
    return parser.parse_args(argv)


def _check() -> None:
    """Django's system checks, with their own report; SystemExit when one fails."""
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    try:
        call_command("check")
    except SystemCheckError as exc:
        raise SystemExit(str(exc)) from None  # the message names the error class itself


def _own_embedded_database(settings):
    """Take ownership of the embedded server and make sure it runs; None with DATABASE_URL."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "config.embedded_postgres":
        return None
    from config.embedded_postgres import server_for

    server = server_for(Path(database["PGDATA"]))
    if not server.acquire_ownership():
        raise SystemExit(
            f"The embedded database in {server.pgdata} is owned by another running service "
            f"(pid {server.owner_pid()}). Stop it first, or set VOICEPRINT_PGDATA."
        )
    server.ensure_running()
    logger.info("serving with the embedded PostgreSQL in %s (owned by pid %d)",
                server.pgdata, os.getpid())  # fmt: skip
    return server


def _migrate() -> None:
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", interactive=False, verbosity=1)
    connections.close_all()  # the web server's processes open their own


def _start_web_server(options: argparse.Namespace, settings) -> subprocess.Popen:
    env = dict(os.environ)
    if options.dev:
        command = [sys.executable, "manage.py", "runserver", f"{options.host}:{options.port}"]
    else:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "python:config.gunicorn_conf",
            "--bind",
            f"{options.host}:{options.port}",
            "config.wsgi:application",
        ]
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_fresh_metrics_dir(settings)))
    # The web server dies with this process, whatever kills it.
    return subprocess.Popen(command, cwd=settings.BASE_DIR, env=env,
                            preexec_fn=_die_with_parent)  # fmt: skip


def _fresh_metrics_dir(settings) -> Path:
    """An empty folder where the gunicorn workers' metrics meet (/metrics sums them)."""
    path = Path(settings.VAR_DIR) / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _supervise(server):
    if server is None:
        return None
    from config.embedded_postgres import Supervisor

    supervisor = Supervisor(server)
    supervisor.start()
    return supervisor


def _wait(web: subprocess.Popen) -> int:
    """Forward SIGINT/SIGTERM/SIGHUP to the web server and wait for it to exit."""

    def forward(signum, frame):
        if web.poll() is None:
            web.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    return web.wait()


if __name__ == "__main__":
    sys.exit(main())  # logging is configured by django.setup() (settings.LOGGING)
