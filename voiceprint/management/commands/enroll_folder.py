"""Bulk enrollment: one voice per speaker of a folder, bound to a device."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

import engine
from core.exceptions import ApiError
from devices.selectors import device_get
from engine.evaluation import audio_files, speaker_label
from tenancy.models import Tenant
from voiceprint.selectors import voice_list
from voiceprint.services import voice_create, voice_sample_add


class Command(BaseCommand):
    help = (
        "Enroll every speaker of FOLDER on DEVICE: speaker = subfolder or file-name prefix "
        "(fangjun-sr-1.wav -> fangjun). The first file of a speaker creates the voice, the "
        "others are added as samples. Speakers that already have a voice of that name on the "
        "device are skipped, so running it again enrolls only what is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("device", help="device_id (must exist)")
        parser.add_argument("folder", type=Path)
        parser.add_argument("--tenant", required=True, help="tenant name")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, device: str, folder: Path, tenant: str, **options):
        try:
            owner = Tenant.objects.get(name=tenant)
            target = device_get(owner, device_id=device)
        except (Tenant.DoesNotExist, ApiError):
            raise CommandError(f"no device {device!r} for tenant {tenant!r}") from None
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        by_speaker: dict[str, list[Path]] = {}
        for path in audio_files(folder):
            by_speaker.setdefault(speaker_label(path, folder), []).append(path)
        existing = {voice.name for voice in voice_list(owner, device_id=target.device_id)}
        todo = {name: files for name, files in by_speaker.items() if name not in existing}
        enrolled, skipped_files = 0, []
        total = sum(len(files) for files in todo.values())
        with tqdm(
            total=total, desc="enrolling", unit="file", disable=options["no_progress"]
        ) as bar:
            for name, files in todo.items():
                voice = None
                for path in files:
                    try:
                        if voice is None:
                            voice = voice_create(
                                owner, audio=path.read_bytes(), devices=[target], name=name
                            )
                            enrolled += 1
                        else:
                            voice_sample_add(voice, audio=path.read_bytes())
                    except (engine.EngineError, ApiError) as exc:
                        skipped_files.append(f"{path}: {exc}")
                    bar.update(1)
        for line in skipped_files:
            self.stderr.write(f"skipped {line}")
        self.stdout.write(
            f"{enrolled} voice(s) enrolled on {device}, {len(by_speaker) - len(todo)} already "
            f"there, {len(skipped_files)} file(s) skipped."
        )
