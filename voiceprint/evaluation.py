"""The household evaluation: the service's decision rule on device-like probes.

engine.household makes the audio (enrollment samples, short probes mixed with babble); this
module embeds it, enrolls each speaker as a voice (the centroid of its samples, as
enrollment does), and runs voiceprint.decision on every probe against every household:

* households are groups of ``household_size`` speakers (in label order); a probe of a
  member is **accepted** (decision match, right voice), **confused** (match, wrong voice),
  **uncertain** or **rejected**; a probe of anyone else is a **stranger** to that household
  and is **falsely accepted** when the decision is match;
* per condition it also reports the pairwise EER of the rule's score (AS-norm z with a
  scorer, the cosine without) and the **balanced threshold**: the voice ``threshold`` at
  which the household's rejections equal the strangers' acceptances.

The same embedded material gives the trials the calibration is fitted on (:func:`trials`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

import engine
from engine.evaluation import compute_eer
from engine.household import Condition, Material, make_probes
from engine.scoring import Scorer, Trials, as_norm, cohort_stats
from voiceprint.adaptation import adapted_centroid
from voiceprint.decision import decide, score_voices


@dataclass
class EmbeddedProbe:
    speaker: int  # index into EmbeddedMaterial.labels
    condition: Condition
    embedding: engine.EmbeddingResult


@dataclass
class EmbeddedMaterial:
    engine: str
    labels: list[str]
    #: One voice per speaker: the normalised mean of its enrollment samples.
    centroids: np.ndarray
    #: Every enrollment sample's embedding, and its speaker index (a cohort is made of these).
    samples: np.ndarray
    sample_speakers: np.ndarray
    probes: list[EmbeddedProbe] = field(default_factory=list)
    #: Probes refused for too little speech (40003 in the service), per condition name.
    refused: dict[str, int] = field(default_factory=dict)


def embed_material(
    material: Material,
    conditions: Sequence[Condition],
    *,
    engine_name: str | None = None,
    windows_per_speaker: int = 3,
    noises: Sequence[np.ndarray] = (),
    seed: int = 0,
    progress: bool = True,
) -> EmbeddedMaterial:
    """Embed every enrollment sample and every probe of ``material`` in ``conditions``."""
    embedded = embed_enrollments(
        [(s.label, s.enrollment) for s in material.speakers],
        engine_name=engine_name,
        progress=progress,
    )
    probes = ProbeSetup(
        conditions, windows_per_speaker=windows_per_speaker, noises=noises, seed=seed
    )
    embed_probes(embedded, material, probes, engine_name=engine_name, progress=progress)
    return embedded


def embed_enrollments(
    enrollments: Sequence[tuple[str, Sequence[np.ndarray]]],
    *,
    engine_name: str | None = None,
    progress: bool = True,
) -> EmbeddedMaterial:
    """Enroll each (label, samples) as a voice, without probes. A sample with too little
    speech is refused (as the service refuses it); a speaker with no sample left out."""
    samples, owners, centroids, labels = [], [], [], []
    speakers = tqdm(enrollments, desc="enrollment", unit="speaker", disable=not progress)
    for label, waveforms in speakers:
        vectors = [v for v in (_embed(w, engine_name) for w in waveforms) if v is not None]
        if not vectors:
            continue  # no sample with enough speech: this speaker cannot be enrolled
        samples.extend(v.vector for v in vectors)
        owners.extend([len(labels)] * len(vectors))
        centroids.append(enrollment_centroid([v.vector for v in vectors]))
        labels.append(label)
        name = vectors[0].model
    if not labels:
        raise ValueError("no speaker has an enrollment sample with enough speech")
    return EmbeddedMaterial(
        engine=name,
        labels=labels,
        centroids=np.stack(centroids),
        samples=np.stack(samples),
        sample_speakers=np.asarray(owners),
    )


@dataclass(frozen=True)
class ProbeSetup:
    """Which probes every speaker gets (engine.household.make_probes)."""

    conditions: Sequence[Condition]
    windows_per_speaker: int = 3
    #: Noise recordings to mix in; none: babble of other speakers.
    noises: Sequence[np.ndarray] = ()
    seed: int = 0


def embed_probes(
    embedded: EmbeddedMaterial,
    material: Material,
    setup: ProbeSetup,
    *,
    engine_name: str | None = None,
    progress: bool = True,
) -> None:
    """Add to ``embedded`` the probes of those speakers of ``material`` it enrolled."""
    index_of = {label: i for i, label in enumerate(embedded.labels)}
    probes = make_probes(
        material,
        setup.conditions,
        windows_per_speaker=setup.windows_per_speaker,
        noises=setup.noises,
        seed=setup.seed,
    )
    total = len(material.speakers) * setup.windows_per_speaker * len(setup.conditions)
    for probe in tqdm(probes, desc="probes", unit="probe", total=total, disable=not progress):
        if probe.speaker not in index_of:
            continue
        result = _embed(probe.waveform, engine_name)
        if result is None:
            name = probe.condition.name
            embedded.refused[name] = embedded.refused.get(name, 0) + 1
            continue
        embedded.probes.append(EmbeddedProbe(index_of[probe.speaker], probe.condition, result))


def enrollment_centroid(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """A voice from its samples' embeddings, as enrollment makes it: the normalised mean."""
    return adapted_centroid(np.stack(vectors))


