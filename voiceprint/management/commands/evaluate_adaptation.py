"""Safe adaptation on the household scenario: acceptance over time, with and without it."""

from __future__ import annotations

import dataclasses
import datetime
import os
import pickle
import platform
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

import engine
from engine.household import load_noises
from engine.scoring import load_scorer
from voiceprint.adaptation import DEFAULT_RULE
from voiceprint.adaptation_evaluation import (
    AdaptationResult,
    Checkpoint,
    Counts,
    StreamMaterial,
    embed_stream_material,
    simulate_adaptation,
)
from voiceprint.evaluation import conditions_from
from voiceprint.management.commands._household import (
    add_material_arguments,
    add_probe_arguments,
    material_from,
    parse_snrs,
    parse_windows,
)
from voiceprint.thresholds import default_similarity_threshold

#: The policies compared: adaptation off, the rule, and the rule without one of its parts
#: (the threshold raise, the capped share) or with the stricter gates first tried.
STRICT = dataclasses.replace(DEFAULT_RULE, min_probability=0.999, min_snr_db=20.0)
POLICIES = {
    "off": None,
    "rule": DEFAULT_RULE,
    "rule, threshold kept": dataclasses.replace(DEFAULT_RULE, threshold_raise=0.0),
    "rule, plain mean": dataclasses.replace(DEFAULT_RULE, max_share=1.0),
    "strict gates": STRICT,
    "strict gates, threshold kept": dataclasses.replace(STRICT, threshold_raise=0.0),
}
#: The options the embedded material depends on: a cache made with others is not reused.
CACHE_KEYS = (
    "folder",
    "engine",
    "part",
    "label_from",
    "enrollment_samples",
    "windows",
    "snrs",
    "stream_windows",
    "held_out_windows",
    "noise_folder",
    "seed",
)


class Command(BaseCommand):
    help = (
        "Households hear a stream of their members' and visitors' probes (clean and in "
        "babble) and decide each against their current voices; with adaptation on, a "
        "confident match of a good probe joins the matched voice (voiceprint.adaptation). "
        "Prints member acceptance and stranger false accepts over time, adaptation off "
        "and on, on held-out probes."
    )

    def add_arguments(self, parser):
        add_material_arguments(parser, default_part="report")
        add_probe_arguments(parser, windows=(2.0,), snrs=(None, 20.0, 10.0), per_speaker=False)
        parser.add_argument("--stream-windows", type=int, default=4, help="per speaker")
        parser.add_argument("--held-out-windows", type=int, default=3, help="per speaker")
        parser.add_argument("--household-size", type=int, default=4)
        parser.add_argument("--visitors", type=int, default=2, help="per household")
        parser.add_argument("--bins", type=int, default=4, help="time bins of the stream")
        parser.add_argument(
            "--threshold", type=float, help="every voice's threshold (default: the engine's)"
        )
        parser.add_argument(
            "--cache", type=Path, help="keep the embeddings in this file and reuse them"
        )
        parser.add_argument("--markdown", type=Path, help="also write the report to this file")

    def handle(self, *args, **options):
        if options["bins"] < 2:
            raise CommandError("--bins: at least 2 (a first and a second half)")
        material = self._material(options)
        scorer = load_scorer(material.embedded.engine)
        threshold = options["threshold"]
        if threshold is None:
            threshold = default_similarity_threshold(material.embedded.engine)
        results = [
            simulate_adaptation(
                material,
                name=name,
                rule=rule,
                scorer=scorer,
                threshold=threshold,
                household_size=options["household_size"],
                visitors=options["visitors"],
                bins=options["bins"],
                seed=options["seed"],
            )
            for name, rule in POLICIES.items()
        ]
        text = _markdown(options, material, results, threshold, calibrated=scorer is not None)
        self.stdout.write(text)
        if options["markdown"]:
            options["markdown"].write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {options['markdown']}")

    def _material(self, options) -> StreamMaterial:
        key = {name: str(options[name]) for name in CACHE_KEYS}
        cache = options["cache"]
        if cache is not None and cache.is_file():
            # Our own file (written below), never one from elsewhere: pickle is fine.
            with cache.open("rb") as file:
                stored = pickle.load(file)
            if stored.get("key") == key:
                return stored["material"]
        material = _embed(options)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with cache.open("wb") as file:
                pickle.dump({"key": key, "material": material}, file)
        return material


