"""Make the material the spoofing countermeasure is measured on (engine.spoof_material)."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from engine.spoof_material import (
    SPOOF_PARTS,
    espeak_available,
    make_material,
    shared_speakers,
)


def default_shared_audio() -> Path:
    """../shared/audio beside the project, or VOICEPRINT_SHARED_DIR's audio/."""
    shared = os.environ.get("VOICEPRINT_SHARED_DIR")
    return (Path(shared) if shared else Path(settings.BASE_DIR).parent / "shared") / "audio"


class Command(BaseCommand):
    help = (
        "Write OUT/bonafide/*.wav (3-4 s pieces of the shared Mandarin and LibriSpeech "
        "speech), OUT/spoof/espeak/*.wav (espeak-ng synthesis, as many) and "
        "OUT/spoof/replay/*.wav (each bona fide piece through a simulated loudspeaker and "
        "room), 16 kHz mono 16-bit. Speakers are split into a fit and a report part by a hash "
        "of their label; the same seed makes the same files. Needs espeak-ng "
        "(apt-get install espeak-ng) unless --no-espeak."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path, help="folder to write (created)")
        parser.add_argument(
            "--speakers", type=int, help="LibriSpeech speakers drawn (default: all 251)"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--part",
            choices=[*SPOOF_PARTS, "all"],
            default="all",
            help="only the speakers (and espeak-ng voices) of this part",
        )
        parser.add_argument(
            "--audio",
            type=Path,
            default=default_shared_audio(),
            help="the shared speech (default: ../shared/audio or VOICEPRINT_SHARED_DIR/audio)",
        )
        parser.add_argument("--no-espeak", action="store_true", help="no espeak-ng speech")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        if not options["no_espeak"] and not espeak_available():
            raise CommandError(
                "espeak-ng is not installed (apt-get install espeak-ng), or pass --no-espeak"
            )
        try:
            speakers = shared_speakers(
                options["audio"], librispeech=options["speakers"], seed=options["seed"]
            )
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        summary = make_material(
            options["out"],
            speakers=speakers,
            part=None if options["part"] == "all" else options["part"],
            seed=options["seed"],
            espeak=not options["no_espeak"],
            progress=not options["no_progress"],
        )
        self.stdout.write(
            f"{options['out']}: speakers {summary.speakers}, bona fide {summary.bonafide}, "
            f"espeak-ng {summary.espeak}, replay {summary.replay}"
        )
