"""Fit an engine's quality-aware calibration (engine/heads/calibration-<engine>.json)."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

import engine
from engine.household import load_noises
from engine.scoring import (
    DEFAULT_TOP_N,
    HEADS_DIR,
    Calibration,
    Scorer,
    ThresholdMap,
    cohort_path,
    fit_calibration,
    save_scorer,
)
from voiceprint.evaluation import conditions_from, embed_material, trials
from voiceprint.management.commands._household import (
    add_material_arguments,
    add_probe_arguments,
    material_from,
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
        material = material_from(options)
        conditions = conditions_from(parse_windows(options["windows"]), parse_snrs(options["snrs"]))
        noises = load_noises(options["noise_folder"]) if options["noise_folder"] else ()
        try:
            embedded = embed_material(
                material,
                conditions,
                engine_name=options["engine"],
                windows_per_speaker=options["windows_per_speaker"],
                noises=noises,
                seed=options["seed"],
                progress=not options["no_progress"],
            )
        except (engine.EngineError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        cohort_file = cohort_path(embedded.engine, out_dir)
        if not cohort_file.is_file():
            raise CommandError(f"no cohort at {cohort_file}: run manage.py build_cohort first")
        cohort = np.load(cohort_file, allow_pickle=False).astype(np.float32)
        placeholder = Calibration(
            engine=embedded.engine,
            dim=cohort.shape[1],
            weights=np.zeros(5),
            bias=0.0,
            prior_logit=0.0,
            threshold_map=ThresholdMap(0.0, 1.0, 0.0, 1.0),
            uncertain_probability=options["uncertain_probability"],
            close_margin=options["close_margin"],
            top_n=options["top_n"],
        )
        pairs = trials(embedded, Scorer(cohort=cohort, calibration=placeholder))
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
