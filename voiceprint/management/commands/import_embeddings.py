"""Import voices from embeddings made elsewhere (JSON lines or NumPy), without audio."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

import engine
from tenancy.models import Tenant
from voiceprint.embedding_files import EmbeddingFileError, embedding_rows_read
from voiceprint.management.commands._progress import note_writer
from voiceprint.models import DEFAULT_STORE
from voiceprint.services import voices_import


class Command(BaseCommand):
    help = (
        'Create one voice per embedding of FILE in the tenant: JSON lines ({"name": ..., '
        '"embedding": [...], optional "store" and "labels"}) or NumPy (.npz with '
        "`names` and `embeddings`, or .npy with --names). The whole file is checked first "
        "(engine's dimension, finite, not zero, names unique): a bad line is named and "
        "nothing is written. Names already in their store are skipped, so running it again "
        "after an interruption imports only the rest. Imported voices have no audio: they "
        "identify and verify, but cannot be re-embedded."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--tenant", required=True, help="tenant name")
        parser.add_argument(
            "--engine", dest="engine_name", required=True, help="engine that made the embeddings"
        )
        parser.add_argument("--store", default=DEFAULT_STORE, help="store of rows naming none")
        parser.add_argument("--names", type=Path, help="names of a .npy, one per line")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, file: Path, tenant: str, engine_name: str, store: str, **options):
        owner = Tenant.objects.filter(name=tenant).first()
        if owner is None:
            raise CommandError(f"no tenant {tenant!r}")
        try:
            engine.get_engine(engine_name)  # unknown or unavailable: said before any work
        except engine.EngineError as exc:
            raise CommandError(str(exc)) from exc
        try:
            rows = embedding_rows_read(file, names=options["names"])
        except (EmbeddingFileError, OSError, ValueError) as exc:
            raise CommandError(f"{file}: nothing imported: {exc}") from exc
        with tqdm(
            desc="importing", unit="voice", disable=options["no_progress"], total=None
        ) as bar:
            try:
                result = voices_import(
                    owner,
                    rows=rows,
                    engine_name=engine_name,
                    store=store,
                    progress=bar.update,
                    notify=note_writer(self.stdout),
                )
            except EmbeddingFileError as exc:
                raise CommandError(f"{file}: nothing imported: {exc}") from exc
        self.stdout.write(
            f"{result.imported} voice(s) imported into {tenant} ({engine_name}), "
            f"{result.skipped} already there (skipped)."
        )
