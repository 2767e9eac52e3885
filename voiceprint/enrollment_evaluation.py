"""Enrollment studies on the household material: how much speech a voice needs, and which
enrollment samples hurt it rather than help.

engine.household makes the audio, voiceprint.evaluation the households and the decision
rule's outcomes; this module varies only the enrollment, against one set of probes:

* **lengths** (:func:`length_study`): each speaker enrolled from the first N seconds of
  speech of its enrollment part, cut by the engine's own count of speech into the usual
  number of samples (fewer where a sample would hold less than ``min_sample_seconds``), for
  several N. A speaker whose enrollment part holds less than the largest N (or whose sample
  the engine refuses) is left out of every length, so that rows differ only in N;
* **gates** (:func:`gate_study`): each speaker enrolled from two good samples, and from the
  same two plus one **added** sample: clean, shorter, mixed with babble at an SNR, or
  amplified into clipping. What the added sample does to acceptance and to strangers, and
  its **agreement** (the cosine between its embedding and the good samples' centroid) show
  the quality below which enrollment should refuse a sample.

Embeddings are computed once per run: the good samples are shared by every gate variant,
the probes by every length and variant.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

import engine
from engine.household import (
    Material,
    SpeakerAudio,
    babble,
    clip_to_share,
    mix_at_snr,
    speech_pieces,
    speech_prefix,
)
from engine.registry import current_settings
from engine.scoring import Scorer
from engine.settings import EngineSettings
from voiceprint.evaluation import (
    ConditionReport,
    EmbeddedMaterial,
    ProbeSetup,
    embed_probes,
    enrollment_centroid,
    household_report,
    with_enrollment,
)

#: Added samples are embedded with this minimum of speech (the service's is 1 s), so that
#: the study sees what a shorter sample would do if it were accepted.
STUDY_MIN_SPEECH_SECONDS = 0.3
#: The length study's shortest sample (but for a length shorter than it: one sample). The
#: same first 3 s of speech of the report speakers, enrolled as 3 samples of 1 s
#: (``--enrollment-sample-seconds 1``), was accepted 73.7% / 33.3% of the time (clean / 10 dB
#: 2 s probes), as 2 samples of 1.5 s (the gate study's good samples) 87.2% / 58.9%: lengths
#: cut into 1 s samples would measure the cut, not the length.
MIN_SAMPLE_SECONDS = 1.5
#: Babble mixed into an enrollment sample: this many other talkers of the material.
BABBLE_TALKERS = 3


@dataclass(frozen=True)
class HouseholdSetup:
    """How voices are probed and decided: shared by every enrollment variant of a study."""

    probes: ProbeSetup
    scorer: Scorer | None
    threshold: float
    household_size: int = 4
    engine_name: str | None = None
    progress: bool = False


@dataclass
class Variant:
    """One way of enrolling every speaker, and what the decision rule made of it."""

    name: str
    #: Per condition, in the setup's order.
    reports: list[ConditionReport]
    #: Mean total seconds of speech of a voice's samples (the engine's count).
    speech_seconds: float
    samples: float


@dataclass
class Study:
    engine: str
    speakers: int
    #: Speakers of the material left out: too little speech, or a sample refused.
    dropped: int
    variants: list[Variant]


# --- lengths ----------------------------------------------------------------------------------


def length_study(
    material: Material,
    setup: HouseholdSetup,
    *,
    seconds: Sequence[float],
    samples: int = 3,
    min_sample_seconds: float = MIN_SAMPLE_SECONDS,
) -> Study:
    """Acceptance against the seconds of speech a voice is enrolled with (module docstring)."""
    lengths = sorted(seconds)

    def variants(speaker: SpeakerAudio) -> dict[str, list[np.ndarray]] | None:
        part = np.concatenate(speaker.enrollment)
        enrollments = {}
        for length in lengths:
            count = max(1, min(samples, math.floor(length / min_sample_seconds)))
            pieces = speech_pieces(part, [length / count] * count)
            if pieces is None:
                return None
            enrollments[f"{length:g} s"] = pieces[:-1]
        return enrollments

    return _study(material, setup, variants, settings=None)[0]


@dataclass(frozen=True)
class LogFit:
    """rate = a + b ln(seconds): diminishing returns of more enrollment speech."""

    a: float
    b: float

    def rate(self, seconds: float) -> float:
        return self.a + self.b * math.log(seconds)

    def gain_below(self, per_second: float) -> float:
        """The seconds beyond which one more second adds less than ``per_second``."""
        return self.b / per_second if self.b > 0 else 0.0

    def reaching(self, rate: float) -> float | None:
        """The seconds at which the fitted rate reaches ``rate`` (None: not within an hour)."""
        if self.b <= 0 or (rate - self.a) / self.b > math.log(3600.0):
            return None
        return math.exp((rate - self.a) / self.b)


def fit_log(seconds: Sequence[float], rates: Sequence[float]) -> LogFit:
    b, a = np.polyfit(np.log(np.asarray(seconds, dtype=float)), np.asarray(rates, dtype=float), 1)
    return LogFit(a=float(a), b=float(b))


@dataclass(frozen=True)
class SaturatingFit:
    """rate = plateau - d exp(-seconds / tau): returns that run out. Acceptance of clean
    probes levels off near its plateau within the measured lengths, which a logarithm (no
    plateau) cannot follow; the seconds at which one more second stops paying come from this."""

    plateau: float
    d: float
    tau: float

    def rate(self, seconds: float) -> float:
        return self.plateau - self.d * math.exp(-seconds / self.tau)

    def gain_below(self, per_second: float) -> float:
        """The seconds beyond which one more second adds less than ``per_second``."""
        ratio = self.d / (per_second * self.tau)
        return self.tau * math.log(ratio) if ratio > 1 else 0.0


#: The time constants tried by :func:`fit_saturating` (seconds of speech).
_TAUS = np.geomspace(0.2, 20.0, 400)


def fit_saturating(seconds: Sequence[float], rates: Sequence[float]) -> SaturatingFit:
    """Least squares: for each time constant the plateau and d are linear, so a scan over
    the time constant finds the best fit without an optimiser."""
    x, y = np.asarray(seconds, dtype=float), np.asarray(rates, dtype=float)
    best: tuple[float, SaturatingFit] | None = None
    for tau in _TAUS:
        design = np.column_stack([np.ones_like(x), -np.exp(-x / tau)])
        (plateau, d), *_ = np.linalg.lstsq(design, y, rcond=None)
        error = float(np.sum((design @ [plateau, d] - y) ** 2))
        if best is None or error < best[0]:
            best = (error, SaturatingFit(float(plateau), float(d), float(tau)))
    return best[1]


# --- gates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatePlan:
    """The gate study's enrollments (seconds are the engine's count of speech)."""

    good_seconds: tuple[float, ...] = (1.5, 1.5)
    #: The added sample spoilt by babble or clipping; clean, it is the reference.
    added_seconds: float = 2.0
    short_seconds: tuple[float, ...] = (0.5, 1.0, 1.5)
    snrs_db: tuple[float, ...] = (20.0, 10.0, 5.0, 0.0, -5.0)
    clipping: tuple[float, ...] = (0.001, 0.01, 0.03, 0.1, 0.3)


@dataclass
class AddedSample:
    """The added sample of a gate variant, over the speakers: as engine.quality measures it,
    and how it agrees with the speaker's good samples."""

    speech_seconds: float
    #: Estimated SNR of every speaker's added sample (engine.quality), in speaker order.
    snrs_db: np.ndarray
    clipping: float
    #: Share the service would refuse today (less speech than its minimum).
    refused: float
    #: Cosine between the added sample and the good samples' centroid: median, and the share
    #: reaching the voice threshold.
    agreement: float
    agreeing: float


