"""Measure the spoofing countermeasure on a folder of bona fide and spoofed recordings."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

import engine
from engine.settings import SPOOF_MODELS
from engine.spoof_evaluation import evaluate_spoof_folder, summary_table
from voiceprint.spoofing import spoof_threshold


class Command(BaseCommand):
    help = (
        "Score every recording under FOLDER/bonafide and FOLDER/spoof (searched recursively; "
        "a spoof's kind is its first folder under spoof/, e.g. spoof/espeak, spoof/replay) "
        "with the spoofing countermeasure, and print the equal error rate of each kind and of "
        "all of them, with the share flagged at the threshold. Touches no database."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="holds bonafide/ and spoof/")
        parser.add_argument(
            "--model", choices=SPOOF_MODELS, help="default: the setting VOICEPRINT_SPOOF_MODEL"
        )
        parser.add_argument(
            "--threshold",
            type=float,
            help="flag scores below this (default: the service's, VOICEPRINT_SPOOF_THRESHOLD "
            "or the model's measured default)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        model = options["model"] or engine.current_settings().spoof_model
        threshold = options["threshold"]
        if threshold is None:
            threshold = spoof_threshold(model)
        try:
            scores, summary = evaluate_spoof_folder(
                options["folder"],
                model=model,
                threshold=threshold,
                progress=not options["no_progress"],
            )
        except (engine.EngineError, FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"model: {scores.model}")
        self.stdout.write(summary_table(summary))
        for path, reason in scores.skipped:
            self.stdout.write(f"skipped {path}: {reason}")
