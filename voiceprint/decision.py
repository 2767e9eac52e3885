"""The decision rule, in one place: a probe's scores against voices -> match, no_match or
uncertain; and "spoof", whatever the scores, for a probe the countermeasure flagged
(voiceprint.spoofing).

Pure (no database): the services call it for identify and verify, and the household
evaluation (voiceprint.evaluation) calls the very same functions on its trials.

With the engine's scorer (engine.scoring: cohort and calibration shipped for it):

* each voice's cosine becomes an AS-norm ``z`` and a calibrated ``probability`` that the probe
  is that voice (at even odds, from z and the probe's speech seconds and SNR);
* a voice **passes** when ``z`` reaches the z of its ``threshold``: the threshold keeps the
  false-accept rate it has on clean speech under the raw cosine rule, in every condition
  (``Scorer.z_threshold``), or the tenant's fitted operating point (``operating_point``) for
  voices that keep the engine's default threshold; **and** the cosine reaches the
  threshold less a relief that grows with the probe's noise (:func:`cosine_floor`): 0 for a
  clean probe, at most MAX_RELIEF. The cohort cannot speak for every language or channel
  (Mandarin speakers resemble each other more than the English cohort resembles them, and
  their z runs high); the floor keeps normalisation from accepting, on clean speech, what
  the plain threshold refuses. A threshold of 1.0 never passes;
* **match**: the best voice passes and no other voice comes within ``close_margin`` z of it;
  **uncertain**: two voices too close to tell apart, or the best voice misses but is still at
  least ``uncertain_probability`` likely (too little or too noisy speech for a confident
  answer); **no_match** otherwise.

Without a scorer (an engine nobody calibrated) the rule is the raw one: a voice passes when
its cosine reaches its threshold; match or no_match, never uncertain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import engine
from engine.scoring import Scorer

Outcome = Literal["match", "no_match", "uncertain", "spoof"]

#: The most the cosine a voice needs may drop below its threshold, for the noisiest probes;
#: and the estimated SNRs (engine.quality) between which the relief grows from 0 to it. The
#: balanced cosine thresholds of the household evaluation fall by 0.05-0.08 from clean 2 s
#: probes to 5-10 dB babble (docs/ACCURACY.md, raw rule), which reads about 10-13 dB.
MAX_RELIEF = 0.1
CLEAN_SNR_DB = 25.0
NOISY_SNR_DB = 10.0
OUTCOMES: tuple[Outcome, ...] = ("match", "no_match", "uncertain", "spoof")


def is_match(*, similarity: float, threshold: float) -> bool:
    """The raw rule: a match when the cosine similarity reaches the threshold."""
    return similarity >= threshold


def is_match_by_distance(*, distance: float, threshold: float) -> bool:
    """`is_match` stated in cosine distances (1 - similarity), as the Voice API does: a
    match when the distance is at most the threshold. Both sides are negated rather than
    subtracted from 1, which is the same order without the rounding of 1 - x."""
    return is_match(similarity=-distance, threshold=-threshold)


@dataclass(frozen=True)
class VoiceScore:
    """One voice's score for the probe. ``voice`` is whatever the caller scores (a Voice)."""

    voice: Any
    cosine: float
    threshold: float
    #: AS-norm score, its threshold and the calibrated probability; None without a scorer.
    z: float | None = None
    z_threshold: float | None = None
    #: The least cosine that may pass with a scorer (cosine_floor); None without one.
    cosine_floor: float | None = None
    probability: float | None = None

    @property
    def rank_score(self) -> float:
        return self.cosine if self.z is None else self.z

    @property
    def passes(self) -> bool:
        if self.z is None or self.z_threshold is None:
            return is_match(similarity=self.cosine, threshold=self.threshold)
        return self.z >= self.z_threshold and self.cosine >= self.cosine_floor


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    #: Every scored voice, best first.
    ranked: list[VoiceScore]
    #: Why the outcome is uncertain: "too_close" or "weak_evidence"; None otherwise.
    reason: str | None = None

    @property
    def matched(self) -> bool:
        return self.outcome == "match"

    @property
    def best(self) -> VoiceScore | None:
        return self.ranked[0] if self.ranked else None


