"""Bulk writes at scale: the fast path of `enroll_folder`, `reembed` and `import_embeddings`,
and the import of existing embeddings.

Keeping a centroid HNSW index up to date row by row costs more than building it once after
the rows are in (issue 14: 200 k voices in 1014 s row by row, 105 s loaded first and indexed
after). A run that writes at least VOICEPRINT_BULK_INDEX_THRESHOLD rows therefore drops the
index of the dimensions it writes, writes, and builds the index again at the end; while it
is missing, nearest-neighbour queries of that dimension compare every voice (exact, correct,
slower). The index is built again also when the run fails or is interrupted (finally), and
each bulk run first builds any index a killed run (SIGKILL, a crash of the machine) left
missing. Fast-path runs hold a PostgreSQL advisory lock, so that two never drop and build
the same index under each other; a second one waits for the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

import engine
from audit.services import audit_record
from roles.selectors import role_get_default
from tenancy.models import Tenant
from voiceprint.embedding_files import EmbeddingRow, embedding_rows_check
from voiceprint.models import SampleKind, Voice, VoiceSample
from voiceprint.services.vector_index import (
    DIMENSIONS,
    centroid_index_build,
    centroid_index_drop,
    centroid_index_exists,
)
from voiceprint.thresholds import default_similarity_threshold

#: Rows per transaction of an import: a failure loses at most this many, and each
#: round trip carries enough rows to keep the database busy.
IMPORT_BATCH = 1000
#: pg_advisory_lock key of the fast path (any constant the application uses nowhere else).
_BULK_LOCK = 0x766F696365_01


#: The fast path builds the index over every voice of the dimension, not only the new ones:
#: it pays only when the rows written are at least this share of those already indexed.
#: `make bench-bulk` (20 k voices onto 0, 20 k, 40 k; 2 busy cores): row by row 66-177
#: voices/s, loading without the index 310-570/s, a build 1100-1700 voices/s of the whole
#: table, so the fast path wins from about 0.15-0.17 x the voices already there; rounded
#: up, because while the index is missing store-wide queries are exact and slower.
REBUILD_SHARE = 0.25


def bulk_is_large(rows: int, *, indexed: int = 0) -> bool:
    """Whether writing `rows` rows into indexes that already hold `indexed` rows takes the
    fast path (drop, load, build): at least VOICEPRINT_BULK_INDEX_THRESHOLD rows, and
    enough that one build over them all is cheaper than inserting them one by one."""
    return rows >= settings.VOICEPRINT_BULK_INDEX_THRESHOLD and rows >= indexed * REBUILD_SHARE


def centroid_indexes_restore() -> list[int]:
    """Build the centroid indexes that are missing (a killed bulk run's); the dimensions
    built. Skipped (nothing built) while a fast-path run holds the bulk lock: it builds
    them itself when it ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_BULK_LOCK])
        if not cursor.fetchone()[0]:
            return []
        try:
            return _restore_missing()
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_BULK_LOCK])


def _restore_missing(*, besides: Iterable[int] = ()) -> list[int]:
    """Build the missing indexes, except those of `besides` (about to be dropped)."""
    missing = [d for d in DIMENSIONS if d not in besides and not centroid_index_exists(d)]
    for dim in missing:
        centroid_index_build(dim)
    return missing


@contextmanager
def centroid_indexes_suspended(
    *, dims: Iterable[int], rows: int, notify: Callable[[str], None] = lambda _: None
) -> Iterator[bool]:
    """Around a bulk write of `rows` rows with centroids of `dims`: when it is large
    (`bulk_is_large`, beside the voices of `dims` already stored), the indexes of `dims`
    are dropped for its duration and built again when it ends, however it ends. Yields
    whether it took the fast path; `notify` hears what happens to the indexes (for the
    operator: queries are exact meanwhile)."""
    dims = sorted(set(dims) & set(DIMENSIONS))
    indexed = Voice.objects.filter(dim__in=dims).count() if dims else 0
    if not dims or not bulk_is_large(rows, indexed=indexed):
        for dim in centroid_indexes_restore():
            notify(f"built the missing HNSW index of dimension {dim} (left by a killed run)")
        yield False
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_BULK_LOCK])
    try:
        for dim in _restore_missing(besides=dims):
            notify(f"built the missing HNSW index of dimension {dim} (left by a killed run)")
        for dim in dims:
            centroid_index_drop(dim)
        notify(
            f"fast path ({rows} rows onto {indexed}; VOICEPRINT_BULK_INDEX_THRESHOLD "
            f"{settings.VOICEPRINT_BULK_INDEX_THRESHOLD}): HNSW index of dimension(s) "
            f"{', '.join(map(str, dims))} dropped until the end of the run; meanwhile "
            "identify compares every voice of those dimensions (exact, slower)"
        )
        yield True
    finally:
        try:
            if connection.in_atomic_block and not connection.needs_rollback:
                # Called inside a transaction (a caller's atomic block, a test): the rows'
                # deferred foreign-key checks must run before PostgreSQL builds an index
                # on the table ("pending trigger events").
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for dim in dims:
                notify(f"building the HNSW index of dimension {dim} ...")
                centroid_index_build(dim)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_BULK_LOCK])