def with_enrollment(
    embedded: EmbeddedMaterial, samples: Sequence[Sequence[np.ndarray]]
) -> EmbeddedMaterial:
    """``embedded`` with each voice enrolled from other sample embeddings (one sequence per
    voice, in label order); the probes are shared, not copied."""
    return dataclasses.replace(
        embedded,
        centroids=np.stack([enrollment_centroid(vectors) for vectors in samples]),
        samples=np.concatenate([np.stack(vectors) for vectors in samples]),
        sample_speakers=np.concatenate(
            [np.full(len(vectors), i) for i, vectors in enumerate(samples)]
        ),
    )


def _embed(waveform: np.ndarray, engine_name: str | None) -> engine.EmbeddingResult | None:
    try:
        return engine.embed_waveform(waveform, engine_name)
    except engine.InsufficientSpeechError:
        return None


# --- the household report ---------------------------------------------------------------------


@dataclass
class ConditionReport:
    condition: Condition
    household_probes: int = 0
    accepted: int = 0
    rejected: int = 0
    uncertain: int = 0
    confused: int = 0
    refused: int = 0
    stranger_trials: int = 0
    stranger_accepted: int = 0
    stranger_uncertain: int = 0
    eer: float | None = None
    balanced_threshold: float | None = None
    balanced_error: float | None = None

    def rate(self, count: int, of_strangers: bool = False) -> float:
        total = self.stranger_trials if of_strangers else self.household_probes
        return count / total if total else 0.0


def household_report(
    embedded: EmbeddedMaterial,
    conditions: Sequence[Condition],
    *,
    scorer: Scorer | None,
    threshold: float,
    household_size: int = 4,
) -> list[ConditionReport]:
    """The decision rule's outcomes per condition (see the module docstring)."""
    households = household_groups(len(embedded.labels), household_size)
    household_of = np.full(len(embedded.labels), -1)
    for number, members in enumerate(households):
        household_of[members] = number
    reports = []
    for condition in conditions:
        report = ConditionReport(condition, refused=embedded.refused.get(condition.name, 0))
        probes = [p for p in embedded.probes if p.condition == condition]
        member_best, stranger_best, member_right = [], [], []
        for probe in probes:
            for number, members in enumerate(households):
                ranked = score_voices(
                    members,
                    centroids=embedded.centroids[members],
                    thresholds=[threshold] * len(members),
                    probe=probe.embedding,
                    scorer=scorer,
                )
                decision = decide(ranked, scorer)
                best = decision.best
                if household_of[probe.speaker] == number:
                    _count_member(report, decision.outcome, best.voice == probe.speaker)
                    member_best.append(best.rank_score)
                    member_right.append(best.voice == probe.speaker)
                else:
                    report.stranger_trials += 1
                    report.stranger_accepted += decision.outcome == "match"
                    report.stranger_uncertain += decision.outcome == "uncertain"
                    stranger_best.append(best.rank_score)
        report.eer = _pairwise_eer(embedded, probes, scorer)
        _balance(report, member_best, member_right, stranger_best, scorer)
        reports.append(report)
    return reports


def household_groups(speakers: int, size: int) -> list[list[int]]:
    if speakers < size + 1:
        raise ValueError(f"{speakers} speakers: a household of {size} needs strangers too")
    return [list(range(i, i + size)) for i in range(0, speakers - size + 1, size)]


def _count_member(report: ConditionReport, outcome: str, right_voice: bool) -> None:
    report.household_probes += 1
    if outcome == "match":
        if right_voice:
            report.accepted += 1
        else:
            report.confused += 1
    elif outcome == "uncertain":
        report.uncertain += 1
    else:
        report.rejected += 1


