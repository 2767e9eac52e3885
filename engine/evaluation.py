"""Accuracy of an engine on a folder of labelled speech: EER and top-1 identification.

Speaker labels come from the file names (or folders), by this rule (``label_from="auto"``):

* the file-name prefix, i.e. the text before the first ``-`` or ``_``, when the name has one:
  ``fangjun-sr-1.wav`` -> ``fangjun``, ``103-1240-0000.flac`` -> ``103``,
  ``speaker1_a_cn_16k.wav`` -> ``speaker1``;
* otherwise the first folder under the evaluated root (``id10001/video/00001.wav`` ->
  ``id10001``), or, for a file directly in the root, its whole name.

``label_from="prefix"`` or ``"folder"`` forces one of the two.

Data sets with one file per speaker (the shared LibriSpeech sample) have no same-speaker
pairs; ``segment_seconds`` cuts each file's speech into segments to make them (same session,
so easier than real trials: say so when quoting the numbers).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from engine.audio import SAMPLE_RATE, decode_audio, prepare_audio
from engine.base import SpeakerEngine
from engine.errors import AudioDecodeError, InsufficientSpeechError
from engine.registry import active_engine, current_settings, embed_waveform, get_engine

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg"})
LabelSource = Literal["auto", "prefix", "folder"]
_SEPARATOR = re.compile(r"[-_]")


@dataclass
class EvaluationReport:
    engine: str
    files_found: int
    #: Embedded items: files, or segments when segment_seconds was given.
    items: int
    speakers: int
    #: (file, reason) for every file that could not be used.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    segment_seconds: float | None = None
    target_trials: int = 0
    nontarget_trials: int = 0
    #: Equal error rate, None without both kinds of trial.
    eer: float | None = None
    #: Cosine similarity at the EER point.
    eer_threshold: float | None = None
    mean_target_score: float | None = None
    mean_nontarget_score: float | None = None
    #: Items whose speaker has at least one other item.
    top1_queries: int = 0
    top1_correct: int = 0
    speech_seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def top1_accuracy(self) -> float | None:
        return self.top1_correct / self.top1_queries if self.top1_queries else None

    def as_text(self) -> str:
        unit = f"segments of {self.segment_seconds:g} s" if self.segment_seconds else "files"
        lines = [
            f"engine: {self.engine}",
            f"files: {self.files_found} found, {len(self.skipped)} skipped; "
            f"{self.items} {unit} from {self.speakers} speakers",
            f"trials: {self.target_trials} same-speaker, {self.nontarget_trials} different",
        ]
        if self.eer is not None:
            lines.append(f"EER: {self.eer:.2%} at cosine threshold {self.eer_threshold:.4f}")
            lines.append(
                f"mean score: same {self.mean_target_score:.4f}, "
                f"different {self.mean_nontarget_score:.4f}"
            )
        else:
            lines.append("EER: n/a (needs same-speaker and different-speaker pairs)")
        if self.top1_queries:
            lines.append(
                f"top-1 identification: {self.top1_correct}/{self.top1_queries} "
                f"= {self.top1_accuracy:.2%}"
            )
        else:
            lines.append("top-1 identification: n/a (no speaker has two items)")
        rate = self.speech_seconds / self.embed_seconds if self.embed_seconds else 0.0
        lines.append(
            f"speech: {self.speech_seconds:.1f} s embedded in {self.embed_seconds:.1f} s "
            f"({rate:.1f}x real time, model only)"
        )
        lines.extend(f"skipped {path}: {reason}" for path, reason in self.skipped)
        return "\n".join(lines)


def compute_eer(
    scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray
) -> tuple[float, float]:
    """Equal error rate and the score threshold where it occurs.

    ``labels`` is True for same-speaker trials. A trial is accepted when its score is at
    least the threshold. Between two observed thresholds the rates are interpolated linearly,
    so the threshold returned lies between the scores where false acceptance and false
    rejection cross.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError("scores and labels must be 1-D and of the same length")
    targets, nontargets = np.sort(scores[labels]), np.sort(scores[~labels])
    if len(targets) == 0 or len(nontargets) == 0:
        raise ValueError("EER needs at least one same-speaker and one different-speaker trial")
    thresholds = np.append(np.unique(scores), np.inf)
    frr = np.searchsorted(targets, thresholds, side="left") / len(targets)
    far = 1.0 - np.searchsorted(nontargets, thresholds, side="left") / len(nontargets)
    # frr - far rises from -1 (accept all) to +1 (reject all, at +inf): find the crossing.
    diff = frr - far
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0 or i == 0:
        return float(frr[i]), float(min(thresholds[i], scores.max()))
    w = -diff[i - 1] / (diff[i] - diff[i - 1])
    eer = frr[i - 1] + w * (frr[i] - frr[i - 1])
    upper = thresholds[i] if np.isfinite(thresholds[i]) else thresholds[i - 1]
    return float(eer), float(thresholds[i - 1] + w * (upper - thresholds[i - 1]))


