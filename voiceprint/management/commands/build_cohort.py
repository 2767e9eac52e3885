"""Embed the impostor cohort of an engine (engine/heads/cohort-<engine>.npy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand

from engine.scoring import HEADS_DIR, cohort_path
from voiceprint.management.commands._household import add_material_arguments, embedded_from


class Command(BaseCommand):
    help = (
        "Embed the enrollment samples of a folder's speakers as the engine's impostor cohort "
        "for score normalisation. Use speakers who will never be anyone's voice and are not "
        "in the calibration or evaluation sets (by default the folder's 'cohort' part)."
    )

    def add_arguments(self, parser):
        add_material_arguments(parser, default_part="cohort")
        parser.add_argument("--out-dir", default=str(HEADS_DIR), help="default: engine/heads")

    def handle(self, *args, **options):
        embedded = embedded_from(options, conditions=[])
        path = cohort_path(embedded.engine, Path(options["out_dir"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, embedded.samples.astype(np.float32))
        self.stdout.write(
            f"cohort of {embedded.engine}: {len(embedded.samples)} embeddings of "
            f"{len(embedded.labels)} speakers -> {path}\n"
            f"now fit the calibration on other speakers: manage.py fit_calibration FOLDER"
        )
