"""Fit an embedding distribution for `make bench-scale` (heads/scale-<engine>.npz)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from engine.evaluation import audio_files, embed_segments, speaker_label
from engine.scale_distribution import scale_distribution_fit, scale_distribution_path
from engine.scoring import HEADS_DIR


class Command(BaseCommand):
    help = (
        "Embed consecutive pieces of every speaker's speech in FOLDER and fit the between- "
        "and within-speaker covariance of the embeddings (engine.scale_distribution), from "
        "which the scale benchmark draws realistic voices and probes."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="folder of speaker-labelled speech")
        parser.add_argument("--engine", default="ge2e", help="engine name (default: ge2e)")
        parser.add_argument(
            "--segment-seconds", type=float, default=2.5, help="piece length (default 2.5)"
        )
        parser.add_argument("--label-from", choices=["auto", "prefix", "folder"], default="auto")
        parser.add_argument("--out-dir", default=str(HEADS_DIR), help="default: engine/heads")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        folder: Path = options["folder"]
        if not folder.is_dir():
            raise CommandError(f"not a folder: {folder}")
        files = audio_files(folder)
        labels = [speaker_label(path, folder, options["label_from"]) for path in files]
        vectors, item_labels, report = embed_segments(
            files,
            labels,
            options["engine"],
            segment_seconds=options["segment_seconds"],
            progress=not options["no_progress"],
        )
        distribution = scale_distribution_fit(
            vectors,
            item_labels,
            engine_name=report.engine,
            segment_seconds=options["segment_seconds"],
        )
        path = scale_distribution_path(report.engine, Path(options["out_dir"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        distribution.save(path)
        self.stdout.write(
            f"{report.engine}: {distribution.segments} segments of {distribution.speakers} "
            f"speakers ({len(report.skipped)} files skipped); between-speaker rank "
            f"{distribution.between.shape[1]}, within-speaker rank "
            f"{distribution.within.shape[1]} -> {path}"
        )