def _pairwise_eer(
    embedded: EmbeddedMaterial, probes: Sequence[EmbeddedProbe], scorer: Scorer | None
) -> float | None:
    if not probes:
        return None
    scores, labels = [], []
    for probe in probes:
        ranked = score_voices(
            list(range(len(embedded.labels))),
            centroids=embedded.centroids,
            thresholds=[0.0] * len(embedded.labels),
            probe=probe.embedding,
            scorer=scorer,
        )
        scores.extend(s.rank_score for s in ranked)
        labels.extend(s.voice == probe.speaker for s in ranked)
    return compute_eer(scores, labels)[0]


def _balance(
    report: ConditionReport,
    member_best: Sequence[float],
    member_right: Sequence[bool],
    stranger_best: Sequence[float],
    scorer: Scorer | None,
) -> None:
    """The threshold where household rejections equal stranger acceptances, as a voice
    ``threshold`` (a cosine; with a scorer, the cosine whose mapped z is that point)."""
    if not member_best or not stranger_best:
        return
    point, report.balanced_error = balanced_point(member_best, member_right, stranger_best)
    if scorer is not None:
        mapping = scorer.calibration.threshold_map
        point = mapping.cosine_mean + (point - mapping.z_mean) / mapping.z_std * mapping.cosine_std
    report.balanced_threshold = point


def balanced_point(
    member_best: Sequence[float], member_right: Sequence[bool], stranger_best: Sequence[float]
) -> tuple[float, float]:
    """The score where members' rejections equal strangers' acceptances, and the error there
    (the mean of the two rates). A member probe is accepted at t when its best voice is right
    (``member_right``) and its best score reaches t; a stranger's when its best score does."""
    accepted = np.sort(np.where(member_right, member_best, -np.inf))
    strangers = np.sort(np.asarray(stranger_best, dtype=np.float64))
    candidates = np.unique(np.concatenate([member_best, strangers]))
    frr = np.searchsorted(accepted, candidates, side="left") / len(accepted)
    far = (len(strangers) - np.searchsorted(strangers, candidates, side="left")) / len(strangers)
    i = int(np.argmin(np.abs(frr - far)))
    return float(candidates[i]), float((frr[i] + far[i]) / 2)


# --- trials for fitting and pooled EER --------------------------------------------------------


def trials(embedded: EmbeddedMaterial, *, cohort: np.ndarray, top_n: int) -> Trials:
    """Every probe against every voice of ``embedded``, AS-normalised against ``cohort``."""
    voices = cohort_stats(embedded.centroids, cohort, top_n=top_n)  # the same for every probe
    vectors = np.stack([p.embedding.vector for p in embedded.probes])
    probe_means, probe_stds = cohort_stats(vectors, cohort, top_n=top_n)
    parts = []
    for probe, vector, mean, std in zip(
        embedded.probes, vectors, probe_means, probe_stds, strict=True
    ):
        cosines = embedded.centroids @ vector
        n = len(cosines)
        parts.append(
            (
                cosines,
                as_norm(cosines, voices, (mean, std)),
                np.full(n, probe.embedding.quality.speech_seconds),
                np.full(n, probe.embedding.quality.snr_db),
                np.arange(n) == probe.speaker,
                np.full(n, probe.condition.snr_db is None),
            )
        )
    columns = [np.concatenate(column) for column in zip(*parts, strict=True)]
    return Trials(*columns)


def pooled_eers(embedded: EmbeddedMaterial, scorer: Scorer | None) -> dict[str, float]:
    """EER over all conditions together: raw cosine, and the calibrated LLR with a scorer."""
    if scorer is None:
        cosines = np.concatenate([embedded.centroids @ p.embedding.vector for p in embedded.probes])
        labels = _target_labels(embedded)
        return {"cosine": compute_eer(cosines, labels)[0]}
    pairs = trials(embedded, cohort=scorer.cohort, top_n=scorer.calibration.top_n)
    llr = scorer.calibration.llr(pairs.z, pairs.speech_seconds, pairs.snr_db)
    return {
        "cosine": compute_eer(pairs.cosine, pairs.target)[0],
        "z": compute_eer(pairs.z, pairs.target)[0],
        "calibrated": compute_eer(llr, pairs.target)[0],
    }


def _target_labels(embedded: EmbeddedMaterial) -> np.ndarray:
    n = len(embedded.labels)
    return np.concatenate([np.arange(n) == p.speaker for p in embedded.probes])


def conditions_from(windows: Iterable[float], snrs: Iterable[float | None]) -> list[Condition]:
    return [Condition(w, s) for w in windows for s in snrs]
