"""Re-encrypt every stored enrollment recording with the current audio key."""

from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.exceptions import ApiError
from utilities.sealing import new_key
from voiceprint.models import VoiceSample
from voiceprint.services import Reseal, voice_sample_audio_reseal
from voiceprint.services.storage import KEY_SETTING, audio_keyring


class Command(BaseCommand):
    help = (
        f"Re-encrypt the stored audio of every sample with the first key of {KEY_SETTING} "
        "(audio stored before encryption is encrypted too). Rotation: put a new key first, "
        "keep the old ones after it, run this, then drop the old keys. Idempotent and "
        "resumable: each sample is converted on its own, and audio already on the current "
        "key is skipped. --new-key prints a fresh key and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="only this tenant (name)")
        parser.add_argument("--new-key", action="store_true", help="print a new key and stop")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        if options["new_key"]:
            self.stdout.write(new_key())
            return
        try:
            current = audio_keyring().current_id
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        # Purged samples (VOICEPRINT_AUDIO_RETENTION_DAYS) have no audio left to encrypt.
        samples = VoiceSample.objects.filter(audio_purged_at__isnull=True).order_by("pk")
        if options["tenant"]:
            samples = samples.filter(voice__tenant__name=options["tenant"])
        counts: Counter[Reseal] = Counter()
        failed = 0
        for sample_id in tqdm(
            list(samples.values_list("pk", flat=True)),
            desc=f"re-encrypting with key {current}",
            unit="sample",
            disable=options["no_progress"],
        ):
            try:
                counts[voice_sample_audio_reseal(sample_id=sample_id)] += 1
            except (ApiError, OSError) as exc:
                failed += 1
                self.stderr.write(f"sample {sample_id}: {getattr(exc, 'message', exc)}")
        self.stdout.write(
            f"{counts[Reseal.RESEALED]} sample(s) re-encrypted with key {current}, "
            f"{counts[Reseal.CURRENT]} already on it, "
            f"{counts[Reseal.GONE] + counts[Reseal.PURGED]} deleted or purged meanwhile, "
            f"{failed} failed."
        )
        if failed:
            raise CommandError(f"{failed} sample(s) could not be re-encrypted; run again to retry")