def score_voices(
    voices: Sequence[Any],
    *,
    centroids: np.ndarray,
    thresholds: Sequence[float],
    probe: engine.EmbeddingResult,
    scorer: Scorer | None,
    default_threshold: float | None = None,
    operating_point: float | None = None,
    raised: Sequence[float] | None = None,
) -> list[VoiceScore]:
    """Score ``probe`` against each voice's centroid (rows of ``centroids``), best first.

    ``operating_point`` (a tenant's fitted z threshold) replaces the mapped threshold of the
    voices whose threshold is ``default_threshold``. ``raised`` holds the thresholds the
    voices are decided at when adaptation raised them (voiceprint.adaptation); each score
    then carries that one, and a voice on the operating point is raised by as much in z.
    """
    if not len(voices):
        return []
    raised = thresholds if raised is None else raised
    centroids = np.atleast_2d(np.asarray(centroids, dtype=np.float32))
    cosines = centroids @ np.asarray(probe.vector, dtype=np.float32)
    if scorer is None:
        scores = [
            VoiceScore(voice=v, cosine=float(c), threshold=float(r))
            for v, c, r in zip(voices, cosines, raised, strict=True)
        ]
    else:
        z = scorer.normalise(cosines, centroids, probe.vector)
        llr = scorer.llr(
            z, speech_seconds=probe.quality.speech_seconds, snr_db=probe.quality.snr_db
        )
        probabilities = scorer.probability(llr)
        scores = [
            VoiceScore(
                voice=v,
                cosine=float(c),
                threshold=float(r),
                z=float(zi),
                z_threshold=_z_threshold(scorer, t, r, default_threshold, operating_point),
                cosine_floor=cosine_floor(r, snr_db=probe.quality.snr_db),
                probability=float(p),
            )
            for v, c, t, r, zi, p in zip(
                voices, cosines, thresholds, raised, z, probabilities, strict=True
            )
        ]
    return sorted(scores, key=lambda s: s.rank_score, reverse=True)


def cosine_floor(threshold: float, *, snr_db: float) -> float:
    """The least cosine that passes ``threshold`` for a probe of this SNR, with a scorer."""
    noise = (CLEAN_SNR_DB - snr_db) / (CLEAN_SNR_DB - NOISY_SNR_DB)
    return threshold - MAX_RELIEF * float(np.clip(noise, 0.0, 1.0))


def _z_threshold(
    scorer: Scorer,
    threshold: float,
    raised: float,
    default: float | None,
    operating_point: float | None,
) -> float:
    if threshold >= 1.0:
        return float("inf")  # "never", as under the raw rule
    if operating_point is not None and default is not None and np.isclose(threshold, default):
        # The shift first: (point + a) - a is not always `point` in floating point, and a
        # score exactly on the operating point must pass.
        return operating_point + (scorer.z_threshold(raised) - scorer.z_threshold(threshold))
    return scorer.z_threshold(raised)


def decide(ranked: list[VoiceScore], scorer: Scorer | None) -> Decision:
    """The outcome for voices scored by :func:`score_voices` (best first)."""
    if not ranked:
        return Decision(outcome="no_match", ranked=ranked)
    best = ranked[0]
    if scorer is None:
        return Decision(outcome="match" if best.passes else "no_match", ranked=ranked)
    calibration = scorer.calibration
    if best.passes:
        runner_up = ranked[1] if len(ranked) > 1 else None
        if runner_up is not None and runner_up.z >= best.z - calibration.close_margin:
            return Decision(outcome="uncertain", ranked=ranked, reason="too_close")
        return Decision(outcome="match", ranked=ranked)
    if best.probability >= calibration.uncertain_probability:
        return Decision(outcome="uncertain", ranked=ranked, reason="weak_evidence")
    return Decision(outcome="no_match", ranked=ranked)


def refuse_spoof(decision: Decision) -> Decision:
    """A probe flagged as recorded or synthetic never matches, however well it scores: the
    outcome is "spoof" (the scores stay, for the record)."""
    return Decision(outcome="spoof", ranked=decision.ranked, reason="spoof")