# --- import of existing embeddings -----------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    imported: int
    #: Already in the tenant under that name and store (a previous, interrupted run's).
    skipped: int
    fast_path: bool


def voices_import(
    tenant: Tenant,
    *,
    rows: list[EmbeddingRow],
    engine_name: str,
    store: str,
    progress: Callable[[int], None] = lambda _: None,
    notify: Callable[[str], None] = lambda _: None,
) -> ImportResult:
    """Create one voice per row of `rows` (embeddings made elsewhere by `engine_name`),
    in `store` unless the row names one, with the tenant's default role and no device.

    Every row is checked first (`embedding_rows_check`; EmbeddingFileError names the
    line): a bad file writes nothing. Rows whose name already exists in their store are
    skipped, so a run again after an interruption imports only the rest. Each voice gets
    one enrollment sample holding the embedding, without audio: as a sample whose audio
    retention purged (`audio_purged_at`, voiceprint.services.retention), it identifies and
    verifies, and what needs a recording (download, re-embedding) says there is none.
    Its speech is taken as the enrollment target (VOICEPRINT_ENROLL_TARGET_SECONDS): the
    embedding's source is not known here. `progress` hears the rows written, batch by
    batch. One audit event, "voice.import", with the counts."""
    dim = engine.get_engine(engine_name).dim  # an unknown engine fails here (EngineError)
    rows = embedding_rows_check(rows, dim=dim, default_store=store)
    existing = set(
        Voice.objects.filter(
            tenant=tenant, store__in={row.store for row in rows}, name__in={r.name for r in rows}
        ).values_list("store", "name")
    )
    todo = [row for row in rows if (row.store, row.name) not in existing]
    imported = 0
    try:
        with centroid_indexes_suspended(dims=[dim], rows=len(todo), notify=notify) as fast:
            for start in range(0, len(todo), IMPORT_BATCH):
                batch = todo[start : start + IMPORT_BATCH]
                _import_batch(tenant, batch, engine_name=engine_name, dim=dim)
                imported += len(batch)
                progress(len(batch))
    except BaseException:
        _import_audit(tenant, engine_name, imported, len(rows) - len(todo), outcome="failed")
        raise
    _import_audit(tenant, engine_name, imported, len(rows) - len(todo))
    return ImportResult(imported=imported, skipped=len(rows) - len(todo), fast_path=fast)


def _import_batch(tenant: Tenant, rows: list[EmbeddingRow], *, engine_name: str, dim: int) -> None:
    role, threshold = role_get_default(tenant), default_similarity_threshold(engine_name)
    with transaction.atomic():
        voices = Voice.objects.bulk_create(
            Voice(
                tenant=tenant, name=row.name, role=role, threshold=threshold, store=row.store,
                labels=row.labels, engine_name=engine_name, dim=dim, centroid=row.vector,
            )
            for row in rows
        )  # fmt: skip
        # Each voice's one sample holds its centroid, copied inside the database: sending
        # every vector a second time and preparing it in Python took 30 times as long.
        # Created and "purged" at the same instant: VoiceSample.imported.
        speech, now = settings.VOICEPRINT_ENROLL_TARGET_SECONDS, timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {VoiceSample._meta.db_table} (voice_id, audio, audio_purged_at, "
                "engine_name, embedding, duration_seconds, speech_seconds, kind, created_at) "
                "SELECT id, '', %s, engine_name, centroid, %s, %s, %s, %s "
                f"FROM {Voice._meta.db_table} WHERE id = ANY(%s)",
                [now, speech, speech, SampleKind.ENROLLMENT.value, now, [v.pk for v in voices]],
            )


def _import_audit(
    tenant: Tenant, engine_name: str, imported: int, skipped: int, *, outcome: str = "ok"
) -> None:
    audit_record(
        tenant, action="voice.import", object_type="voice", outcome=outcome,
        details={"engine": engine_name, "imported": imported, "skipped": skipped},
    )  # fmt: skip