@dataclass
class GateStudy:
    study: Study
    #: Per variant name (but the first, the good samples alone).
    added: dict[str, AddedSample]
    #: Cosines of clean added samples to the other speakers' good centroids: 99th percentile.
    impostor_p99: float


GOOD_ONLY = "good samples only"


def gate_study(
    material: Material, setup: HouseholdSetup, *, plan: GatePlan = GatePlan()
) -> GateStudy:
    """What one spoilt sample added to a good enrollment does (module docstring)."""
    rng = np.random.default_rng(setup.probes.seed)
    parts = [np.concatenate(s.enrollment) for s in material.speakers]
    index_of = {s.label: i for i, s in enumerate(material.speakers)}
    spoil = _spoilers(plan, parts, rng)

    def variants(speaker: SpeakerAudio) -> dict[str, list[np.ndarray]] | None:
        pieces = speech_pieces(parts[index_of[speaker.label]], plan.good_seconds)
        longest = max(plan.added_seconds, *plan.short_seconds)
        if pieces is None or speech_prefix(pieces[-1], longest) is None:
            return None
        good, rest = pieces[:-1], pieces[-1]
        enrollments = {GOOD_ONLY: good}
        for name, make in spoil.items():
            enrollments[name] = [*good, make(rest, index_of[speaker.label])]
        return enrollments

    settings = dataclasses.replace(current_settings(), min_speech_seconds=STUDY_MIN_SPEECH_SECONDS)
    study, embedded = _study(material, setup, variants, settings=settings)
    good = len(plan.good_seconds)
    centroids = np.stack(
        [enrollment_centroid([r.vector for r in s[:good]]) for s in embedded[GOOD_ONLY]]
    )
    added = {
        name: _added(results, centroids, good, setup.threshold)
        for name, results in embedded.items()
        if name != GOOD_ONLY
    }
    clean = np.stack([s[good].vector for s in embedded[_clean_name(plan)]])
    cosines = clean @ centroids.T
    others = cosines[~np.eye(len(cosines), dtype=bool)]
    return GateStudy(study=study, added=added, impostor_p99=float(np.percentile(others, 99)))


