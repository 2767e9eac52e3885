"""Recompute voices from their stored audio under the active (or a named) engine."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

import engine
from core.exceptions import ApiError
from voiceprint.models import Voice
from voiceprint.services import voice_reembed


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
        voices = Voice.objects.exclude(engine_name=target).order_by("pk")
        if options["tenant"]:
            voices = voices.filter(tenant__name=options["tenant"])
        pending = list(voices.only("pk"))
        done = failed = 0
        for voice in tqdm(
            pending,
            desc=f"re-embedding with {target}",
            unit="voice",
            disable=options["no_progress"],
        ):
            try:
                if voice_reembed(voice, engine_name=target):
                    done += 1
            except (engine.EngineError, ApiError, OSError) as exc:
                failed += 1
                self.stderr.write(f"voice {voice.pk}: {exc}")
        self.stdout.write(
            f"{done} voice(s) re-embedded with {target}, {failed} failed, "
            f"{Voice.objects.filter(engine_name=target).count()} on {target} in all."
        )
        if failed:
            raise CommandError(f"{failed} voice(s) could not be re-embedded; run again to retry")