def _embed(options) -> StreamMaterial:
    conditions = conditions_from(parse_windows(options["windows"]), parse_snrs(options["snrs"]))
    material = material_from(options)
    noise_folder = options["noise_folder"]
    try:
        return embed_stream_material(
            material,
            conditions,
            engine_name=options["engine"],
            stream_windows=options["stream_windows"],
            held_out_windows=options["held_out_windows"],
            noises=load_noises(noise_folder) if noise_folder else (),
            seed=options["seed"],
            progress=not options["no_progress"],
        )
    except (engine.EngineError, ValueError) as exc:
        raise CommandError(str(exc)) from exc


# --- the report ---------------------------------------------------------------------------------


def _markdown(options, material, results, threshold, *, calibrated: bool) -> str:
    embedded = material.embedded
    bins = options["bins"]
    households = len(embedded.labels) // options["household_size"]
    noise = "a noise folder" if options["noise_folder"] else "babble of 3 other talkers"
    rule = "calibrated" if calibrated else "raw cosine (no calibration: nothing adapts)"
    reference = _false_accepts(results[0].held_out[0])
    lines = [
        "# Safe adaptation on the household scenario",
        "",
        "Written by `make bench-adaptation` (`manage.py evaluate_adaptation`); do not edit by "
        "hand. The simulation: `voiceprint/adaptation_evaluation.py`; the rule: "
        "`voiceprint/adaptation.py`.",
        "",
        f"Command: `{_command(options)}`. Machine: {platform.machine()}, {platform.system()}, "
        f"{os.cpu_count()} CPUs; {datetime.date.today().isoformat()}.",
        "",
        f"Data: `{options['folder']}` (part `{options['part']}`, speakers in neither the "
        f"cohort nor the calibration): {len(embedded.labels)} speakers, "
        f"{options['enrollment_samples']} enrollment samples each, {households} households of "
        f"{options['household_size']} with {options['visitors']} visitors each. Probes of "
        f"{options['windows']} s, {options['snrs']} (noise: {noise}): "
        f"{options['stream_windows']} stream windows per speaker and condition from the first "
        f"half of its probe part, {options['held_out_windows']} held-out windows from the "
        f"second half ({len(embedded.probes)} stream and {len(material.held_out)} held-out "
        f"probes). Engine `{embedded.engine}`, threshold {threshold:g}, {rule} decision rule.",
        "",
        "Each household hears its stream (its members' and visitors' stream probes, every "
        f"condition, in a seeded order) in {bins} time bins; each probe is decided against the "
        "voices of that moment and, with adaptation on, a qualifying match joins the matched "
        "voice. Before the stream (checkpoint 0) and after each bin, every held-out probe is "
        "decided against the household without adapting.",
        "",
        "## Policies",
        "",
        "| adaptation | min probability | min speech | min SNR (estimated) | max clipping "
        "| max samples | adaptation share of the centroid | threshold raise at full share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_policy_row(result) for result in results]
    lines += [
        "",
        "## Held-out probes over time",
        "",
        "Members: *accepted* (match, right voice), *uncertain*, *confused* (match, wrong "
        "voice). *Visitors* (the non-members heard in the stream) and *strangers* (everyone "
        "else): false accepts (match). *Balanced error*: of the rule's score (AS-norm z) at "
        "the point where members' rejections equal non-members' acceptances, whatever the "
        "threshold. *At equal false accepts*: members accepted at the score that non-members "
        f"exceed as often as they were accepted before the stream ({reference:.2%}).",
        "",
        "| adaptation | checkpoint | members accepted | uncertain | confused "
        "| visitors accepted | strangers accepted | balanced error | at equal false accepts |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        lines += [_held_out_row(result, i, reference) for i in range(bins + 1)]
    conditions = _condition_names(material)
    lines += [
        "",
        "Per condition, before the stream → after it: members accepted; strangers accepted.",
        "",
        "| adaptation | " + " | ".join(conditions) + " |",
        "|---|" + "---|" * len(conditions),
    ]
    lines += [_condition_row(result, conditions, bins) for result in results]
    lines += [
        "",
        "## The stream itself",
        "",
        "The stream's own decisions, its first half against its second; and the adaptation "
        "samples it added (to the right voice, to another member's voice, a visitor's probe "
        "to a member's voice) and replaced at the cap.",
        "",
        "| adaptation | members accepted (1st / 2nd half) | confused | visitors accepted "
        "| added: right voice | wrong member | visitor | replaced |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_stream_row(result, bins) for result in results]
    lines += ["", "## Verdict", "", *_verdict(results, bins, reference), ""]
    return "\n".join(lines)


def _command(options) -> str:
    parts = [
        "manage.py evaluate_adaptation",
        str(options["folder"]),
        f"--part {options['part']}",
        f"--windows {options['windows']} --snrs {options['snrs']}",
        f"--stream-windows {options['stream_windows']}",
        f"--held-out-windows {options['held_out_windows']}",
        f"--household-size {options['household_size']} --visitors {options['visitors']}",
        f"--bins {options['bins']} --seed {options['seed']}",
    ]
    if options["engine"]:
        parts.insert(2, f"--engine {options['engine']}")
    return "VOICEPRINT_TORCH_THREADS=1 python " + " ".join(parts)


def _non_members(checkpoint: Checkpoint) -> Counts:
    total = checkpoint.total("strangers")
    total += checkpoint.total("visitors")
    return total


def _false_accepts(checkpoint: Checkpoint) -> float:
    others = _non_members(checkpoint)
    return others.rate(others.matched)


def _policy_row(result: AdaptationResult) -> str:
    rule = result.rule
    if rule is None:
        return f"| {result.name} | - | - | - | - | - | - | - |"
    share = "plain mean" if rule.max_share >= 1.0 else f"at most {rule.max_share:.0%}"
    return (
        f"| {result.name} | {rule.min_probability:g} | {rule.min_speech_seconds:g} s "
        f"| {rule.min_snr_db:g} dB | {rule.max_clipping:g} | {rule.max_samples} | {share} "
        f"| {rule.threshold_raise:g} |"
    )


def _held_out_row(result: AdaptationResult, checkpoint: int, reference: float) -> str:
    point = result.held_out[checkpoint]
    members, visitors, strangers = (point.total(g) for g in ("members", "visitors", "strangers"))
    balanced = point.balanced_error
    return (
        f"| {result.name} | {checkpoint} | {members.rate(members.accepted):.1%} "
        f"| {members.rate(members.uncertain):.1%} | {members.rate(members.confused):.2%} "
        f"| {visitors.rate(visitors.matched):.2%} | {strangers.rate(strangers.matched):.2%} "
        f"| {'-' if balanced is None else f'{balanced:.2%}'} "
        f"| {point.accepted_at(reference):.1%} |"
    )


def _condition_names(material: StreamMaterial) -> list[str]:
    return list(dict.fromkeys(p.condition.name for p in material.held_out))


def _condition_row(result: AdaptationResult, conditions: list[str], bins: int) -> str:
    cells = []
    for condition in conditions:
        before, after = (result.held_out[i].total("members", condition) for i in (0, bins))
        others = [result.held_out[i].total("strangers", condition) for i in (0, bins)]
        cells.append(
            f"{before.rate(before.accepted):.1%} → {after.rate(after.accepted):.1%}; "
            f"{others[0].rate(others[0].matched):.2%} → {others[1].rate(others[1].matched):.2%}"
        )
    return f"| {result.name} | " + " | ".join(cells) + " |"


def _stream_row(result: AdaptationResult, bins: int) -> str:
    halves = (range(bins // 2), range(bins // 2, bins))
    members = [result.stream_total("members", half) for half in halves]
    visitors = [result.stream_total("visitors", half) for half in halves]
    added = result.added
    return (
        f"| {result.name} "
        f"| {' / '.join(f'{m.rate(m.accepted):.1%}' for m in members)} "
        f"| {' / '.join(f'{m.rate(m.confused):.2%}' for m in members)} "
        f"| {' / '.join(f'{v.rate(v.matched):.2%}' for v in visitors)} "
        f"| {added['right voice']} | {added['wrong member']} | {added['visitor']} "
        f"| {result.replaced} |"
    )


def _verdict(results: list[AdaptationResult], bins: int, reference: float) -> list[str]:
    """One line per adapting policy, from its numbers: what rose, what did too."""
    lines = []
    for result in results:
        if result.rule is None:
            continue
        start, end = result.held_out[0], result.held_out[bins]
        members = [p.total("members") for p in (start, end)]
        accepted = [m.rate(m.accepted) for m in members]
        others = [_non_members(p) for p in (start, end)]
        at_equal = [p.accepted_at(reference) for p in (start, end)]
        balanced = [p.balanced_error or 0.0 for p in (start, end)]
        raised = others[1].matched > others[0].matched
        lines.append(
            f"* **{result.name}**: members accepted {accepted[0]:.1%} → {accepted[1]:.1%}; "
            f"non-members accepted {others[0].rate(others[0].matched):.2%} → "
            f"{others[1].rate(others[1].matched):.2%} ({others[0].matched} → "
            f"{others[1].matched} of {others[1].probes}: {'raised' if raised else 'not raised'}); "
            f"at equal false accepts members {at_equal[0]:.1%} → {at_equal[1]:.1%}, balanced "
            f"error {balanced[0]:.2%} → {balanced[1]:.2%}."
        )
    return lines
