"""Train the sex head shipped in engine/heads/ on the shared LibriSpeech sample."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

import engine
from engine.attributes import head_path, save_gender_head, train_gender_head

DEFAULT_FOLDER = settings.BASE_DIR.parent / "shared" / "audio" / "librispeech-train-clean-100"


class Command(BaseCommand):
    help = (
        "Embed every file of a LibriSpeech folder (one utterance per speaker), label it by the "
        "sex in SPEAKERS.TXT, report speaker-disjoint cross-validated accuracy and write the "
        "logistic-regression head to engine/heads/gender-<engine>.json. Touches no database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--folder",
            type=Path,
            default=DEFAULT_FOLDER,
            help=f"LibriSpeech files named SPEAKER-CHAPTER-UTT.flac (default: {DEFAULT_FOLDER})",
        )
        parser.add_argument(
            "--speakers",
            type=Path,
            help="SPEAKERS.TXT giving each speaker's sex (default: FOLDER/SPEAKERS.TXT)",
        )
        parser.add_argument("--engine", default="ge2e", help="engine name (default: ge2e)")
        parser.add_argument(
            "--out", type=Path, help="output file (default: engine/heads/gender-<engine>.json)"
        )
        parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (5)")
        parser.add_argument("--seed", type=int, default=0, help="fold shuffling seed (0)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        folder: Path = options["folder"]
        if not folder.is_dir():
            raise CommandError(
                f"training data not found at {folder}: the LibriSpeech sample is expected in "
                f"{DEFAULT_FOLDER} (../shared/audio beside the project; see ../shared/README.md), "
                "or pass --folder"
            )
        speakers = options["speakers"] or folder / "SPEAKERS.TXT"
        if not speakers.is_file():
            raise CommandError(f"speaker list not found at {speakers} (pass --speakers)")
        out = options["out"] or head_path(options["engine"])
        try:
            head = train_gender_head(
                folder,
                speakers,
                engine_name=options["engine"],
                folds=options["folds"],
                progress=not options["no_progress"],
                seed=options["seed"],
            )
        except (engine.EngineError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        save_gender_head(head, out)
        t = head.training
        folds = ", ".join(f"{a:.3f}" for a in t["cv_fold_accuracy"])
        self.stdout.write(
            f"files: {t['files_used']} used, {t['files_skipped']} skipped; speakers: "
            f"{t['n_female']} female, {t['n_male']} male\n"
            f"cross-validated accuracy: {head.cv_accuracy:.4f} "
            f"({head.folds} speaker-disjoint folds, nested: {folds})\n"
            f"lambda: {t['lambda']:g} (grid {t['lambda_grid']}); "
            f"training accuracy {t['train_accuracy']:.4f}; {t['train_seconds']:.1f} s\n"
            f"wrote {out}"
        )
