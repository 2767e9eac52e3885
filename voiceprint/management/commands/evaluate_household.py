"""The household evaluation: the service's decision rule on device-like probes."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

from django.core.management.base import BaseCommand

from engine.evaluation import ge2e_reference_comparison
from engine.scoring import load_scorer
from voiceprint.enrollment_evaluation import MIN_SAMPLE_SECONDS
from voiceprint.evaluation import (
    ConditionReport,
    conditions_from,
    household_report,
    pooled_eers,
)
from voiceprint.management.commands._enrollment import enrollment_markdown
from voiceprint.management.commands._household import (
    add_material_arguments,
    add_probe_arguments,
    embedded_from,
    parse_snrs,
    parse_windows,
)
from voiceprint.thresholds import default_similarity_threshold


class Command(BaseCommand):
    help = (
        "Households of enrolled voices (K clean samples each) hear short probes of their "
        "members, clean or mixed with babble of other talkers (or a noise folder) at several "
        "SNRs, and probes of strangers never enrolled. Prints, per condition, what the "
        "service's decision rule answers: accepted / uncertain / rejected / confused for the "
        "household, false accepts for strangers, the EER and the balanced threshold."
    )

    def add_arguments(self, parser):
        add_material_arguments(parser, default_part="all")
        add_probe_arguments(parser)
        parser.add_argument("--household-size", type=int, default=4)
        parser.add_argument(
            "--threshold", type=float, help="every voice's threshold (default: the engine's)"
        )
        parser.add_argument(
            "--raw", action="store_true", help="the raw cosine rule, without the calibration"
        )
        parser.add_argument(
            "--reference",
            action="store_true",
            help="ge2e: also compare the pipeline with resemblyzer's own on clean, long speech",
        )
        parser.add_argument("--markdown", type=Path, help="also write the report to this file")
        parser.add_argument(
            "--enrollment-seconds",
            help="instead of the household report: acceptance against the seconds of speech "
            "each voice is enrolled with, e.g. 1,2,3,4,5 (speakers with less speech than the "
            "largest are left out of every length)",
        )
        parser.add_argument(
            "--enrollment-sample-seconds",
            type=float,
            default=MIN_SAMPLE_SECONDS,
            help="with --enrollment-seconds: the shortest sample a length is cut into "
            f"(default {MIN_SAMPLE_SECONDS:g})",
        )
        parser.add_argument(
            "--enrollment-gates",
            action="store_true",
            help="instead of the household report: what one short, noisy or clipped sample "
            "added to a good enrollment does",
        )

    def handle(self, *args, **options):
        conditions = conditions_from(parse_windows(options["windows"]), parse_snrs(options["snrs"]))
        if options["enrollment_seconds"] or options["enrollment_gates"]:
            self._write(enrollment_markdown(options, conditions), options)
            return
        embedded = embedded_from(options, conditions)
        scorer = None if options["raw"] else load_scorer(embedded.engine)
        threshold = options["threshold"]
        if threshold is None:
            threshold = default_similarity_threshold(embedded.engine)
        rows = {
            "raw cosine": household_report(
                embedded,
                conditions,
                scorer=None,
                threshold=threshold,
                household_size=options["household_size"],
            )
        }
        if scorer is not None:
            rows["calibrated"] = household_report(
                embedded,
                conditions,
                scorer=scorer,
                threshold=threshold,
                household_size=options["household_size"],
            )
        text = _markdown(options, embedded, rows, pooled_eers(embedded, scorer), threshold)
        if options["reference"]:
            text += _reference_markdown(options)
        self._write(text, options)

    def _write(self, text: str, options: dict) -> None:
        self.stdout.write(text)
        if options["markdown"]:
            options["markdown"].write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {options['markdown']}")


def _markdown(options, embedded, rows, pooled, threshold) -> str:
    speakers = len(embedded.labels)
    noise = "a noise folder" if options["noise_folder"] else "babble of 3 other talkers"
    today = datetime.date.today().isoformat()
    lines = [
        "# Accuracy of decisions on device-like audio",
        "",
        "Written by `make bench-accuracy` (`manage.py evaluate_household`); do not edit by hand.",
        "",
        "## Household evaluation",
        "",
        "Each speaker's recording is split in time: the first half gives its 3 enrollment "
        "samples, the second half its probe windows, mixed with the babble of other talkers "
        "at the given SNR (power of the window over power of the babble). A household's "
        "member probe is *accepted* (match, right voice), *uncertain*, *rejected* or "
        "*confused* (match, wrong voice); every probe of a non-member is a stranger "
        "identification against that household. *Refused*: probes with less than 1 s of "
        "speech (40003 in the service). EER: pairwise, of the score the rule ranks by "
        "(cosine, or AS-norm z). Balanced threshold: the voice `threshold` at which member "
        "rejections equal stranger acceptances (for the calibrated rule, the cosine whose "
        "mapped z is that point). The speakers reported here are in neither the cohort nor "
        "the calibration (`engine.household.speaker_part`).",
        "",
        f"Data: `{options['folder']}` (part `{options['part']}`): {speakers} speakers, "
        f"{options['enrollment_samples']} enrollment samples each, households of "
        f"{options['household_size']}, {options['windows_per_speaker']} probe windows per "
        f"speaker and condition (noise: {noise}). "
        f"Engine `{embedded.engine}`, threshold {threshold:g}. "
        f"Machine: {platform.machine()}, {platform.system()}, {os.cpu_count()} CPUs; {today}.",
        "",
        "| rule | probe | household accepted | uncertain | rejected | confused "
        "| refused (<1 s speech) | strangers accepted | strangers uncertain | EER "
        "| balanced threshold (error) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rule, reports in rows.items():
        lines += [_row(rule, r) for r in reports]
    lines += [
        "",
        "Pooled EER over all conditions (every probe against every voice): "
        + ", ".join(f"{name} {value:.2%}" for name, value in pooled.items()),
        "",
        "",
    ]
    return "\n".join(lines)


def _row(rule: str, r: ConditionReport) -> str:
    balanced = (
        f"{r.balanced_threshold:.3f} ({r.balanced_error:.1%})"
        if r.balanced_threshold is not None
        else "-"
    )
    eer = f"{r.eer:.2%}" if r.eer is not None else "-"
    return (
        f"| {rule} | {r.condition.name} | {r.rate(r.accepted):.1%} | {r.rate(r.uncertain):.1%} "
        f"| {r.rate(r.rejected):.1%} | {r.rate(r.confused):.1%} | {r.refused} "
        f"| {r.rate(r.stranger_accepted, True):.2%} | {r.rate(r.stranger_uncertain, True):.1%} "
        f"| {eer} | {balanced} |"
    )


def _reference_markdown(options) -> str:
    comparison = ge2e_reference_comparison(options["folder"], progress=not options["no_progress"])
    return "\n".join(
        [
            "## Clean, long speech: the pipeline against the raw model",
            "",
            f"Every recording of at least 12 s in `{options['folder']}` (all parts: "
            f"{comparison.speakers} speakers) cut into 3 pieces of 4 s or more, silences kept; "
            f"every pair of pieces a trial ({comparison.target_trials} same-speaker, "
            f"{comparison.nontarget_trials} different).",
            "",
            "| pipeline | EER |",
            "|---|---|",
            f"| ours (decode, webrtcvad, levelled to -25 dBFS, GE2E) | {comparison.ours:.2%} |",
            f"| resemblyzer (preprocess_wav + embed_utterance) | {comparison.reference:.2%} |",
            "",
        ]
    )