def _spoilers(
    plan: GatePlan, parts: Sequence[np.ndarray], rng: np.random.Generator
) -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """Per variant name: (the rest of a speaker's enrollment part, its index) -> the added
    sample."""

    def added(rest: np.ndarray) -> np.ndarray:
        return speech_prefix(rest, plan.added_seconds)

    def noisy(snr: float) -> Callable[[np.ndarray, int], np.ndarray]:
        def make(rest: np.ndarray, index: int) -> np.ndarray:
            sample = added(rest)
            others = [i for i in range(len(parts)) if i != index]
            talkers = rng.choice(others, size=min(BABBLE_TALKERS, len(others)), replace=False)
            noise = babble([parts[i] for i in talkers], len(sample), rng)
            return mix_at_snr(sample, noise, snr)

        return make

    spoilers: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {}
    for seconds in sorted({*plan.short_seconds, plan.added_seconds}):
        spoilers[_length_name(seconds)] = lambda rest, _, s=seconds: speech_prefix(rest, s)
    for snr in plan.snrs_db:
        spoilers[f"+ {plan.added_seconds:g} s in babble at {snr:g} dB"] = noisy(snr)
    for share in plan.clipping:
        spoilers[f"+ {plan.added_seconds:g} s, {share:.1%} clipped"] = lambda rest, _, p=share: (
            clip_to_share(added(rest), p)
        )
    return spoilers


def _length_name(seconds: float) -> str:
    return f"+ {seconds:g} s clean"


def _clean_name(plan: GatePlan) -> str:
    return _length_name(plan.added_seconds)


def _added(
    speakers: Sequence[Sequence[engine.EmbeddingResult]],
    centroids: np.ndarray,
    good: int,
    threshold: float,
) -> AddedSample:
    results = [s[good] for s in speakers]
    agreement = np.array([float(r.vector @ c) for r, c in zip(results, centroids, strict=True)])
    minimum = current_settings().min_speech_seconds
    return AddedSample(
        speech_seconds=float(np.mean([r.quality.speech_seconds for r in results])),
        snrs_db=np.array([r.quality.snr_db for r in results]),
        clipping=float(np.mean([r.quality.clipping for r in results])),
        refused=float(np.mean([r.quality.speech_seconds < minimum for r in results])),
        agreement=float(np.median(agreement)),
        agreeing=float(np.mean(agreement >= threshold)),
    )


# --- the common machinery ---------------------------------------------------------------------

VariantsOf = Callable[[SpeakerAudio], dict[str, list[np.ndarray]] | None]


def _study(
    material: Material,
    setup: HouseholdSetup,
    variants_of: VariantsOf,
    *,
    settings: EngineSettings | None,
) -> tuple[Study, dict[str, list[list[engine.EmbeddingResult]]]]:
    """Embed every speaker's enrollment variants (a speaker with no variants, or with a
    refused sample, is dropped from all), probe the speakers kept once, and report each
    variant. Also returns the sample embeddings per variant, per speaker kept."""
    kept: list[SpeakerAudio] = []
    embedded: dict[str, list[list[engine.EmbeddingResult]]] = {}
    for speaker in material.speakers:
        variants = variants_of(speaker)
        results = _embed_variants(variants, setup.engine_name, settings) if variants else None
        if results is None:
            continue
        kept.append(speaker)
        for name, samples in results.items():
            embedded.setdefault(name, []).append(samples)
    if len(kept) <= setup.household_size:
        raise ValueError(f"{len(kept)} speakers have enough speech: too few for households")
    first = next(iter(embedded.values()))
    base = EmbeddedMaterial(
        engine=first[0][0].model,
        labels=[s.label for s in kept],
        centroids=np.zeros((0, first[0][0].dim), dtype=np.float32),
        samples=np.zeros((0, first[0][0].dim), dtype=np.float32),
        sample_speakers=np.zeros(0, dtype=int),
    )
    embed_probes(
        base,
        Material(speakers=kept),
        setup.probes,
        engine_name=setup.engine_name,
        progress=setup.progress,
    )
    variants = []
    for name, speakers in embedded.items():
        voices = with_enrollment(base, [[r.vector for r in samples] for samples in speakers])
        reports = household_report(
            voices,
            setup.probes.conditions,
            scorer=setup.scorer,
            threshold=setup.threshold,
            household_size=setup.household_size,
        )
        speech = [sum(r.quality.speech_seconds for r in samples) for samples in speakers]
        counts = [len(samples) for samples in speakers]
        variants.append(Variant(name, reports, float(np.mean(speech)), float(np.mean(counts))))
    study = Study(
        engine=base.engine,
        speakers=len(kept),
        dropped=len(material.speakers) - len(kept),
        variants=variants,
    )
    return study, embedded


def _embed_variants(
    variants: dict[str, list[np.ndarray]],
    engine_name: str | None,
    settings: EngineSettings | None,
) -> dict[str, list[engine.EmbeddingResult]] | None:
    """Every sample embedded once (variants share sample arrays); None if one is refused."""
    done: dict[int, engine.EmbeddingResult] = {}
    results = {}
    for name, samples in variants.items():
        for sample in samples:
            if id(sample) not in done:
                try:
                    done[id(sample)] = engine.embed_waveform(sample, engine_name, settings=settings)
                except engine.InsufficientSpeechError:
                    return None
        results[name] = [done[id(s)] for s in samples]
    return results
