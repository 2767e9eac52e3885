"""Recompute voices from their stored audio under the active (or a named) engine."""

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

import engine
from core.exceptions import ApiError
from voiceprint.embedding import compute_embedding
from voiceprint.models import Voice
from voiceprint.services import centroid_of


class Command(BaseCommand):
    help = (
        "Re-embed every voice whose embeddings come from another engine than the target "
        "(the active engine by default). Idempotent and resumable: each voice is converted "
        "in its own transaction, and voices already on the target engine are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--engine", help="target engine (default: the active one)")
        parser.add_argument("--tenant", help="only this tenant (name)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        try:
            target = options["engine"] or engine.active_engine().name
            engine.get_engine(target)
        except engine.EngineError as exc:
            raise CommandError(str(exc)) from exc
        voices = Voice.objects.exclude(model=target).order_by("pk")
        if options["tenant"]:
            voices = voices.filter(tenant__name=options["tenant"])
        pending = list(voices.values_list("pk", flat=True))
        done = failed = 0
        for pk in tqdm(
            pending,
            desc=f"re-embedding with {target}",
            unit="voice",
            disable=options["no_progress"],
        ):
            try:
                reembed_voice(pk, target)
                done += 1
            except (engine.EngineError, ApiError, OSError) as exc:
                failed += 1
                self.stderr.write(f"voice {pk}: {exc}")
        self.stdout.write(
            f"{done} voice(s) re-embedded with {target}, {failed} failed, "
            f"{Voice.objects.filter(model=target).count()} on {target} in all."
        )
        if failed:
            raise CommandError(f"{failed} voice(s) could not be re-embedded; run again to retry")


def reembed_voice(pk: int, target: str) -> None:
    with transaction.atomic():
        voice = Voice.objects.select_for_update().get(pk=pk)
        if voice.model == target:
            return  # done by a concurrent run
        samples = list(voice.samples.all())
        if not samples:
            raise CommandError(f"voice {voice.voice_id} has no stored audio to re-embed")
        for sample in samples:
            with default_storage.open(sample.audio.name, "rb") as audio:
                result = compute_embedding(audio.read(), target)
            sample.embedding, sample.model = result.vector, result.model
            sample.save(update_fields=["embedding", "model"])
        voice.centroid = centroid_of([s.embedding for s in samples])
        voice.model, voice.dim = result.model, result.dim
        voice.save(update_fields=["centroid", "model", "dim", "updated_at"])
