"""Safe adaptation, the rule in one place: which recognised probe may join its voice as an
adaptation sample, how many a voice keeps, and how its centroid is formed.

Pure (no database): the service (when a tenant turns adaptation on) and the household
simulation (voiceprint.adaptation_evaluation) call the very same functions.

* a probe **qualifies** when the decision (voiceprint.decision) is ``match`` with a
  calibrated probability of at least ``min_probability``, and the probe is long, clean and
  unclipped enough (``min_speech_seconds``, ``min_snr_db``, ``max_clipping``, on the
  engine's ProbeQuality). It is added to the matched voice, which is the rule's risk: a
  confident wrong match teaches the wrong voice. Without a calibration (no probability)
  nothing qualifies;
* a voice keeps at most ``max_samples`` adaptation samples, oldest first: when full, the
  oldest adaptation sample makes room. Enrollment samples are never replaced or counted;
* the **centroid** is the normalised weighted mean of the enrollment and the adaptation
  embeddings, every sample weighing the same until the adaptation samples would hold more
  than ``max_share`` of the total weight; from there they share ``max_share`` between them.
  ``max_share=1`` is the plain mean, as enrollment forms it;
* the voice's **threshold** rises by ``threshold_raise`` times that share. Short probe
  embeddings pull a centroid towards everyone: on the household scenario every adapting
  rule raised strangers' scores with the members', so that at an unchanged threshold
  stranger false accepts rose (docs/ADAPTATION.md). The raise takes that back.

How the values were chosen, and what adaptation did on the household scenario:
docs/ADAPTATION.md (``make bench-adaptation``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from engine.base import l2_normalise
from engine.quality import ProbeQuality
from voiceprint.decision import Decision

T = TypeVar("T")


@dataclass(frozen=True)
class AdaptationRule:
    # Values chosen on the household scenario of the `fit` speakers, reported on the
    # `report` ones (docs/ADAPTATION.md). Stricter gates (0.999 and 20 dB) adapted on the
    # easy probes only: a third of the samples, and no better separation on `report`.
    #: Calibrated probability (voiceprint.decision) the match must reach: 0.99 keeps 80% of
    #: members' matches and a third of strangers' (most matches are above 0.98).
    min_probability: float = 0.99
    #: Probe quality (engine.quality): speech after silence removal (a 2 s device probe
    #: holds 1.5-2 s), estimated SNR (it reads 23 dB on a clean 2 s probe, 11 dB in 10 dB
    #: babble: 10 keeps most of 10 dB babble and drops worse), share of clipped samples.
    min_speech_seconds: float = 1.5
    min_snr_db: float = 10.0
    max_clipping: float = 0.001
    #: Adaptation samples a voice keeps (enrollment samples not counted).
    max_samples: int = 10
    #: The most of the centroid's weight the adaptation samples may hold together: the
    #: plain mean (1.0) let the stranger accepts rise more for the same member gain.
    max_share: float = 0.5
    #: Threshold (cosine) added at a full adaptation share, times the share the voice's
    #: adaptation samples hold: fitted on `fit` to keep stranger false accepts where they
    #: were before adaptation.
    threshold_raise: float = 0.05


DEFAULT_RULE = AdaptationRule()


def adaptation_voice(
    decision: Decision, quality: ProbeQuality, *, rule: AdaptationRule = DEFAULT_RULE
) -> Any | None:
    """The voice (``decision.best.voice``) the probe should be added to; None when the
    probe does not qualify (module docstring)."""
    best = decision.best
    if decision.outcome != "match" or best is None or best.probability is None:
        return None
    if best.probability < rule.min_probability:
        return None
    if not quality_qualifies(quality, rule=rule):
        return None
    return best.voice


def quality_qualifies(quality: ProbeQuality, *, rule: AdaptationRule = DEFAULT_RULE) -> bool:
    return (
        quality.speech_seconds >= rule.min_speech_seconds
        and quality.snr_db >= rule.min_snr_db
        and quality.clipping <= rule.max_clipping
    )


def samples_to_replace(existing: Sequence[T], *, rule: AdaptationRule = DEFAULT_RULE) -> list[T]:
    """The adaptation samples to remove so that one more fits: the oldest beyond the cap.
    ``existing`` is the voice's adaptation samples only, oldest first."""
    excess = len(existing) + 1 - rule.max_samples
    return list(existing[: max(excess, 0)])


def samples_after_adding(
    existing: Sequence[T], sample: T, *, rule: AdaptationRule = DEFAULT_RULE
) -> list[T]:
    """``existing`` (oldest first) with ``sample`` added and the oldest beyond the cap gone."""
    dropped = len(samples_to_replace(existing, rule=rule))
    return [*existing[dropped:], sample]


def adaptation_share(enrolled: int, adapted: int, *, rule: AdaptationRule = DEFAULT_RULE) -> float:
    """The share of a voice's centroid that its adaptation samples hold (0 without any)."""
    if enrolled < 1:
        raise ValueError("a voice needs at least one enrollment sample")
    return min(adapted / (enrolled + adapted), rule.max_share)


def adapted_threshold(
    threshold: float, *, enrolled: int, adapted: int, rule: AdaptationRule = DEFAULT_RULE
) -> float:
    """The threshold a voice is decided at with ``adapted`` adaptation samples."""
    return raised_threshold(
        threshold, share=adaptation_share(enrolled, adapted, rule=rule), rule=rule
    )


def raised_threshold(
    threshold: float, *, share: float, rule: AdaptationRule = DEFAULT_RULE
) -> float:
    """``threshold`` raised for a voice whose adaptation samples hold ``share`` of its
    centroid. A threshold below 1 stays below 1 (1 means "never"), one of 1 or more is kept."""
    if threshold >= 1.0:
        return threshold
    raised = threshold + rule.threshold_raise * share
    return min(raised, max(threshold, 0.999))


def adapted_centroid(
    enrollment: np.ndarray,
    adaptation: np.ndarray | Sequence[np.ndarray] = (),
    *,
    rule: AdaptationRule = DEFAULT_RULE,
) -> np.ndarray:
    """The L2-normalised centroid of a voice's enrollment embeddings (rows) and adaptation
    embeddings, weighted as the module docstring says."""
    enrollment = np.atleast_2d(np.asarray(enrollment, dtype=np.float64))
    if not len(enrollment):
        raise ValueError("a voice needs at least one enrollment sample")
    total = enrollment.sum(axis=0)
    if len(adaptation):
        adapted = np.atleast_2d(np.asarray(adaptation, dtype=np.float64))
        n_enrolled, n_adapted = len(enrollment), len(adapted)
        share = adaptation_share(n_enrolled, n_adapted, rule=rule)
        # Enrollment keeps 1 - share of the weight: each adaptation sample then weighs
        # share / (1 - share) * n_enrolled / n_adapted of an enrollment sample.
        weight = share / (1.0 - share) * n_enrolled / n_adapted
        total = total + weight * adapted.sum(axis=0)
    return l2_normalise(total)
