"""The one interface every speaker engine implements."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np


class SpeakerEngine(abc.ABC):
    """Turns a 16 kHz mono float32 waveform (speech only) into a speaker embedding.

    Implementations are loaded once per process and must be safe to call from several
    threads at once (the web server runs requests in threads).
    """

    #: Registry name stored beside every embedding ("ge2e", "eres2netv2", "campplus"...).
    name: str
    #: Embedding dimension.
    dim: int
    #: Where the weights came from (a path, "resemblyzer wheel", ...), for /healthz.
    source: str

    @abc.abstractmethod
    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """One waveform -> one L2-normalised float32 vector of shape (dim,)."""

    def runtime_status(self) -> dict[str, Any]:
        """How the engine runs, for /healthz (runtime, provider, precision...)."""
        return {"runtime": "torch"}

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Several waveforms -> (n, dim) L2-normalised float32. Override to batch for speed."""
        if not waveforms:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.embed(w) for w in waveforms])


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise along the last axis, as float32; a zero vector stays zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
