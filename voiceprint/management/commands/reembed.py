"""Recompute voices from their stored audio under the active (or a named) engine."""

from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

import engine
from core.exceptions import ApiError
from voiceprint.management.commands._progress import note_writer
from voiceprint.models import Voice
from voiceprint.services import Reembed, centroid_indexes_suspended, voice_reembed


class Command(BaseCommand):
    help = (
        "Re-embed every voice whose embeddings come from another engine than the target "
        "(the active engine by default). Idempotent and resumable: each voice is converted "
        "in its own transaction, and voices already on the target engine are skipped. A "
        "voice with a sample whose audio was purged (VOICEPRINT_AUDIO_RETENTION_DAYS) cannot "
        "be recomputed, nor one imported from embeddings (import_embeddings): it keeps its "
        "engine and is listed, not counted as failed. From VOICEPRINT_BULK_INDEX_THRESHOLD "
        "voices on, the HNSW indexes they leave and join are dropped during the run and "
        "built once at the end."
    )

    def add_arguments(self, parser):
        parser.add_argument("--engine", help="target engine (default: the active one)")
        parser.add_argument("--tenant", help="only this tenant (name)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        try:
            target = options["engine"] or engine.active_engine().name
            target_dim = engine.get_engine(target).dim
        except engine.EngineError as exc:
            raise CommandError(str(exc)) from exc
        scope = Voice.objects.all()
        if options["tenant"]:
            scope = scope.filter(tenant__name=options["tenant"])
        voices = scope.exclude(engine_name=target).order_by("pk")
        pending = list(voices.only("pk", "voice_id", "engine_name", "dim"))
        skipped = scope.filter(engine_name=target).count()
        counts: Counter[Reembed] = Counter()
        failed = 0
        with (
            tqdm(
                pending,
                desc=f"re-embedding with {target}",
                unit="voice",
                disable=options["no_progress"],
            ) as bar,
            centroid_indexes_suspended(
                dims={target_dim, *(voice.dim for voice in pending)},
                rows=len(pending),
                notify=note_writer(self.stdout),
            ),
        ):
            for voice in bar:
                try:
                    outcome = voice_reembed(voice, engine_name=target)
                except (engine.EngineError, ApiError, OSError) as exc:
                    failed += 1
                    self.stderr.write(f"voice {voice.pk}: {exc}")
                    continue
                counts[outcome] += 1
                if outcome is Reembed.PURGED:
                    self._report_purged(voice)
        self.stdout.write(
            f"{counts[Reembed.REEMBEDDED]} voice(s) re-embedded with {target}, {failed} failed, "
            f"{counts[Reembed.PURGED]} not recomputable (no audio), "
            f"{skipped} already on {target} (skipped), "
            f"{Voice.objects.filter(engine_name=target).count()} on {target} in all."
        )
        if failed:
            raise CommandError(f"{failed} voice(s) could not be re-embedded; run again to retry")

    def _report_purged(self, voice: Voice) -> None:
        samples = voice.samples.count()
        purged = voice.samples.filter(audio_purged_at__isnull=False).count()
        self.stdout.write(
            f"voice {voice.voice_id}: no audio to re-embed for {purged} of its {samples} "
            f"sample(s) (purged by retention, or imported as embeddings); it cannot be "
            f"recomputed and stays on {voice.engine_name} (re-enroll it, or remove those "
            f"samples to recompute it from the rest)"
        )
