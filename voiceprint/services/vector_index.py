"""The partial HNSW indexes on voice centroids: one per embedding dimension (migration 0002).

The `centroid` column has no fixed dimension, so each index is on `centroid::vector(N)` for
the rows `WHERE dim = N`; queries use the same expression (voiceprint.selectors). This module
is the one place that writes their DDL: the migrations, the bulk loads (which drop an index,
load, and build it again, because one build after a load is many times faster than keeping
the graph up to date row by row) and `make bench-scale` all call it.

Build parameters are settings (VOICEPRINT_HNSW_M, VOICEPRINT_HNSW_EF_CONSTRUCTION); an
existing index keeps the parameters it was built with until it is built again.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

#: Embedding dimensions with an index: 192 (3D-Speaker engines), 256 (GE2E).
DIMENSIONS = (192, 256)


def index_name(dim: int) -> str:
    return f"voice_centroid_{dim}_hnsw"


def index_create_sql(dim: int, *, m: int | None = None, ef_construction: int | None = None) -> str:
    """`CREATE INDEX` for the centroids of `dim` (the settings' parameters unless given)."""
    m = m or settings.VOICEPRINT_HNSW_M
    ef_construction = ef_construction or settings.VOICEPRINT_HNSW_EF_CONSTRUCTION
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name(int(dim))} ON voiceprint_voice "
        f"USING hnsw ((centroid::vector({int(dim)})) vector_cosine_ops) "
        f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)}) WHERE dim = {int(dim)}"
    )


def centroid_index_exists(dim: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [index_name(dim)])
        return bool(cursor.fetchone()[0])


def centroid_index_drop(dim: int) -> None:
    """Drop the index of dimension `dim` (queries fall back to exact search until rebuilt)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {index_name(int(dim))}")


def centroid_index_build(
    dim: int,
    *,
    m: int | None = None,
    ef_construction: int | None = None,
    work_mem: str | None = None,
) -> None:
    """Build the index of dimension `dim` if it is missing.

    The graph is built in memory when it fits `work_mem` (PostgreSQL's maintenance_work_mem;
    default VOICEPRINT_HNSW_BUILD_MEMORY), which is much faster than on disk (a 1 M-voice
    build slowed to a quarter once it outgrew it); parallel maintenance workers share it.
    """
    work_mem = work_mem or settings.VOICEPRINT_HNSW_BUILD_MEMORY
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('maintenance_work_mem', %s, false)", [work_mem])
        cursor.execute(index_create_sql(dim, m=m, ef_construction=ef_construction))
