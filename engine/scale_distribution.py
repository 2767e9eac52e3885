"""A fitted distribution of an engine's embeddings, to make millions of realistic voices.

Vector search behaves very differently on real speaker embeddings and on isotropic random
vectors: real ones crowd into a narrow cone, with a few directions carrying most of the
spread, and an approximate index's recall depends on exactly that. `make bench-scale`
therefore draws its voices from a Gaussian model fitted to real embeddings of one engine
(``heads/scale-<engine>.npz``, made by ``manage.py fit_scale_distribution``):

* **between speakers**: the speaker means (the average of a speaker's unit-length segment
  embeddings) have a mean and a covariance;
* **within a speaker**: a segment's deviation from its speaker's mean, pooled over speakers.

A voice's centroid is normalise(speaker mean + the within noise averaged over its enrollment
samples); a probe of that voice is normalise(the same speaker mean + one sample's noise).
Each covariance is stored as a factor F (dim x rank, F F^T = covariance), keeping the
components that carry all but a negligible share of the variance.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.base import l2_normalise
from engine.errors import EngineError
from engine.scoring import HEADS_DIR

FORMAT = "voiceprint-scale-distribution/1"
#: Share of each covariance's variance the stored factor keeps.
KEPT_VARIANCE = 0.9999


class ScaleDistributionError(EngineError):
    """No fitted distribution for the engine, or one that is corrupt or for another."""


def scale_distribution_path(engine_name: str, heads_dir: Path = HEADS_DIR) -> Path:
    return heads_dir / f"scale-{engine_name}.npz"


@dataclass(frozen=True)
class ScaleDistribution:
    engine: str
    mean: np.ndarray
    #: Factors of the between-speaker and within-speaker covariances (dim x rank).
    between: np.ndarray
    within: np.ndarray
    speakers: int
    segments: int
    segment_seconds: float
    created: str = ""

    @property
    def dim(self) -> int:
        return len(self.mean)

    def speaker_means(self, rng: np.random.Generator, count: int) -> np.ndarray:
        noise = rng.standard_normal((count, self.between.shape[1]), dtype=np.float32)
        return self.mean + noise @ self.between.T

    def within_noise(self, rng: np.random.Generator, count: int, samples: int = 1) -> np.ndarray:
        """The within-speaker deviation averaged over `samples` independent samples."""
        noise = rng.standard_normal((count, self.within.shape[1]), dtype=np.float32)
        return (noise @ self.within.T) / np.float32(np.sqrt(samples))

    def centroids(self, speaker_means: np.ndarray, rng: np.random.Generator, *, samples: int = 3):
        """Enrolled voices of these speakers, from `samples` enrollment samples each."""
        noise = self.within_noise(rng, len(speaker_means), samples)
        return l2_normalise(speaker_means + noise)

    def probes(self, speaker_means: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One new recording of each of these speakers."""
        noise = self.within_noise(rng, len(speaker_means))
        return l2_normalise(speaker_means + noise)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            format=np.array(FORMAT),
            engine=np.array(self.engine),
            mean=self.mean.astype(np.float32),
            between=self.between.astype(np.float32),
            within=self.within.astype(np.float32),
            speakers=np.array(self.speakers),
            segments=np.array(self.segments),
            segment_seconds=np.array(self.segment_seconds),
            created=np.array(self.created),
        )


def scale_distribution_load(engine_name: str, heads_dir: Path = HEADS_DIR) -> ScaleDistribution:
    """The engine's fitted distribution; ScaleDistributionError says how to make it."""
    path = scale_distribution_path(engine_name, heads_dir)
    if not path.exists():
        raise ScaleDistributionError(
            f"no fitted embedding distribution for engine {engine_name!r} ({path}); make one "
            f"from real speech: python manage.py fit_scale_distribution FOLDER --engine "
            f"{engine_name}"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["format"]) != FORMAT or str(data["engine"]) != engine_name:
                raise ScaleDistributionError(f"{path} is not a {FORMAT} of {engine_name!r}")
            return ScaleDistribution(
                engine=engine_name,
                mean=data["mean"],
                between=data["between"],
                within=data["within"],
                speakers=int(data["speakers"]),
                segments=int(data["segments"]),
                segment_seconds=float(data["segment_seconds"]),
                created=str(data["created"]),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise ScaleDistributionError(f"{path} is unreadable ({exc}): fit it again") from exc


def _factor(covariance: np.ndarray) -> np.ndarray:
    """F with F F^T ~ covariance, from the components holding KEPT_VARIANCE of it
    (negative eigenvalues, from the between-speaker correction, are dropped)."""
    values, vectors = np.linalg.eigh(covariance)
    values, vectors = values[::-1].clip(min=0.0), vectors[:, ::-1]
    kept = int(np.searchsorted(np.cumsum(values) / values.sum(), KEPT_VARIANCE)) + 1
    return (vectors[:, :kept] * np.sqrt(values[:kept])).astype(np.float32)


def scale_distribution_fit(
    vectors: np.ndarray, labels: np.ndarray, *, engine_name: str, segment_seconds: float
) -> ScaleDistribution:
    """Fit the distribution to unit-length segment embeddings labelled by speaker (at least
    two segments per speaker; speakers with one are left out)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    usable = counts[inverse] >= 2
    vectors, inverse = vectors[usable], np.unique(inverse[usable], return_inverse=True)[1]
    counts = np.bincount(inverse)
    if len(counts) < 2:
        raise ScaleDistributionError("at least two speakers with two segments each are needed")
    means = np.zeros((len(counts), vectors.shape[1]))
    np.add.at(means, inverse, vectors)
    means /= counts[:, None]
    deviations = vectors - means[inverse]
    within = deviations.T @ deviations / (len(vectors) - len(counts))
    # The observed speaker means still hold their segments' noise (within / n): take it out,
    # or every drawn speaker would sit farther from the others than real ones do.
    between = np.cov(means, rowvar=False) - within * float(np.mean(1.0 / counts))
    return ScaleDistribution(
        engine=engine_name,
        mean=means.mean(axis=0).astype(np.float32),
        between=_factor(between),
        within=_factor(within),
        speakers=len(counts),
        segments=len(vectors),
        segment_seconds=segment_seconds,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
