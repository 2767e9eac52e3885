"""The spoofing countermeasure on a folder of labelled recordings (``manage.py evaluate_spoof``).

The folder holds ``bonafide/`` and ``spoof/``, both searched recursively; a spoof's *kind* is
its first folder under ``spoof/`` (``spoof/espeak/x.wav`` -> ``espeak``; a file directly in
``spoof/`` is of kind ``spoof``). Each recording is decoded like any upload (any format and
rate -> 16 kHz mono) and scored whole by the detector; the arithmetic is `engine.spoof_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.audio import decode_audio
from engine.errors import AudioDecodeError
from engine.evaluation import audio_files
from engine.spoof_metrics import SpoofSummary, summarize
from engine.spoofing import spoof_detector

#: Recordings scored per call of the detector (its windows run as one batch).
BATCH = 8


@dataclass
class FolderScores:
    model: str
    bonafide: list[float] = field(default_factory=list)
    #: Scores per spoof kind.
    spoofs: dict[str, list[float]] = field(default_factory=dict)
    #: (file, reason) for every file that could not be scored.
    skipped: list[tuple[str, str]] = field(default_factory=list)


def labelled_files(folder: Path) -> list[tuple[Path, str | None]]:
    """Every recording under ``folder`` with its spoof kind (None: bona fide).

    Raises FileNotFoundError, naming what is missing, without ``bonafide/`` or ``spoof/``.
    """
    folder = Path(folder)
    missing = [name for name in ("bonafide", "spoof") if not (folder / name).is_dir()]
    if missing:
        raise FileNotFoundError(f"{folder} has no {' and no '.join(f'{m}/' for m in missing)}")
    files: list[tuple[Path, str | None]] = [(p, None) for p in audio_files(folder / "bonafide")]
    for path in audio_files(folder / "spoof"):
        inner = path.relative_to(folder / "spoof").parts
        files.append((path, inner[0] if len(inner) > 1 else "spoof"))
    return files


def score_folder(folder: Path, *, model: str | None = None, progress: bool = True) -> FolderScores:
    """The detector's score of every recording under ``folder`` (tqdm on stderr)."""
    files = labelled_files(folder)
    detector = spoof_detector(model)
    result = FolderScores(model=detector.name)
    bar = tqdm(
        total=len(files), unit="file", desc=f"scoring ({detector.name})", disable=not progress
    )
    for start in range(0, len(files), BATCH):
        batch = _decoded(files[start : start + BATCH], result)
        scored = detector.score_batch([waveform for _, waveform in batch])
        for ((_, kind), _), one in zip(batch, scored, strict=True):
            target = result.bonafide if kind is None else result.spoofs.setdefault(kind, [])
            target.append(one.score)
        bar.update(min(BATCH, len(files) - start))
    bar.close()
    return result


def _decoded(
    files: Sequence[tuple[Path, str | None]], result: FolderScores
) -> list[tuple[tuple[Path, str | None], np.ndarray]]:
    decoded = []
    for item in files:
        try:
            decoded.append((item, decode_audio(item[0].read_bytes())))
        except (AudioDecodeError, OSError) as exc:
            result.skipped.append((str(item[0]), str(exc)))
    return decoded


def evaluate_spoof_folder(
    folder: Path, *, model: str | None = None, threshold: float, progress: bool = True
) -> tuple[FolderScores, SpoofSummary]:
    scores = score_folder(folder, model=model, progress=progress)
    if not scores.bonafide:
        raise ValueError(f"no bona fide recording could be scored under {folder}/bonafide")
    if not scores.spoofs:
        raise ValueError(f"no spoof recording could be scored under {folder}/spoof")
    return scores, summarize(scores.bonafide, scores.spoofs, threshold=threshold)


def summary_table(summary: SpoofSummary) -> str:
    """A markdown table: one row per spoof kind, then all of them."""
    lines = [
        f"threshold {summary.threshold:g}: bona fide falsely flagged "
        f"{summary.bonafide_flagged:.1%} of {summary.bonafide_count}",
        "",
        "| spoofs | count | EER | EER threshold | flagged at threshold |",
        "|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {k.kind} | {k.count} | {k.eer:.1%} | {k.eer_threshold:.3f} | {k.flagged:.1%} |"
        for k in summary.kinds
    )
    return "\n".join(lines)
