"""Fit an engine's quality-aware calibration (engine/heads/calibration-<engine>.json)."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from engine.scoring import (
    DEFAULT_TOP_N,
    HEADS_DIR,
    Scorer,
    cohort_path,
    fit_calibration,
    save_scorer,
)
from voiceprint.evaluation import conditions_from, trials
from voiceprint.management.commands._household import (
    add_material_arguments,
    add_probe_arguments,
    embedded_from,
    parse_snrs,
    parse_windows,
)


class Command(BaseCommand):
    help = (
        "Make device-like trials (enrollments, short probes mixed with babble or noise) from "
        "a folder's speakers, normalise them with the engine's cohort (build_cohort first) "
        "and fit the calibration: the log-likelihood ratio from the normalised score and the "
        "probe's speech seconds and SNR, and the map from a voice's cosine threshold to a "
        "normalised one. Use speakers outside the cohort (by default the 'fit' part)."
    )

    def add_arguments(self, parser):
        add_material_arguments(parser, default_part="fit")
        add_probe_arguments(parser)
        parser.add_argument("--top-n", type=int, default=DEFAULT_TOP_N, help="AS-norm top N")
        parser.add_argument(
            "--uncertain-probability",
            type=float,
            default=0.8,
            help="a best voice that misses but is at least this likely is 'uncertain' (0.8)",
        )
        parser.add_argument(
            "--close-margin",
            type=float,
            default=0.5,
            help="a match whose runner-up is within this many z units is 'uncertain' (0.5)",
        )
        parser.add_argument("--out-dir", default=str(HEADS_DIR), help="default: engine/heads")

    def handle(self, *args, **options):
        out_dir = Path(options["out_dir"])
        conditions = conditions_from(parse_windows(options["windows"]), parse_snrs(options["snrs"]))
        embedded = embedded_from(options, conditions)
        cohort_file = cohort_path(embedded.engine, out_dir)
        if not cohort_file.is_file():
            raise CommandError(f"no cohort at {cohort_file}: run manage.py build_cohort first")
        cohort = np.load(cohort_file, allow_pickle=False).astype(np.float32)
        pairs = trials(embedded, cohort=cohort, top_n=options["top_n"])
        calibration = fit_calibration(
            pairs,
            engine=embedded.engine,
            dim=cohort.shape[1],
            top_n=options["top_n"],
            uncertain_probability=options["uncertain_probability"],
            close_margin=options["close_margin"],
            training={
                "source": f"{options['folder'].name} (part {options['part']})",
                "speakers": len(embedded.labels),
                "probes": len(embedded.probes),
                "conditions": [c.name for c in conditions],
                "cohort_size": len(cohort),
            },
        )
        save_scorer(
            Scorer(cohort=cohort, calibration=calibration),
            out_dir,
            script=_command_line(options),
        )
        mapping = calibration.threshold_map
        self.stdout.write(
            f"calibration of {embedded.engine}: {calibration.training['target_trials']} "
            f"same-speaker and {calibration.training['nontarget_trials']} different-speaker "
            f"trials from {len(embedded.labels)} speakers\n"
            f"weights {np.round(calibration.weights, 3).tolist()}, bias {calibration.bias:.3f}\n"
            f"threshold 0.75 -> z {mapping.z_threshold(0.75):.2f}\n"
            f"wrote {out_dir}"
        )


def _command_line(options: dict) -> str:
    """The command that made the file, for the record in it."""
    words = ["python", "manage.py", "fit_calibration", str(options["folder"])]
    for name in ("part", "windows", "snrs", "windows_per_speaker", "seed", "top_n"):
        words += [f"--{name.replace('_', '-')}", str(options[name])]
    words += ["--uncertain-probability", str(options["uncertain_probability"])]
    words += ["--close-margin", str(options["close_margin"])]
    return shlex.join(words)
