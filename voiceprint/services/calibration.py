"""A tenant's own operating point: the z threshold that gives a chosen false-accept rate on
the tenant's labelled audio (`manage.py calibrate`, the console's "Operating points" page).

Every recording is embedded; every pair of recordings of two different speakers is an
impostor trial, every pair of one speaker a genuine trial, each scored as the decisions
score (AS-norm z, engine.scoring: one recording stands for the enrolled voice, the other
for the probe). The threshold is the (1 - target_far) quantile of the impostor z, linearly
interpolated. AS-norm is symmetric, so a pair is one trial, whichever side is the probe.

With N impostor trials no false-accept rate below about 1/N can be measured (the quantile
would just be the highest impostor score): such a target is refused, never extrapolated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

import engine
from core.exceptions import invalid
from engine.scoring import Scorer, load_scorer
from tenancy.models import Tenant
from tenancy.scoping import owned
from voiceprint.models import OperatingPoint
from voiceprint.services.recognition import audio_embed

#: The loosest target accepted: beyond it a "false accept" is the common case.
MAX_TARGET_FAR = 0.5
#: Recordings a fit refuses to score beyond (pairs grow as its square).
MAX_RECORDINGS = 2000

#: What a recording that cannot be used is skipped for, rather than failing the fit.
SKIPPED_ERRORS = (engine.AudioDecodeError, engine.InsufficientSpeechError)


@dataclass(frozen=True)
class OperatingPointFit:
    """A stored operating point and what it was fitted from."""

    point: OperatingPoint
    #: Recordings used, and (index into the recordings given, reason) of those skipped.
    recordings: int
    skipped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def smallest_measurable_far(self) -> float:
        return 1.0 / self.point.nontarget_trials


@dataclass(frozen=True)
class Trials:
    """The z of every pair of recordings, split by same or different speaker."""

    impostor: np.ndarray
    genuine: np.ndarray
    speakers: int


def operating_point_fit(
    tenant: Tenant,
    *,
    recordings: Sequence[tuple[str, bytes]],
    target_far: float,
    engine_name: str | None = None,
    on_embedded: Callable[[], None] | None = None,
) -> OperatingPointFit:
    """Fit and store (replacing any) `tenant`'s operating point for the engine (None: the
    active one) from `recordings`, (speaker label, audio bytes) pairs, at `target_far`.

    Too-short or undecodable recordings are skipped and listed. Nothing is stored when the
    engine has no scorer, fewer than two speakers remain, or the target is too small to be
    measured on these trials. `on_embedded` is called after each recording (progress).
    """
    _check_target(target_far)
    if len(recordings) > MAX_RECORDINGS:
        raise invalid("recordings", f"at most {MAX_RECORDINGS} recordings per fit")
    name = engine_name or engine.active_engine().name
    scorer = _scorer_of(name)
    labels, vectors, skipped = _embed(recordings, name, on_embedded)
    trials = _score_pairs(scorer, labels, vectors)
    z_threshold = _threshold(trials.impostor, target_far)
    point = _store(tenant, name, target_far, trials, z_threshold)
    return OperatingPointFit(point=point, recordings=len(labels), skipped=skipped)


def operating_point_delete(tenant: Tenant, *, engine_name: str) -> bool:
    """Forget `tenant`'s operating point for `engine_name` (its voices go back to the
    engine's mapped default threshold). Whether there was one."""
    deleted, _ = owned(OperatingPoint, tenant).filter(engine_name=engine_name).delete()
    return bool(deleted)


def _check_target(target_far: float) -> None:
    if not 0.0 < target_far <= MAX_TARGET_FAR:
        raise invalid("target_far", f"must be above 0 and at most {MAX_TARGET_FAR}")


def _scorer_of(engine_name: str) -> Scorer:
    scorer = load_scorer(engine_name)
    if scorer is None:
        raise invalid(
            "engine",
            f"engine {engine_name} has no cohort/calibration; its voices use their raw "
            "cosine thresholds, so there is no operating point to fit",
        )
    return scorer


def _embed(
    recordings: Sequence[tuple[str, bytes]],
    engine_name: str,
    on_embedded: Callable[[], None] | None,
) -> tuple[list[str], np.ndarray, list[tuple[int, str]]]:
    labels, vectors, skipped = [], [], []
    for index, (label, audio) in enumerate(recordings):
        try:
            embedding = audio_embed(audio=audio, engine_name=engine_name).embedding
        except SKIPPED_ERRORS as exc:
            skipped.append((index, str(exc)))
        else:
            labels.append(label)
            vectors.append(np.asarray(embedding.vector, dtype=np.float32))
        if on_embedded is not None:
            on_embedded()
    speakers = len(set(labels))
    if speakers < 2:
        raise invalid(
            "recordings",
            f"an operating point needs usable recordings of at least 2 speakers, got {speakers}"
            f" ({len(skipped)} recording(s) skipped for too little speech or bad audio)",
        )
    return labels, np.stack(vectors), skipped


def _score_pairs(scorer: Scorer, labels: list[str], vectors: np.ndarray) -> Trials:
    """Each unordered pair once: recording j as the probe against every earlier one."""
    speaker = np.asarray(labels)
    cosines = vectors @ vectors.T
    impostor, genuine = [], []
    for j in range(1, len(vectors)):
        z = scorer.normalise(cosines[:j, j], vectors[:j], vectors[j])
        same = speaker[:j] == speaker[j]
        genuine.append(z[same])
        impostor.append(z[~same])
    return Trials(
        impostor=np.concatenate(impostor),
        genuine=np.concatenate(genuine),
        speakers=len(set(labels)),
    )


def _threshold(impostor: np.ndarray, target_far: float) -> float:
    smallest = 1.0 / len(impostor)
    if target_far < smallest:
        raise invalid(
            "target_far",
            f"{len(impostor)} different-speaker trials cannot measure a false-accept rate "
            f"below about 1/{len(impostor)} = {smallest:.2g}; add speakers or recordings, "
            f"or choose a target of at least {smallest:.2g}",
        )
    return float(np.quantile(impostor, 1.0 - target_far))


def _store(
    tenant: Tenant, engine_name: str, target_far: float, trials: Trials, z_threshold: float
) -> OperatingPoint:
    frr = float(np.mean(trials.genuine < z_threshold)) if len(trials.genuine) else None
    point, _ = OperatingPoint.objects.update_or_create(
        tenant=tenant,
        engine_name=engine_name,
        defaults={
            "z_threshold": z_threshold,
            "target_far": target_far,
            "nontarget_trials": len(trials.impostor),
            "target_trials": len(trials.genuine),
            "speakers": trials.speakers,
            "measured_frr": frr,
        },
    )
    return point