def speaker_label(path: Path, root: Path, label_from: LabelSource = "auto") -> str:
    """The speaker of ``path`` under ``root``, by the rule in the module docstring."""
    parts = _SEPARATOR.split(path.stem, maxsplit=1)
    if label_from == "prefix" or (label_from == "auto" and len(parts) == 2):
        return parts[0]
    folders = path.relative_to(root).parts[:-1]
    if folders:
        return folders[0]
    if label_from == "folder":
        raise ValueError(f"{path} is not in a speaker folder under {root}")
    return path.stem


def audio_files(folder: Path) -> list[Path]:
    """WAV/FLAC/OGG files under ``folder``, recursively, in a stable order."""
    return sorted(
        p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    )


def evaluate_folder(
    folder: Path,
    engine: SpeakerEngine | str | None = None,
    progress: bool = True,
    *,
    label_from: LabelSource = "auto",
    segment_seconds: float | None = None,
) -> EvaluationReport:
    """Embed every audio file under ``folder`` and measure EER and top-1 identification."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    files = audio_files(folder)
    labels = [speaker_label(f, folder, label_from) for f in files]
    return evaluate_files(files, labels, engine, progress=progress, segment_seconds=segment_seconds)


def evaluate_files(
    files: Sequence[Path],
    labels: Sequence[str],
    engine: SpeakerEngine | str | None = None,
    *,
    progress: bool = True,
    segment_seconds: float | None = None,
) -> EvaluationReport:
    """As :func:`evaluate_folder`, for an explicit list of files and their speaker labels."""
    if len(files) != len(labels):
        raise ValueError("one label per file is needed")
    vectors, item_labels, report = embed_segments(
        files, labels, engine, segment_seconds=segment_seconds, progress=progress
    )
    if report.items >= 2:
        _score(report, vectors, item_labels)
    return report


def embed_segments(
    files: Sequence[Path],
    labels: Sequence[str],
    engine: SpeakerEngine | str | None = None,
    *,
    segment_seconds: float | None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, EvaluationReport]:
    """The embeddings of each file's speech (or of its consecutive ``segment_seconds``
    pieces), their speaker labels, and the report so far (skipped files, speech and
    embedding time; no scores)."""
    engine = _resolve(engine)
    report = EvaluationReport(
        engine=engine.name,
        files_found=len(files),
        items=0,
        speakers=0,
        segment_seconds=segment_seconds,
    )
    vectors, item_labels = _embed_all(engine, files, labels, report, progress, segment_seconds)
    report.items, report.speakers = len(item_labels), len(set(item_labels))
    stacked = np.stack(vectors) if vectors else np.zeros((0, engine.dim), dtype=np.float32)
    return stacked, np.asarray(item_labels), report


def _resolve(engine: SpeakerEngine | str | None) -> SpeakerEngine:
    if engine is None:
        return active_engine()
    if isinstance(engine, str):
        return get_engine(engine)
    return engine


def _embed_all(
    engine: SpeakerEngine,
    files: Sequence[Path],
    labels: Sequence[str],
    report: EvaluationReport,
    progress: bool,
    segment_seconds: float | None,
) -> tuple[list[np.ndarray], list[str]]:
    settings = current_settings()
    vectors: list[np.ndarray] = []
    item_labels: list[str] = []
    bar = tqdm(
        zip(files, labels, strict=True),
        total=len(files),
        unit="file",
        desc=f"embedding ({engine.name})",
        disable=not progress,
    )
    for path, label in bar:
        try:
            speech = prepare_audio(Path(path).read_bytes(), settings).waveform
        except (AudioDecodeError, InsufficientSpeechError, OSError) as exc:
            report.skipped.append((str(path), str(exc)))
            continue
        segments = list(_segments(speech, segment_seconds, settings.min_speech_seconds))
        started = time.perf_counter()
        vectors.extend(engine.embed(segment) for segment in segments)
        report.embed_seconds += time.perf_counter() - started
        report.speech_seconds += sum(len(s) for s in segments) / SAMPLE_RATE
        item_labels.extend([label] * len(segments))
    return vectors, item_labels


def _segments(
    speech: np.ndarray, seconds: float | None, minimum_seconds: float
) -> Iterable[np.ndarray]:
    """The whole speech, or consecutive pieces of ``seconds`` (a short tail is dropped)."""
    if not seconds:
        yield speech
        return
    step = int(seconds * SAMPLE_RATE)
    for start in range(0, len(speech), step):
        piece = speech[start : start + step]
        if len(piece) >= max(minimum_seconds, seconds / 2) * SAMPLE_RATE:
            yield piece


def _score(report: EvaluationReport, vectors: np.ndarray, labels: np.ndarray) -> None:
    scores = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    upper = np.triu_indices(len(labels), k=1)
    trial_scores, trial_labels = scores[upper], same[upper]
    report.target_trials = int(trial_labels.sum())
    report.nontarget_trials = int((~trial_labels).sum())
    if report.target_trials and report.nontarget_trials:
        report.eer, report.eer_threshold = compute_eer(trial_scores, trial_labels)
        report.mean_target_score = float(trial_scores[trial_labels].mean())
        report.mean_nontarget_score = float(trial_scores[~trial_labels].mean())
    # Leave-one-out nearest neighbour, for items whose speaker has another item.
    np.fill_diagonal(scores, -np.inf)
    counts = Counter(labels.tolist())
    queries = np.array([counts[label] >= 2 for label in labels])
    nearest = scores.argmax(axis=1)
    report.top1_queries = int(queries.sum())
    report.top1_correct = int((labels[nearest] == labels)[queries].sum())


@dataclass
class ReferenceComparison:
    """EERs of our pipeline and of the engine's own reference pipeline on the same pieces."""

    speakers: int
    pieces: int
    target_trials: int
    nontarget_trials: int
    ours: float
    reference: float


