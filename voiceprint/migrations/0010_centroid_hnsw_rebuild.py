"""Rebuild the centroid HNSW indexes with the measured build parameters (m 32,
ef_construction 128 by default: VOICEPRINT_HNSW_M, VOICEPRINT_HNSW_EF_CONSTRUCTION).

Migration 0002 built them with pgvector's defaults (m 16, ef_construction 64), whose graph
misses the nearest voice too often on speaker embeddings (`make bench-scale`,
docs/BENCHMARKS.md). An index keeps the parameters it was built with, so it is dropped and
built again through voiceprint.services.vector_index. On a large table this takes a while
(minutes per hundred thousand voices); store-wide identify searches exactly meanwhile.
"""

from django.db import migrations

from voiceprint.services import vector_index


def _rebuild(m: int | None, ef_construction: int | None):
    def run(apps, schema_editor):
        for dim in vector_index.DIMENSIONS:
            vector_index.centroid_index_drop(dim)
            vector_index.centroid_index_build(dim, m=m, ef_construction=ef_construction)

    return run


class Migration(migrations.Migration):
    dependencies = [("voiceprint", "0009_consent")]

    operations = [
        # Forwards: the settings' parameters; backwards: those of migration 0002.
        migrations.RunPython(_rebuild(None, None), _rebuild(16, 64)),
    ]
