"""evaluate_household's enrollment studies (--enrollment-seconds, --enrollment-gates): the
runs of voiceprint.enrollment_evaluation and their Markdown.

The leading underscore keeps Django from listing this module as a command.
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from django.core.management.base import CommandError

import engine
from engine.household import Condition, load_noises
from engine.scoring import load_scorer
from voiceprint.enrollment_evaluation import (
    GOOD_ONLY,
    GatePlan,
    GateStudy,
    HouseholdSetup,
    Study,
    fit_log,
    fit_saturating,
    gate_study,
    length_study,
)
from voiceprint.evaluation import ConditionReport, ProbeSetup
from voiceprint.management.commands._household import material_from
from voiceprint.thresholds import default_similarity_threshold

#: The length rule: enroll until one more second of speech would add less than this much
#: acceptance (voiceprint.enrollment_evaluation.SaturatingFit).
MARGINAL_GAIN = 0.01
TARGET_ACCEPTANCE = 0.90
#: The target serves probes from clean down to this SNR (the household's usual 10 dB babble);
#: noisier ones keep gaining too slowly to set it.
TARGET_MIN_SNR_DB = 10.0
#: Candidate limits on an enrollment sample's estimated SNR (engine.quality), dB.
SNR_LIMITS = (10.0, 12.5, 15.0, 17.5, 20.0)


def parse_seconds(text: str) -> list[float]:
    try:
        seconds = sorted({float(s) for s in text.split(",") if s.strip()})
    except ValueError as exc:
        raise CommandError(f"--enrollment-seconds: {exc}") from exc
    if not seconds or seconds[0] <= 0:
        raise CommandError("--enrollment-seconds: positive seconds of speech, e.g. 1,2,3,4")
    return seconds


def enrollment_markdown(options: dict, conditions: Sequence[Condition]) -> str:
    """The studies the options ask for, as one Markdown document."""
    seconds = parse_seconds(options["enrollment_seconds"]) if options["enrollment_seconds"] else []
    material = material_from(options)
    setup = _setup(options, conditions)
    sections = [_header(options, setup)]
    try:
        if seconds:
            study = length_study(
                material,
                setup,
                seconds=seconds,
                samples=options["enrollment_samples"],
                min_sample_seconds=options["enrollment_sample_seconds"],
            )
            sections.append(_lengths_markdown(study, seconds, options))
        if options["enrollment_gates"]:
            sections.append(_gates_markdown(gate_study(material, setup, plan=GatePlan())))
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    return "\n".join(sections)


def _setup(options: dict, conditions: Sequence[Condition]) -> HouseholdSetup:
    try:
        name = options["engine"] or engine.active_engine().name
        engine.get_engine(name)  # an unknown or unavailable engine fails here, not mid-run
    except engine.EngineError as exc:
        raise CommandError(str(exc)) from exc
    threshold = options["threshold"]
    noise_folder = options["noise_folder"]
    probes = ProbeSetup(
        conditions,
        windows_per_speaker=options["windows_per_speaker"],
        noises=load_noises(noise_folder) if noise_folder else (),
        seed=options["seed"],
    )
    return HouseholdSetup(
        probes=probes,
        scorer=None if options["raw"] else load_scorer(name),
        threshold=default_similarity_threshold(name) if threshold is None else threshold,
        household_size=options["household_size"],
        engine_name=name,
        progress=not options["no_progress"],
    )


def _header(options: dict, setup: HouseholdSetup) -> str:
    noise = "a noise folder" if options["noise_folder"] else "babble of 3 other talkers"
    rule = "raw cosine" if setup.scorer is None else "calibrated (AS-norm, the service's)"
    return "\n".join(
        [
            "# Enrollment: how much speech, and which samples to refuse",
            "",
            "Written by `make bench-enrollment` (`manage.py evaluate_household "
            "--enrollment-seconds ... --enrollment-gates`); do not edit by hand.",
            "",
            "The household evaluation of docs/ACCURACY.md (households of "
            f"{setup.household_size}, every probe of a non-member a stranger trial, the "
            "service's decision rule), varying only the enrollment: the probes are the same "
            f"for every row ({setup.probes.windows_per_speaker} windows per speaker and condition "
            f"from the second half of its recording, noise: {noise}). Seconds of speech are "
            "the engine's count after silence removal. "
            f"Data: `{options['folder']}` (part `{options['part']}`); engine "
            f"`{setup.engine_name}`, rule {rule}, threshold {setup.threshold:g}. "
            f"Machine: {platform.machine()}, {platform.system()}, {os.cpu_count()} CPUs; "
            f"{datetime.date.today().isoformat()}.",
            "",
        ]
    )


def _outcome_columns(study: Study) -> tuple[str, str]:
    names = [r.condition.name for r in study.variants[0].reports]
    head = "".join(f" {n}: accepted | {n}: uncertain | {n}: strangers accepted |" for n in names)
    return head, "|---" * 3 * len(names)


def _outcomes(reports: list[ConditionReport], base: list[ConditionReport] | None = None) -> str:
    """accepted, uncertain and strangers accepted per condition; against ``base`` in
    brackets (points), when given."""
    cells = []
    for i, r in enumerate(reports):
        accepted, strangers = r.rate(r.accepted), r.rate(r.stranger_accepted, True)
        accepted_cell, strangers_cell = f"{accepted:.1%}", f"{strangers:.2%}"
        if base is not None:
            b = base[i]
            accepted_cell += f" ({100 * (accepted - b.rate(b.accepted)):+.1f})"
            strangers_cell += f" ({100 * (strangers - b.rate(b.stranger_accepted, True)):+.2f})"
        cells += [accepted_cell, f"{r.rate(r.uncertain):.1%}", strangers_cell]
    return " | ".join(cells)


def _lengths_markdown(study: Study, seconds: list[float], options: dict) -> str:
    head, rule = _outcome_columns(study)
    lines = [
        "## How much speech to enroll",
        "",
        f"Each voice enrolled from the first N seconds of speech of the first half of its "
        f"recording, cut into up to {options['enrollment_samples']} samples of at least "
        f"{options['enrollment_sample_seconds']:g} s (one sample below that). "
        f"{study.speakers} speakers; "
        f"{study.dropped} left out of every length (less than {max(seconds):g} s of speech "
        "in their enrollment half, or a sample refused).",
        "",
        f"| enrollment | speech (measured) | samples |{head}",
        f"|---|---|---{rule}|",
    ]
    for v in study.variants:
        lines.append(
            f"| {v.name} | {v.speech_seconds:.2f} s | {v.samples:.1f} | {_outcomes(v.reports)} |"
        )
    lines += ["", *_gains_markdown(study), *_fit_markdown(study)]
    return "\n".join(lines) + "\n"


def _gains_markdown(study: Study) -> list[str]:
    """Measured acceptance gained per extra second of speech, from one length to the next."""
    names = [r.condition.name for r in study.variants[0].reports]
    lines = [
        "Measured gain in acceptance per extra second of speech, from one length to the next "
        "(points per second):",
        "",
        "| from | to |" + "".join(f" {n} |" for n in names),
        "|---|---" + "|---" * len(names) + "|",
    ]
    for before, after in pairwise(study.variants):
        seconds = after.speech_seconds - before.speech_seconds
        gains = [
            100 * (a.rate(a.accepted) - b.rate(b.accepted)) / seconds
            for a, b in zip(after.reports, before.reports, strict=True)
        ]
        lines.append(f"| {before.name} | {after.name} |" + "".join(f" {g:+.1f} |" for g in gains))
    return [*lines, ""]


def _fit_markdown(study: Study) -> list[str]:
    measured = [v.speech_seconds for v in study.variants]
    top = max(measured)
    lines = [
        "Two fits per condition of acceptance against seconds of speech s, over the measured "
        "rows: a + b ln(s) (no plateau) and plateau - d exp(-s / tau) (returns that run "
        f"out). *1 point/s*: the speech beyond which one more second adds less than "
        f"{100 * MARGINAL_GAIN:g} point of acceptance; *{TARGET_ACCEPTANCE:.0%}*: where the "
        f"log fit reaches it. Beyond {top:.1f} s (the most measured) a value is an "
        "extrapolation and marked so. RMS: the fit's error over the rows, in points.",
        "",
        "| condition | log: a, b | log: 1 point/s from | log: reaches "
        f"{TARGET_ACCEPTANCE:.0%} at | log: RMS | saturating: plateau, tau | saturating: "
        "1 point/s from | saturating: RMS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    targets = []
    for i, report in enumerate(study.variants[0].reports):
        rates = [v.reports[i].rate(v.reports[i].accepted) for v in study.variants]
        log, saturating = fit_log(measured, rates), fit_saturating(measured, rates)
        enough = saturating.gain_below(MARGINAL_GAIN)
        if report.condition.snr_db is None or report.condition.snr_db >= TARGET_MIN_SNR_DB:
            targets.append(enough)
        lines.append(
            f"| {report.condition.name} | {log.a:.3f}, {log.b:.3f} "
            f"| {_seconds(log.gain_below(MARGINAL_GAIN), top)} "
            f"| {_seconds(log.reaching(TARGET_ACCEPTANCE), top)} | {_rms(log, measured, rates)} "
            f"| {saturating.plateau:.1%}, {saturating.tau:.2f} s | {_seconds(enough, top)} "
            f"| {_rms(saturating, measured, rates)} |"
        )
    lines.append("")
    if targets:
        lines += [
            "Rule for the enrollment target: where one more second of speech stops adding "
            f"{100 * MARGINAL_GAIN:g} point of acceptance (saturating fit), the latest of "
            f"the probe conditions from clean down to {TARGET_MIN_SNR_DB:g} dB babble, to the "
            f"nearest second: **{round(max(targets))} s**"
            + (" (extrapolated)." if max(targets) > top else "."),
            "",
        ]
    return lines


def _rms(fit, seconds: list[float], rates: list[float]) -> str:
    errors = [fit.rate(s) - r for s, r in zip(seconds, rates, strict=True)]
    return f"{100 * float(np.sqrt(np.mean(np.square(errors)))):.1f}"


def _seconds(value: float | None, top: float) -> str:
    if value is None:
        return "beyond 1 h"
    return f"{value:.1f} s" + (" (extrapolated)" if value > top else "")


def _gates_markdown(gates: GateStudy) -> str:
    study = gates.study
    head, rule = _outcome_columns(study)
    base = study.variants[0]
    lines = [
        "## Which enrollment samples to refuse",
        "",
        f"Each voice enrolled from two good samples (1.5 s of speech each, clean), then from "
        "the same two plus one added sample, taken from the speech that follows them: clean "
        "of several lengths, or 2 s mixed with the babble of 3 other talkers at an SNR (power "
        "of the sample over the babble's), or amplified and hard-clipped until a share of its "
        "samples reach 99% of full scale. The added sample's speech, SNR and clipping are as "
        "engine.quality measures them (SNR: median, others: means over speakers); "
        "*refused today*: share with less than the service's 1 s of speech (embedded here "
        "all the same). *Agreement*: cosine between the added sample and the centroid of the "
        "two good ones (median, and share reaching the threshold); a clean sample of another "
        f"speaker reaches {gates.impostor_p99:.3f} at the 99th percentile. In brackets: "
        f"points against the good samples only. {study.speakers} speakers; {study.dropped} "
        "left out (too little speech for two good samples and the longest added one).",
        "",
        "| enrollment | speech | est. SNR | clipping | refused today | agreement "
        f"| agreement ≥ threshold |{head}",
        f"|---|---|---|---|---|---|---{rule}|",
        f"| {GOOD_ONLY} | {base.speech_seconds:.2f} s | | | | | | {_outcomes(base.reports)} |",
    ]
    for v in study.variants[1:]:
        a = gates.added[v.name]
        lines.append(
            f"| {v.name} | {a.speech_seconds:.2f} s | {np.median(a.snrs_db):.1f} dB "
            f"| {a.clipping:.2%} "
            f"| {a.refused:.0%} | {a.agreement:.3f} | {a.agreeing:.0%} "
            f"| {_outcomes(v.reports, base.reports)} |"
        )
    return "\n".join([*lines, "", *_snr_limits_markdown(gates)]) + "\n"


def _snr_limits_markdown(gates: GateStudy) -> list[str]:
    """How many added samples an estimated-SNR limit would refuse, per variant."""
    head = " | ".join(f"< {limit:g} dB" for limit in SNR_LIMITS)
    lines = [
        "Share of the added samples that a limit on the estimated SNR would refuse:",
        "",
        f"| added sample | {head} |",
        "|---" * (len(SNR_LIMITS) + 1) + "|",
    ]
    for name, added in gates.added.items():
        if "clipped" in name:
            continue
        cells = " | ".join(f"{np.mean(added.snrs_db < limit):.0%}" for limit in SNR_LIMITS)
        lines.append(f"| {name.removeprefix('+ ')} | {cells} |")
    return [*lines, ""]