def ge2e_reference_comparison(
    folder: Path, *, parts: int = 3, min_seconds: float = 12.0, progress: bool = True
) -> ReferenceComparison:
    """Clean, long speech: each recording of at least ``min_seconds`` cut into ``parts``
    pieces (silences kept), every pair of pieces a trial; embedded by our pipeline (decode,
    VAD, levelling, GE2E) and by resemblyzer's own (``preprocess_wav`` + ``embed_utterance``)."""
    encoder = get_engine("ge2e")
    ours, reference, labels = [], [], []
    files = audio_files(Path(folder))
    for path in tqdm(files, unit="file", desc="clean long speech", disable=not progress):
        waveform = decode_audio(path.read_bytes())
        if len(waveform) < min_seconds * SAMPLE_RATE:
            continue
        for piece in np.array_split(waveform, parts):
            ours.append(embed_waveform(piece, "ge2e").vector)
            reference.append(encoder.embed_reference(piece))
            labels.append(speaker_label(path, Path(folder)))
    label_array = np.asarray(labels)
    same = label_array[:, None] == label_array[None, :]
    upper = np.triu_indices(len(labels), k=1)
    trial_labels = same[upper]

    def eer(vectors: list[np.ndarray]) -> float:
        stacked = np.stack(vectors)
        return compute_eer((stacked @ stacked.T)[upper], trial_labels)[0]

    return ReferenceComparison(
        speakers=len(set(labels)),
        pieces=len(labels),
        target_trials=int(trial_labels.sum()),
        nontarget_trials=int((~trial_labels).sum()),
        ours=eer(ours),
        reference=eer(reference),
    )
