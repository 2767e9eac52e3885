"""Bulk enrollment: one voice per speaker of a folder, bound to a device."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from tqdm import tqdm

import engine
from core.exceptions import ApiError
from devices.models import Device
from devices.selectors import device_get
from engine.evaluation import audio_files, speaker_label
from tenancy.models import Tenant
from voiceprint.management.commands._progress import note_writer
from voiceprint.models import Voice
from voiceprint.services import centroid_indexes_suspended, voice_create, voice_sample_add


class Command(BaseCommand):
    help = (
        "Enroll every speaker of FOLDER on DEVICE: speaker = subfolder or file-name prefix "
        "(fangjun-sr-1.wav -> fangjun). The first file of a speaker creates the voice, the "
        "others are added as samples. Speakers that already have a voice of that name on the "
        "device are skipped, so running it again enrolls only what is missing (a speaker "
        "interrupted midway keeps the samples it had and is listed as incomplete). From "
        "VOICEPRINT_BULK_INDEX_THRESHOLD files on, the HNSW index is dropped during the run "
        "and built once at the end."
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
        existing = dict(
            Voice.objects.filter(tenant=owner, bindings__device=target)
            .annotate(sample_count=Count("samples"))
            .values_list("name", "sample_count")
        )
        todo = {name: files for name, files in by_speaker.items() if name not in existing}
        incomplete = sorted(
            name
            for name, files in by_speaker.items()
            if name in existing and existing[name] < len(files)
        )
        total = sum(len(files) for files in todo.values())
        try:
            dim = engine.active_engine().dim
        except engine.EngineError as exc:
            raise CommandError(str(exc)) from exc
        with (
            tqdm(total=total, desc="enrolling", unit="file", disable=options["no_progress"]) as bar,
            centroid_indexes_suspended(
                dims=[dim],
                rows=total,
                notify=note_writer(self.stdout),
            ),
        ):
            enrolled, skipped_files = self._enroll(owner, target, todo, bar)
        for line in skipped_files:
            self.stderr.write(f"skipped {line}")
        self.stdout.write(
            f"{enrolled} voice(s) enrolled on {device}, {len(by_speaker) - len(todo)} already "
            f"there, {len(skipped_files)} file(s) skipped."
        )
        if incomplete:
            self.stdout.write(
                f"{len(incomplete)} voice(s) already there have fewer samples than files "
                f"(an interrupted run?): {', '.join(incomplete)}; delete them and run again to "
                "enroll them from all their files"
            )

    def _enroll(
        self, owner: Tenant, target: Device, todo: dict[str, list[Path]], bar: tqdm
    ) -> tuple[int, list[str]]:
        """Enroll each speaker of `todo`; the voices made and the files refused."""
        enrolled, skipped_files = 0, []
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
        return enrolled, skipped_files
