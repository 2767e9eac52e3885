"""`Voice.model` and `VoiceSample.model` hold the name of the speaker engine that made the
embeddings: renamed `engine_name` (the API's field stays `model`).

The gallery index covers the column; PostgreSQL keeps it through the rename, so only
Django's record of its fields changes (no index is rebuilt)."""

from django.db import migrations, models

GALLERY_INDEX = "voice_gallery_idx"


class Migration(migrations.Migration):
    dependencies = [("voiceprint", "0002_centroid_hnsw_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveIndex(model_name="voice", name=GALLERY_INDEX)]
        ),
        migrations.RenameField(model_name="voice", old_name="model", new_name="engine_name"),
        migrations.RenameField(
            model_name="voicesample", old_name="model", new_name="engine_name"
        ),
        migrations.AlterField(
            model_name="voice",
            name="engine_name",
            field=models.CharField(max_length=32, verbose_name="engine"),
        ),
        migrations.AlterField(
            model_name="voicesample",
            name="engine_name",
            field=models.CharField(max_length=32, verbose_name="engine"),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="voice",
                    index=models.Index(
                        fields=["tenant", "store", "engine_name"], name=GALLERY_INDEX
                    ),
                )
            ]
        ),
    ]
