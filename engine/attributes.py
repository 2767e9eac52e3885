"""Speaker attributes from embeddings: a tiny logistic-regression head for sex.

The head is ``P(male) = sigmoid(w . x + b)`` over the engine's L2-normalised embedding ``x``,
fitted with numpy (Newton's method, L2 penalty on ``w``), so the shipped file holds ``dim``
weights and a bias. The embeddings are deliberately *not* standardised: they are unit vectors
whose dimensions are already comparable, while GE2E has ReLU dimensions that are nearly always
zero (std < 1e-3 in 33 of 256 on LibriSpeech); standardising blew those up into weights of
several hundred that a new voice could swing at will, for no gain in cross-validated accuracy.

Training data: ``python manage.py train_gender`` on the LibriSpeech sample in
``../shared/audio/librispeech-train-clean-100`` (one utterance per speaker), labelled by its
``SPEAKERS.TXT``. The weights ship as ``engine/heads/gender-<engine>.json``, with the training
metadata (cross-validated accuracy, folds, regularisation) beside them.

Cross-validation is speaker-disjoint by construction: folds are drawn over speakers (stratified
by sex) and every file follows its speaker. With one file per speaker this is the same as
file-level folds.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from engine.errors import AudioDecodeError, EngineError, InsufficientSpeechError
from engine.evaluation import audio_files
from engine.logistic import fit_logistic, sigmoid
from engine.registry import available_engines, embed_audio, get_engine

#: Where the shipped heads live: ``gender-<engine>.json``.
HEADS_DIR = Path(__file__).resolve().parent / "heads"
FORMAT = "voiceprint-gender-head/1"
#: Index 0 is the negative class, 1 the positive one (the sigmoid gives P(labels[1])).
LABELS = ("female", "male")
_SEX_CODES = {"F": "female", "M": "male"}
#: L2 penalty strengths tried by cross-validation (lambda/2 |w|^2 added to the summed log-loss,
#: like sklearn's 1/C). Unit vectors have small components, hence small values.
LAMBDA_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)
#: Used when a training fold is too small to run the inner cross-validation.
DEFAULT_LAMBDA = 1e-3
SIGNIFICANT_DIGITS = 7


class HeadFileError(EngineError):
    """A shipped head file is unreadable, malformed or does not fit its engine."""


@dataclass(frozen=True, eq=False)
class GenderHead:
    """A fitted sex classifier for one engine's embeddings."""

    engine: str
    dim: int
    #: (dim,) float64, over the L2-normalised embedding.
    weights: np.ndarray
    bias: float
    labels: tuple[str, str] = LABELS
    n_speakers: int = 0
    #: Mean over the outer folds of the speaker-disjoint cross-validation.
    cv_accuracy: float | None = None
    folds: int = 0
    #: ISO date of training.
    trained_on: str = ""
    #: What it was trained on (folder name and label file), for the README and /healthz.
    source: str = ""
    #: Everything else the training run recorded: per-fold accuracy, penalty choice, counts.
    training: dict[str, Any] = field(default_factory=dict)

    def male_probability(self, embeddings: np.ndarray) -> np.ndarray:
        """P(male) for one (dim,) or several (n, dim) embeddings; they are L2-normalised here."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.shape[-1:] != (self.dim,) or x.ndim > 2:
            raise ValueError(f"expected embeddings of dim {self.dim}, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("embedding contains NaN or infinite values")
        # The head was fitted on unit vectors; normalising again costs nothing and protects
        # against a caller passing a centroid or an unnormalised vector.
        x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        return sigmoid(x @ self.weights + self.bias)

    def predict(self, embedding: np.ndarray) -> dict[str, Any]:
        """``{"label": "female"|"male", "scores": {"female": p, "male": 1 - p}}``."""
        p_male = float(self.male_probability(np.asarray(embedding).reshape(-1)))
        scores = {self.labels[0]: 1.0 - p_male, self.labels[1]: p_male}
        return {"label": self.labels[1] if p_male >= 0.5 else self.labels[0], "scores": scores}


# --- loading and saving ---------------------------------------------------------------------


def head_path(engine_name: str) -> Path:
    return HEADS_DIR / f"gender-{engine_name}.json"


@functools.cache
def load_gender_head(engine_name: str) -> GenderHead | None:
    """The shipped head of ``engine_name``, or None when none was trained for it.

    Cached per process (``load_gender_head.cache_clear()`` forgets it). Raises
    :class:`HeadFileError` for a corrupt file and ``UnknownEngineError`` for an unknown engine.
    """
    if engine_name not in available_engines():
        get_engine(engine_name)  # raises UnknownEngineError with the list of known engines
    path = head_path(engine_name)
    if not path.is_file():
        return None
    head = read_gender_head(path)
    if head.engine != engine_name:
        raise HeadFileError(f"{path} holds a head for engine {head.engine!r}, not {engine_name!r}")
    return head


def read_gender_head(path: Path) -> GenderHead:
    """Read and validate a head file written by :func:`save_gender_head`."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeadFileError(f"cannot read gender head {path}: {exc}") from exc
    try:
        return _from_payload(payload)
    except (KeyError, TypeError, ValueError) as exc:
        raise HeadFileError(f"corrupt gender head {path}: {exc}") from exc


