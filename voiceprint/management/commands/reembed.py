"""Recompute voices from their stored audio under the active (or a named) engine."""

from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

import engine
from core.exceptions import ApiError
from voiceprint.models import Voice
from voiceprint.services import Reembed, voice_reembed


class Command(BaseCommand):
    help = (
        "Re-embed every voice whose embeddings come from another engine than the target "
        "(the active engine by default). Idempotent and resumable: each voice is converted "
        "in its own transaction, and voices already on the target engine are skipped. A "
        "voice with a sample whose audio was purged (VOICEPRINT_AUDIO_RETENTION_DAYS) cannot "
        "be recomputed: it keeps its engine and is listed, not counted as failed."
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
        voices = Voice.objects.exclude(engine_name=target).order_by("pk")
        if options["tenant"]:
            voices = voices.filter(tenant__name=options["tenant"])
        pending = list(voices.only("pk", "voice_id", "engine_name"))
        counts: Counter[Reembed] = Counter()
        failed = 0
        for voice in tqdm(
            pending,
            desc=f"re-embedding with {target}",
            unit="voice",
            disable=options["no_progress"],
        ):
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
            f"{counts[Reembed.PURGED]} not recomputable (audio purged), "
            f"{Voice.objects.filter(engine_name=target).count()} on {target} in all."
        )
        if failed:
            raise CommandError(f"{failed} voice(s) could not be re-embedded; run again to retry")

    def _report_purged(self, voice: Voice) -> None:
        samples = voice.samples.count()
        purged = voice.samples.filter(audio_purged_at__isnull=False).count()
        self.stdout.write(
            f"voice {voice.voice_id}: the audio of {purged} of its {samples} sample(s) was "
            f"purged; it cannot be recomputed and stays on {voice.engine_name} (re-enroll it, "
            f"or remove the purged samples to recompute it from the rest)"
        )
