"""Files of existing embeddings for `manage.py import_embeddings`, read and checked.

Two formats (README "Importing embeddings"):

- JSON lines (`.jsonl`, `.ndjson`, `.json`): one object per voice and line,
  `{"name": "...", "embedding": [...]}` with optional `"store"` and `"labels"` (an object);
  blank lines are ignored;
- NumPy: `.npz` holding `names` (strings) and `embeddings` (n x dim), or a `.npy` matrix
  with a text file of names, one per line, in the same order.

Every row is checked before anything is written (the service writes only a file that is
valid throughout): names present and unique in their store, vectors of the engine's
dimension, finite and not zero. Errors name the line (JSON lines) or row (NumPy, from 1).
The vectors come back L2-normalised, as the engines' own embeddings are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.base import l2_normalise

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
#: Longest name a voice may have (Voice.name).
MAX_NAME_LENGTH = 128
MAX_STORE_LENGTH = 64


class EmbeddingFileError(ValueError):
    """A file that cannot be imported; the message names the line or row."""


@dataclass(frozen=True)
class EmbeddingRow:
    """One voice to import: its `line` (JSON lines) or row (NumPy), counted from 1."""

    line: int
    name: str
    vector: np.ndarray
    store: str | None = None
    labels: dict = field(default_factory=dict)


def embedding_rows_read(path: Path, *, names: Path | None = None) -> list[EmbeddingRow]:
    """The rows of `path` (format by suffix), unchecked; `names`: the names of a `.npy`."""
    if not path.is_file():
        raise EmbeddingFileError(f"{path}: no such file")
    if path.suffix in JSON_SUFFIXES:
        return _json_lines(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            missing = {"names", "embeddings"} - set(archive.files)
            if missing:
                raise EmbeddingFileError(f"{path}: no {' or '.join(sorted(missing))} array")
            return _numpy_rows(path, archive["names"].tolist(), archive["embeddings"])
    if path.suffix == ".npy":
        if names is None:
            raise EmbeddingFileError(f"{path}: a .npy needs its names (--names FILE)")
        listed = names.read_text(encoding="utf-8").splitlines()
        return _numpy_rows(path, listed, np.load(path, allow_pickle=False))
    raise EmbeddingFileError(f"{path}: not .jsonl, .ndjson, .json, .npz or .npy")


def embedding_rows_check(
    rows: list[EmbeddingRow], *, dim: int, default_store: str
) -> list[EmbeddingRow]:
    """`rows` checked for an engine of dimension `dim`, vectors normalised; the first
    problem raises EmbeddingFileError naming its line."""
    checked, seen = [], set()
    for row in rows:
        store = row.store or default_store
        if not isinstance(row.name, str) or not row.name.strip():
            raise EmbeddingFileError(f"line {row.line}: no name")
        if len(row.name) > MAX_NAME_LENGTH or len(store) > MAX_STORE_LENGTH:
            raise EmbeddingFileError(
                f"line {row.line}: name over {MAX_NAME_LENGTH} or store over "
                f"{MAX_STORE_LENGTH} characters"
            )
        if (store, row.name) in seen:
            raise EmbeddingFileError(f"line {row.line}: name {row.name!r} repeated in {store!r}")
        seen.add((store, row.name))
        vector = row.vector
        if vector.ndim != 1 or vector.shape[0] != dim:
            raise EmbeddingFileError(
                f"line {row.line}: {vector.shape[-1] if vector.ndim else 0} values, the "
                f"engine's embeddings have {dim}"
            )
        if not np.all(np.isfinite(vector)):
            raise EmbeddingFileError(f"line {row.line}: not a finite number in the embedding")
        if not np.any(vector):
            raise EmbeddingFileError(f"line {row.line}: the embedding is all zeros")
        checked.append(
            EmbeddingRow(
                # Scaled by the largest value first, so that huge values do not overflow
                # float32 (the engines' and pgvector's type) on the way.
                line=row.line, name=row.name, store=store, labels=row.labels,
                vector=l2_normalise(vector / np.max(np.abs(vector))),
            )
        )  # fmt: skip
    return checked


def _json_lines(path: Path) -> list[EmbeddingRow]:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EmbeddingFileError(f"line {number}: not JSON ({exc.msg})") from None
            if not isinstance(item, dict):
                raise EmbeddingFileError(f"line {number}: not a JSON object")
            rows.append(_json_row(number, item))
    return rows


def _json_row(number: int, item: dict) -> EmbeddingRow:
    unknown = set(item) - {"name", "embedding", "store", "labels"}
    if unknown:
        raise EmbeddingFileError(f"line {number}: unknown field(s) {', '.join(sorted(unknown))}")
    embedding, store, labels = item.get("embedding"), item.get("store"), item.get("labels", {})
    if not isinstance(embedding, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in embedding
    ):
        raise EmbeddingFileError(f"line {number}: embedding is not a list of numbers")
    if store is not None and (not isinstance(store, str) or not store):
        raise EmbeddingFileError(f"line {number}: store is not a name")
    if not isinstance(labels, dict):
        raise EmbeddingFileError(f"line {number}: labels is not an object")
    name = item.get("name")
    return EmbeddingRow(
        line=number,
        name=name if isinstance(name, str) else "",
        vector=_compact(np.asarray(embedding, dtype=np.float64)),
        store=store,
        labels=labels,
    )


def _compact(vector: np.ndarray) -> np.ndarray:
    """float32 (half the memory of a large file) when the values fit it; otherwise kept as
    they are, for the check to refuse or scale them rather than have them overflow here."""
    if vector.size and np.all(np.isfinite(vector)) and np.max(np.abs(vector)) < 1e38:
        return vector.astype(np.float32)
    return vector


def _numpy_rows(path: Path, names: list, embeddings: np.ndarray) -> list[EmbeddingRow]:
    if embeddings.ndim != 2 or not np.issubdtype(embeddings.dtype, np.number):
        raise EmbeddingFileError(f"{path}: embeddings are not a matrix of numbers")
    if len(names) != len(embeddings):
        raise EmbeddingFileError(f"{path}: {len(names)} names for {len(embeddings)} embeddings")
    return [
        EmbeddingRow(line=i, name=str(name).strip(), vector=vector)
        for i, (name, vector) in enumerate(zip(names, embeddings, strict=True), start=1)
    ]
