"""One partial HNSW index per embedding dimension on the voices' centroids.

The `centroid` column has no fixed dimension (engines differ), and pgvector indexes
need one, so each index is on the expression `centroid::vector(N)` for the rows of that
dimension. Queries must use the same expression and condition to be served by it.
"""

from django.db import migrations

DIMENSIONS = (192, 256)


def _create(dim: int) -> str:
    return (
        f"CREATE INDEX voice_centroid_{dim}_hnsw ON voiceprint_voice "
        f"USING hnsw ((centroid::vector({dim})) vector_cosine_ops) WHERE dim = {dim}"
    )


class Migration(migrations.Migration):
    dependencies = [("voiceprint", "0001_initial")]

    operations = [
        migrations.RunSQL(_create(dim), f"DROP INDEX voice_centroid_{dim}_hnsw")
        for dim in DIMENSIONS
    ]
