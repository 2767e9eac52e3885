"""Measure an engine's accuracy (EER, top-1 identification) on a folder of labelled speech."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

import engine
from engine.evaluation import evaluate_folder
from voiceprint.management.options import add_label_from


class Command(BaseCommand):
    help = (
        "Embed every WAV/FLAC/OGG file under FOLDER and report the equal error rate of all "
        "pairwise trials and the top-1 identification accuracy. The speaker of a file is its "
        "name up to the first '-' or '_' (fangjun-sr-1.wav, 103-1240-0000.flac), else its "
        "first folder under FOLDER. Touches no database."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="folder of audio files, searched recursively")
        parser.add_argument("--engine", help="engine name (default: the active engine)")
        add_label_from(parser)
        parser.add_argument(
            "--segment-seconds",
            type=float,
            help="cut each file's speech into segments of this length (one file per speaker)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        try:
            report = evaluate_folder(
                options["folder"],
                options["engine"],
                progress=not options["no_progress"],
                label_from=options["label_from"],
                segment_seconds=options["segment_seconds"],
            )
        except (engine.EngineError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(report.as_text())
