"""`make bench-bulk`: how fast bulk imports write voices with the HNSW index kept up to date
row by row, and on the fast path (index dropped, rows loaded, index built), at a few table
sizes: the measurement behind VOICEPRINT_BULK_INDEX_THRESHOLD.

Runs in a scratch database on the configured server (created, migrated, dropped at the end),
never in the service's own. The voices are random unit vectors of GE2E's dimension: the
insert and build costs of HNSW depend little on the distribution, unlike its recall.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.test.utils import override_settings

import engine
from tenancy.models import Tenant
from tenancy.services import tenant_create
from voiceprint.embedding_files import EmbeddingRow
from voiceprint.models import Voice
from voiceprint.services import voices_import
from voiceprint.services.vector_index import centroid_index_build, centroid_index_drop

ENGINE, DIM = "ge2e", 256
#: A threshold no run reaches (row by row), and one every run reaches (fast path).
NEVER, ALWAYS = 2**31 - 1, 1


@dataclass(frozen=True)
class BulkRun:
    path: str  # "row by row" or "fast path"
    before: int  # voices of the dimension already in the table
    rows: int
    seconds: float
    #: Fast path: a build of the index over the whole table alone, timed after the run.
    build_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def bulk_bench_run(
    *, voices: int, rounds: int, progress: Callable[[str], None], seed: int = 0
) -> list[BulkRun]:
    """`rounds` rounds on a growing table: each imports `voices` voices row by row, deletes
    them, then imports them on the fast path (so the table grows by `voices` a round)."""
    rng = np.random.default_rng(seed)
    tenant, _ = tenant_create(name="bulk-bench")
    engine.get_engine(ENGINE)  # loaded before the clock starts
    runs = []
    for round_ in range(rounds):
        rows = _rows(rng, voices, prefix=f"r{round_}-")
        for path, threshold in (("row by row", NEVER), ("fast path", ALWAYS)):
            before = Voice.objects.filter(dim=DIM).count()
            progress(f"round {round_ + 1}/{rounds}: {voices} voices {path} onto {before}")
            with override_settings(VOICEPRINT_BULK_INDEX_THRESHOLD=threshold):
                started = time.perf_counter()
                voices_import(tenant, rows=rows, engine_name=ENGINE, store="bench")
                seconds = time.perf_counter() - started
            if path == "row by row":
                runs.append(BulkRun(path, before, voices, seconds))
                _delete_round(tenant, rows)
            else:
                runs.append(BulkRun(path, before, voices, seconds, _build_seconds()))
    return runs


def _build_seconds() -> float:
    centroid_index_drop(DIM)
    started = time.perf_counter()
    centroid_index_build(DIM)
    return time.perf_counter() - started


def _rows(rng: np.random.Generator, n: int, *, prefix: str) -> list[EmbeddingRow]:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return [
        EmbeddingRow(line=i, name=f"{prefix}{i}", vector=vector)
        for i, vector in enumerate(vectors, start=1)
    ]


def _delete_round(tenant: Tenant, rows: list[EmbeddingRow]) -> None:
    """Remove a round's voices and vacuum, so that the next run finds no dead index entries."""
    Voice.objects.filter(tenant=tenant, name__in=[row.name for row in rows]).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM voiceprint_voice")


def bulk_bench_markdown(runs: list[BulkRun], *, voices: int) -> str:
    lines = [
        "## Bulk imports: index kept row by row vs fast path",
        "",
        "Written by `make bench-bulk` (`manage.py bench_bulk`); do not edit by hand. "
        f"{voices} random {DIM}-dimension voices imported by `import_embeddings`' service "
        "(batches of 1000 rows, bulk_create) into a scratch database: once with the HNSW "
        "index kept up to date row by row, once on the fast path (index dropped, rows "
        "loaded, index built again over the whole table: the build's cost grows with the "
        "voices already there). "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared); "
        f"{datetime.date.today().isoformat()}.",
        "",
        "| voices already there | row by row: s | row by row: voices/s | fast path: s "
        "| fast path: voices/s | index build alone: s | fast path faster by |",
        "|---|---|---|---|---|---|---|",
    ]
    by_before: dict[int, dict[str, BulkRun]] = {}
    for run in runs:
        by_before.setdefault(run.before, {})[run.path] = run
    for before, pair in sorted(by_before.items()):
        slow, fast = pair["row by row"], pair["fast path"]
        lines.append(
            f"| {before} | {slow.seconds:.1f} | {slow.rate:.0f} | {fast.seconds:.1f} "
            f"| {fast.rate:.0f} | {fast.build_seconds:.1f} | {slow.seconds / fast.seconds:.1f}x |"
        )
    return "\n".join(lines) + "\n"
