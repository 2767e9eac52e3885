"""Options shared by the household commands (build_cohort, fit_calibration, evaluate_household).

The leading underscore keeps Django from listing this module as a command.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from django.core.management.base import CommandError

import engine
from engine.household import (
    DEFAULT_SNRS,
    DEFAULT_WINDOWS,
    PARTS,
    Condition,
    Material,
    load_material,
    load_noises,
)
from voiceprint.evaluation import EmbeddedMaterial, embed_material


def add_material_arguments(parser: argparse.ArgumentParser, *, default_part: str) -> None:
    parser.add_argument("folder", type=Path, help="folder of speaker-labelled speech")
    parser.add_argument("--engine", help="engine name (default: the active engine)")
    parser.add_argument(
        "--part",
        choices=[*PARTS, "all"],
        default=default_part,
        help="speakers used: one part of the folder's stable three-way split by speaker "
        f"(cohort / fit / report), or all (default: {default_part})",
    )
    parser.add_argument("--label-from", choices=["auto", "prefix", "folder"], default="auto")
    parser.add_argument("--enrollment-samples", type=int, default=3, help="per voice (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_probe_arguments(
    parser: argparse.ArgumentParser,
    *,
    windows: Sequence[float] = DEFAULT_WINDOWS,
    snrs: Sequence[float | None] = DEFAULT_SNRS,
    per_speaker: bool = True,
) -> None:
    """Probe options with these defaults; ``per_speaker``: --windows-per-speaker too."""
    windows_text = ",".join(f"{w:g}" for w in windows)
    snrs_text = ",".join("clean" if s is None else f"{s:g}" for s in snrs)
    parser.add_argument(
        "--windows",
        default=windows_text,
        help=f"probe lengths in seconds (default: {windows_text})",
    )
    parser.add_argument(
        "--snrs",
        default=snrs_text,
        help=f"probe SNRs in dB, 'clean' for none (default: {snrs_text})",
    )
    if per_speaker:
        parser.add_argument("--windows-per-speaker", type=int, default=3)
    parser.add_argument("--noise-folder", type=Path, help="noise recordings instead of babble")
    parser.add_argument("--seed", type=int, default=0)


def material_from(options: dict) -> Material:
    if not options["folder"].is_dir():
        raise CommandError(f"not a folder: {options['folder']}")
    part = None if options["part"] == "all" else options["part"]
    material = load_material(
        options["folder"],
        enrollment_samples=options["enrollment_samples"],
        part=part,
        label_from=options["label_from"],
    )
    if len(material.speakers) < 2:
        where = f"{options['folder']} (part {options['part']})"
        raise CommandError(f"{len(material.speakers)} usable speakers in {where}")
    return material


def embedded_from(options: dict, conditions: Sequence[Condition]) -> EmbeddedMaterial:
    """The folder's material (``material_from``), enrolled and probed in ``conditions``."""
    material = material_from(options)
    noise_folder = options.get("noise_folder")
    try:
        return embed_material(
            material,
            conditions,
            engine_name=options["engine"],
            windows_per_speaker=options.get("windows_per_speaker", 0),
            noises=load_noises(noise_folder) if noise_folder else (),
            seed=options.get("seed", 0),
            progress=not options["no_progress"],
        )
    except (engine.EngineError, ValueError) as exc:
        raise CommandError(str(exc)) from exc


def parse_windows(text: str) -> list[float]:
    try:
        windows = [float(w) for w in text.split(",") if w.strip()]
    except ValueError as exc:
        raise CommandError(f"--windows: {exc}") from exc
    if not windows or min(windows) <= 0:
        raise CommandError("--windows: positive lengths in seconds, e.g. 1.5,2,3")
    return windows


def parse_snrs(text: str) -> list[float | None]:
    snrs: list[float | None] = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        try:
            snrs.append(None if item == "clean" else float(item))
        except ValueError as exc:
            raise CommandError(f"--snrs: {item!r} is neither 'clean' nor a number") from exc
    if not snrs:
        raise CommandError("--snrs: e.g. clean,20,10,5")
    return snrs
