"""A scratch database for benchmarks: Django's default connection on a fresh, migrated
database of the configured server for the duration, dropped at the end.

`make bench-scale` and `make bench-bulk` load hundreds of thousands of voices; they must
never touch the service's database, nor leave their rows in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management import call_command
from django.db import connections


@contextmanager
def scratch_database(name: str, *, keep: bool = False) -> Iterator[None]:
    """Point the default connection at a new database `name` (dropped first if it exists),
    migrated; restore the configured one at the end and drop `name` unless `keep`.

    The name must say "bench" and differ from the configured database: it is dropped and
    created again, so it must never be one that could hold anything else.
    """
    default = connections["default"]
    saved = dict(default.settings_dict)
    if "bench" not in name or name in {saved.get("NAME"), saved.get("APP_DATABASE"), "postgres"}:
        raise ValueError(f"refusing to benchmark in database {name!r} (its name needs 'bench')")
    default.close()
    _recreate(name, create=True)
    default.settings_dict["NAME"] = name
    if "APP_DATABASE" in saved:
        default.settings_dict["APP_DATABASE"] = name
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield
    finally:
        default.close()
        default.settings_dict.clear()
        default.settings_dict.update(saved)
        if not keep:
            _recreate(name, create=False)


def _recreate(name: str, *, create: bool) -> None:
    with connections["default"]._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            cursor.execute(f'CREATE DATABASE "{name}"')
