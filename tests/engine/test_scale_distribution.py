"""engine.scale_distribution: a fit of speaker embeddings that draws look-alike voices."""

from __future__ import annotations

import numpy as np
import pytest

from engine.base import l2_normalise
from engine.scale_distribution import (
    ScaleDistributionError,
    scale_distribution_fit,
    scale_distribution_load,
)


def _real_like(rng, speakers=60, segments=6, dim=32):
    """Unit vectors around speaker means in a narrow cone, like speaker embeddings."""
    centre = np.abs(rng.standard_normal(dim)) * 3
    means = centre + rng.standard_normal((speakers, dim))
    vectors = np.repeat(means, segments, axis=0) + 0.3 * rng.standard_normal(
        (speakers * segments, dim)
    )
    return l2_normalise(vectors), np.repeat(np.arange(speakers), segments)


def _same_and_other(centroids, probes):
    same = (centroids * probes).sum(axis=1)
    other = (centroids[:-1] * probes[1:]).sum(axis=1)
    return same, other


def test_drawn_voices_score_like_the_fitted_ones(tmp_path):
    rng = np.random.default_rng(0)
    vectors, labels = _real_like(rng)
    fit = scale_distribution_fit(vectors, labels, engine_name="toy", segment_seconds=2.5)
    fit.save(tmp_path / "scale-toy.npz")
    loaded = scale_distribution_load("toy", tmp_path)

    means = loaded.speaker_means(rng, 500)
    centroids, probes = loaded.centroids(means, rng), loaded.probes(means, rng)
    same, other = _same_and_other(centroids, probes)
    real_same, real_other = _same_and_other(vectors[0::6], vectors[1::6])

    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    assert loaded.speakers == 60 and loaded.segments == 360
    # The drawn cosines sit where the real ones do: not the near-zero cosines of isotropic
    # vectors, and a same speaker well above another.
    assert abs(np.median(other) - np.median(real_other)) < 0.1
    assert np.median(same) > np.median(other) + 0.1
    assert np.median(same) > np.median(real_same) - 0.1


def test_a_missing_fit_says_how_to_make_one(tmp_path):
    with pytest.raises(ScaleDistributionError, match="fit_scale_distribution"):
        scale_distribution_load("ge2e", tmp_path)