def _from_payload(payload: dict[str, Any]) -> GenderHead:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    dim = payload["dim"]
    weights = np.asarray(payload["weights"], dtype=np.float64)
    bias = float(payload["bias"])
    if not isinstance(dim, int) or dim <= 0:
        raise ValueError(f"bad dim {dim!r}")
    if weights.shape != (dim,):
        raise ValueError(f"{weights.size} weights for dim {dim}")
    if not (np.isfinite(weights).all() and math.isfinite(bias)):
        raise ValueError("non-finite weights or bias")
    if tuple(payload["labels"]) != LABELS:
        raise ValueError(f"labels must be {list(LABELS)}, got {payload['labels']!r}")
    training = dict(payload.get("training") or {})
    return GenderHead(
        engine=str(payload["engine"]),
        dim=dim,
        weights=weights,
        bias=bias,
        n_speakers=int(training.get("n_speakers", 0)),
        cv_accuracy=training.get("cv_accuracy"),
        folds=int(training.get("folds", 0)),
        trained_on=str(training.get("trained_on", "")),
        source=str(training.get("source", "")),
        training=training,
    )


def save_gender_head(head: GenderHead, path: Path) -> None:
    """Write ``head`` as JSON, floats to 7 significant digits (under 5 KB for 256 weights)."""
    training = {
        "n_speakers": head.n_speakers,
        "cv_accuracy": head.cv_accuracy,
        "folds": head.folds,
        "trained_on": head.trained_on,
        "source": head.source,
        **head.training,
    }
    payload = {
        "format": FORMAT,
        "engine": head.engine,
        "dim": head.dim,
        "labels": list(head.labels),
        "model": "P(male) = sigmoid(weights . x + bias), x = L2-normalised embedding",
        "training": _round(training),
        "bias": _round(head.bias),
        "weights": _round(head.weights.tolist()),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    return value


# --- training -------------------------------------------------------------------------------


def read_speaker_sexes(speakers_txt: Path) -> dict[str, str]:
    """Speaker id -> "female"/"male" from a LibriSpeech SPEAKERS.TXT (``ID | SEX | ...``)."""
    sexes: dict[str, str] = {}
    for number, line in enumerate(Path(speakers_txt).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        columns = [c.strip() for c in line.split("|")]
        if len(columns) < 2 or columns[1] not in _SEX_CODES:
            raise ValueError(f"{speakers_txt}:{number}: expected 'ID | F or M | ...': {line!r}")
        sexes[columns[0]] = _SEX_CODES[columns[1]]
    return sexes


def file_speaker(path: Path) -> str:
    """LibriSpeech naming: the speaker id is the file name up to the first '-'."""
    return Path(path).name.split("-", 1)[0]


@dataclass
class EmbeddedFiles:
    files: list[Path]
    speakers: list[str]
    #: 0 = female, 1 = male (index into LABELS).
    y: np.ndarray
    #: (n, dim) L2-normalised embeddings.
    x: np.ndarray
    #: (file, reason) for files that were not used.
    skipped: list[tuple[str, str]]


def embed_labelled_files(
    files: Sequence[Path],
    sexes: dict[str, str],
    engine_name: str = "ge2e",
    progress: bool = True,
) -> EmbeddedFiles:
    """Embed each file through the same pipeline as the API (``embed_audio``); skip failures."""
    dim = get_engine(engine_name).dim  # fail fast, before the loop, when it is unavailable
    kept: list[Path] = []
    vectors: list[np.ndarray] = []
    speakers: list[str] = []
    skipped: list[tuple[str, str]] = []
    for path in tqdm(files, unit="file", desc=f"embedding ({engine_name})", disable=not progress):
        sex = sexes.get(file_speaker(path))
        if sex is None:
            skipped.append((str(path), "speaker not in SPEAKERS.TXT"))
            continue
        try:
            vectors.append(embed_audio(Path(path).read_bytes(), engine_name).vector)
        except (AudioDecodeError, InsufficientSpeechError, OSError) as exc:
            skipped.append((str(path), str(exc)))
            continue
        kept.append(Path(path))
        speakers.append(file_speaker(path))
    x = np.stack(vectors).astype(np.float64) if vectors else np.zeros((0, dim))
    y = np.array([LABELS.index(sexes[s]) for s in speakers], dtype=np.int64)
    return EmbeddedFiles(kept, speakers, y, x, skipped)


def train_gender_head(
    folder: Path,
    speakers_txt: Path,
    engine_name: str = "ge2e",
    folds: int = 5,
    progress: bool = True,
    seed: int = 0,
) -> GenderHead:
    """Embed every audio file under ``folder``, cross-validate, then fit on all of them.

    Raises FileNotFoundError for a missing folder or label file, ``EngineError`` when the
    engine cannot be loaded, and ValueError when too few labelled files are left.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"training folder not found: {folder}")
    started = time.perf_counter()
    sexes = read_speaker_sexes(speakers_txt)
    data = embed_labelled_files(audio_files(folder), sexes, engine_name, progress)
    head = fit_gender_head(
        data.x,
        data.y,
        data.speakers,
        engine_name=engine_name,
        folds=folds,
        seed=seed,
        source=f"{folder.name} (labels: {Path(speakers_txt).name})",
    )
    training = {
        **head.training,
        "files_used": len(data.files),
        "files_skipped": len(data.skipped),
        "skipped": [f"{Path(f).name}: {reason}" for f, reason in data.skipped],
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    return dataclasses.replace(head, training=training)


def fit_gender_head(
    x: np.ndarray,
    y: np.ndarray,
    speakers: Sequence[str],
    *,
    engine_name: str = "ge2e",
    folds: int = 5,
    seed: int = 0,
    source: str = "",
) -> GenderHead:
    """Nested speaker-disjoint CV of the whole recipe, then the final fit on all data.

    Outer ``folds``: each outer training part picks the penalty by an inner ``folds``-fold CV
    over the grid, is fitted with it and scored on its held-out speakers; ``cv_accuracy`` is the
    mean of those scores, so the penalty choice never sees the speakers it is scored on. The
    shipped head then picks its penalty by the same inner CV on all speakers.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if x.ndim != 2 or len(x) != len(y) or len(y) != len(speakers):
        raise ValueError("x must be (n, dim) with one label and one speaker per row")
    if folds < 2:
        raise ValueError("at least 2 folds are needed")
    speaker_ids = np.asarray(speakers)
    assignment = speaker_folds(speakers, y, folds, seed)
    fold_accuracy: list[float] = []
    fold_lambda: list[float] = []
    for k in range(folds):
        train, test = assignment != k, assignment == k
        lam = _choose_lambda(x[train], y[train], speaker_ids[train].tolist(), folds, seed)
        w, b = fit_logistic(x[train], y[train], lam)
        fold_accuracy.append(float(np.mean((sigmoid(x[test] @ w + b) >= 0.5) == y[test])))
        fold_lambda.append(lam)
    lam = _choose_lambda(x, y, speakers, folds, seed)
    w, b = fit_logistic(x, y, lam)
    n_speakers = len(set(speakers))
    return GenderHead(
        engine=engine_name,
        dim=x.shape[1],
        weights=w,
        bias=b,
        n_speakers=n_speakers,
        cv_accuracy=float(np.mean(fold_accuracy)),
        folds=folds,
        trained_on=datetime.date.today().isoformat(),
        source=source,
        training={
            "cv": (
                f"nested, speaker-disjoint, stratified by sex: {folds} outer folds over "
                f"speakers; the L2 penalty is chosen in each outer training part by an inner "
                f"{folds}-fold CV (fewer if a sex has fewer speakers), by lowest held-out "
                "log-loss, ties to the stronger penalty"
            ),
            "cv_fold_accuracy": fold_accuracy,
            "cv_fold_lambda": fold_lambda,
            "lambda": lam,
            "lambda_grid": list(LAMBDA_GRID),
            "lambda_note": "L2 penalty lambda/2*|w|^2 added to the summed log-loss over the "
            "L2-normalised embeddings; final lambda chosen by the inner CV on all speakers",
            "train_accuracy": float(np.mean((sigmoid(x @ w + b) >= 0.5) == y)),
            "n_female": int(np.sum(y == 0)),
            "n_male": int(np.sum(y == 1)),
            "seed": seed,
            "script": "python manage.py train_gender (engine/attributes.py)",
        },
    )


def speaker_folds(speakers: Sequence[str], y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold index per row: speakers shuffled within each sex and dealt round-robin."""
    sex_of: dict[str, int] = {}
    for speaker, label in zip(speakers, y.tolist(), strict=True):
        if sex_of.setdefault(speaker, label) != label:
            raise ValueError(f"speaker {speaker} has files labelled with both sexes")
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for label in (0, 1):
        group = sorted(s for s, lab in sex_of.items() if lab == label)
        if len(group) < folds:
            raise ValueError(
                f"{len(group)} {LABELS[label]} speaker(s): at least {folds} are needed for "
                f"{folds}-fold cross-validation"
            )
        # Continue the round-robin where the previous sex stopped, so fold sizes stay even.
        offset = len(fold_of)
        for i, j in enumerate(rng.permutation(len(group))):
            fold_of[group[j]] = (offset + i) % folds
    return np.array([fold_of[s] for s in speakers])


def _choose_lambda(
    x: np.ndarray, y: np.ndarray, speakers: Sequence[str], folds: int, seed: int
) -> float:
    """The grid penalty with the lowest speaker-disjoint CV log-loss (ties: stronger)."""
    per_class = min(
        len({s for s, lab in zip(speakers, y, strict=True) if lab == c}) for c in (0, 1)
    )
    inner = min(folds, per_class)
    if inner < 2:
        return DEFAULT_LAMBDA
    assignment = speaker_folds(speakers, y, inner, seed + 1)
    losses = []
    for lam in LAMBDA_GRID:
        loss = 0.0
        for k in range(inner):
            train, test = assignment != k, assignment == k
            w, b = fit_logistic(x[train], y[train], lam)
            p = np.clip(sigmoid(x[test] @ w + b), 1e-12, 1 - 1e-12)
            loss -= float(np.sum(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p)))
        losses.append(loss)
    best = min(losses)
    # Ties (within rounding) go to the largest penalty: the simpler model.
    return max(
        lam for lam, loss in zip(LAMBDA_GRID, losses, strict=True) if loss <= best * (1 + 1e-9)
    )
