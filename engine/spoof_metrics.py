"""The arithmetic of a spoofing countermeasure's evaluation, on scores alone.

A score is the detector's bona-fide score (higher: more likely genuine speech); a recording
is *flagged* as a spoof when its score is below the threshold, so bona fide speech is
accepted at ``score >= threshold``, the convention of `engine.evaluation.compute_eer` (whose
"same-speaker" trials are the bona fide recordings here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.evaluation import compute_eer


def flagged_rate(scores: Sequence[float] | np.ndarray, threshold: float) -> float:
    """The share of ``scores`` below ``threshold`` (flagged as spoofs)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("no scores")
    return float(np.mean(scores < threshold))


def spoof_eer(
    bonafide: Sequence[float] | np.ndarray, spoof: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Equal error rate (bona fide flagged = spoofs passed) and its threshold."""
    bonafide, spoof = np.asarray(bonafide, np.float64), np.asarray(spoof, np.float64)
    scores = np.concatenate([bonafide, spoof])
    labels = np.concatenate([np.ones(len(bonafide), bool), np.zeros(len(spoof), bool)])
    return compute_eer(scores, labels)


def threshold_for_bonafide_rate(bonafide: Sequence[float] | np.ndarray, rate: float) -> float:
    """The highest threshold that flags at most ``rate`` of the ``bonafide`` scores.

    With ``n`` scores, ``floor(rate * n)`` may be flagged: the threshold is the next score up,
    which is then the lowest one accepted.
    """
    ordered = np.sort(np.asarray(bonafide, dtype=np.float64))
    if ordered.size == 0:
        raise ValueError("no bona fide scores")
    if not 0.0 <= rate < 1.0:
        raise ValueError("rate must be in [0, 1)")
    return float(ordered[int(np.floor(rate * ordered.size))])


@dataclass(frozen=True)
class KindResult:
    """One kind of spoof (or all of them) against the bona fide recordings."""

    kind: str
    count: int
    eer: float
    eer_threshold: float
    #: Share of this kind flagged at the configured threshold.
    flagged: float


@dataclass(frozen=True)
class SpoofSummary:
    threshold: float
    bonafide_count: int
    #: Share of bona fide recordings flagged at the threshold (falsely).
    bonafide_flagged: float
    #: Per spoof kind, then "all" (every spoof together).
    kinds: tuple[KindResult, ...]

    def kind(self, name: str) -> KindResult:
        return next(k for k in self.kinds if k.kind == name)


def summarize(
    bonafide: Sequence[float] | np.ndarray,
    spoofs: Mapping[str, Sequence[float] | np.ndarray],
    *,
    threshold: float,
) -> SpoofSummary:
    """EER and flagged rates of each spoof kind in ``spoofs`` and of all of them together."""
    groups = {kind: np.asarray(s, np.float64) for kind, s in sorted(spoofs.items()) if len(s)}
    if not groups:
        raise ValueError("no spoof scores")
    if len(groups) > 1:
        groups["all"] = np.concatenate(list(groups.values()))
    kinds = tuple(
        KindResult(kind, len(s), *spoof_eer(bonafide, s), flagged=flagged_rate(s, threshold))
        for kind, s in groups.items()
    )
    return SpoofSummary(
        threshold=threshold,
        bonafide_count=len(bonafide),
        bonafide_flagged=flagged_rate(bonafide, threshold),
        kinds=kinds,
    )
