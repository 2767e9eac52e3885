"""`manage.py calibrate --tenant T FOLDER`: fit a tenant's operating point on its own audio."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

import engine
from core.exceptions import ApiError
from engine.evaluation import audio_files, speaker_label
from tenancy.models import Tenant
from voiceprint.management.options import add_label_from
from voiceprint.services import OperatingPointFit, operating_point_delete, operating_point_fit


class Command(BaseCommand):
    help = (
        "Fit TENANT's decision point for an engine to a target false-accept rate on its own "
        "labelled recordings in FOLDER (speaker = file-name prefix before the first '-' or "
        "'_', else the first subfolder), and store it: the tenant's voices that keep the "
        "engine's default threshold are then decided with it. --reset forgets it."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, nargs="?", help="labelled recordings")
        parser.add_argument("--tenant", required=True, help="tenant name or numeric id")
        parser.add_argument(
            "--target-far",
            type=float,
            default=0.01,
            help="false-accept rate to hold on this audio (default 0.01; README "
            '"Per-tenant operating point")',
        )
        parser.add_argument("--engine", help="engine name (default: the active engine)")
        add_label_from(parser)
        parser.add_argument("--reset", action="store_true", help="delete the tenant's point")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, folder: Path | None, tenant: str, **options):
        owner = _tenant(tenant)
        try:
            if options["reset"]:
                self._reset(owner, options["engine"] or engine.active_engine().name)
                return
            if folder is None or not folder.is_dir():
                raise CommandError(f"{folder} is not a folder" if folder else "FOLDER is needed")
            files = audio_files(folder)
            fit = self._fit(owner, folder, files, options)
        except (ApiError, engine.EngineError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self._report(owner, fit, files, options["target_far"])

    def _reset(self, owner: Tenant, engine_name: str) -> None:
        if operating_point_delete(owner, engine_name=engine_name):
            self.stdout.write(
                f"Operating point of tenant {owner.name!r} for {engine_name} deleted: its "
                "voices use the engine's default threshold again."
            )
        else:
            self.stdout.write(f"Tenant {owner.name!r} had no operating point for {engine_name}.")

    def _fit(self, owner: Tenant, folder: Path, files: list[Path], options) -> OperatingPointFit:
        recordings = [
            (speaker_label(path, folder, options["label_from"]), path.read_bytes())
            for path in files
        ]
        with tqdm(
            total=len(recordings), desc="embedding", unit="file", disable=options["no_progress"]
        ) as bar:
            return operating_point_fit(
                owner,
                recordings=recordings,
                target_far=options["target_far"],
                engine_name=options["engine"],
                on_embedded=lambda: bar.update(1),
            )

    def _report(
        self, owner: Tenant, fit: OperatingPointFit, files: list[Path], target_far: float
    ) -> None:
        point = fit.point
        for index, reason in fit.skipped:
            self.stderr.write(f"skipped {files[index]}: {reason}")
        self.stdout.write(
            f"Operating point of tenant {owner.name!r} for {point.engine_name}: "
            f"z >= {point.z_threshold:.3f} at a target false-accept rate of {target_far:g}.\n"
            f"Fitted on {fit.recordings} recording(s) of {point.speakers} speakers "
            f"({len(fit.skipped)} skipped): {point.nontarget_trials} different-speaker and "
            f"{point.target_trials} same-speaker trials; the smallest false-accept rate they "
            f"can measure is about {fit.smallest_measurable_far:.2g}."
        )
        if point.measured_frr is None:
            self.stdout.write(
                "Measured false-reject rate: none (no speaker has two recordings): add "
                "several recordings per speaker to see what the point costs."
            )
        else:
            self.stdout.write(
                f"Measured false-reject rate: {point.measured_frr:.1%}: about that share of "
                "genuine attempts on audio like this would be refused at this point (a "
                "stricter target raises it)."
            )
        self.stdout.write(
            "Voices of this tenant that keep the engine's default threshold now use it; "
            "voices with their own threshold keep theirs."
        )


def _tenant(name_or_id: str) -> Tenant:
    lookup = {"pk": int(name_or_id)} if name_or_id.isdigit() else {"name": name_or_id}
    try:
        return Tenant.objects.get(**lookup)
    except Tenant.DoesNotExist:
        raise CommandError(f"no tenant {name_or_id!r}") from None
