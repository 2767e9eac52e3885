"""Delete enrollment recordings older than VOICEPRINT_AUDIO_RETENTION_DAYS (run it daily,
e.g. from cron); their voices keep their embeddings."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from tqdm import tqdm

from voiceprint.services import audio_purge_plan, audio_retention_cutoff, voice_audio_purge


class Command(BaseCommand):
    help = (
        "Delete the stored audio of every sample older than VOICEPRINT_AUDIO_RETENTION_DAYS "
        "and mark the sample purged; the voice keeps its embeddings and keeps working. "
        "Nothing happens while the setting is off. Idempotent; one voice per transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        days = settings.VOICEPRINT_AUDIO_RETENTION_DAYS
        cutoff = audio_retention_cutoff()
        if cutoff is None:
            self.stdout.write("VOICEPRINT_AUDIO_RETENTION_DAYS is off: no audio purged.")
            return
        plan = audio_purge_plan(cutoff)
        if options["dry_run"]:
            self.stdout.write(
                f"dry run: {plan.samples} sample(s) of {len(plan.samples_by_voice)} voice(s) "
                f"are older than {days} days and would be purged."
            )
            return
        purged = voices = 0
        for voice_id in tqdm(
            list(plan.samples_by_voice),
            desc=f"purging audio older than {days} days",
            unit="voice",
            disable=options["no_progress"],
        ):
            count = voice_audio_purge(voice_id=voice_id, cutoff=cutoff)
            purged += count
            voices += bool(count)
        self.stdout.write(
            f"{purged} sample(s) of {voices} voice(s) purged (audio older than {days} days); "
            f"their voices keep their embeddings."
        )
