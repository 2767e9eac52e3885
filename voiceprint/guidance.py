"""Enrollment guidance, in one place: which recordings may become enrollment samples (the
quality gates), and what a voice's samples still lack (progress and issues).

Pure (no database): services call the gate before storing anything, selectors build the
summary from stored samples. The limits are settings (config/settings.py, measured in
docs/ENROLLMENT.md); the softer levels at which a stored sample is only warned about are
the constants below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

import engine
from core.exceptions import ApiError, ErrorCode
from voiceprint.spoofing import spoof_check

#: A stored sample is reported as noisy below this estimated SNR: between the gate (12.5
#: dB) and here lie most samples in 10 dB babble that pass it, which raise strangers'
#: accepts in noise (docs/ENROLLMENT.md); 20 dB babble (reads 17.5) costs little.
NOISY_SNR_DB = 15.0
#: ... and as clipped above this share of samples at full scale: up to 3% measured as
#: harmless, 10% not (docs/ENROLLMENT.md); the gate refuses above 5%.
CLIPPED_SHARE = 0.03


@dataclass(frozen=True)
class SampleFacts:
    """What the guidance needs of one stored sample (None: not measured)."""

    speech_seconds: float
    snr_db: float | None = None
    clipping: float | None = None
    agreement: float | None = None
    #: An adaptation sample (from a confident match): it does not count as enrolled speech.
    adaptation: bool = False


@dataclass(frozen=True)
class EnrollmentSummary:
    #: Net speech of the voice's enrollment samples, and what it should reach.
    speech_seconds: float
    target_speech_seconds: float
    #: speech_seconds / target_speech_seconds, at most 1.
    progress: float
    #: What would help, in words ("add 3 s more speech", "noisy: SNR 9 dB in sample #1").
    issues: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "speech_seconds": self.speech_seconds,
            "target_speech_seconds": self.target_speech_seconds,
            "progress": self.progress,
            "issues": list(self.issues),
        }


def quality_refusal(quality: engine.ProbeQuality) -> str | None:
    """Why a recording must not become an enrollment sample, or None when it may."""
    if quality.speech_seconds < settings.VOICEPRINT_ENROLL_MIN_SPEECH_SECONDS:
        return (
            f"too short: {quality.speech_seconds:.1f} s of speech, an enrollment sample needs "
            f"at least {settings.VOICEPRINT_ENROLL_MIN_SPEECH_SECONDS:g} s"
        )
    if quality.snr_db < settings.VOICEPRINT_ENROLL_MIN_SNR_DB:
        return (
            f"too noisy: SNR {quality.snr_db:.0f} dB, an enrollment sample needs at least "
            f"{settings.VOICEPRINT_ENROLL_MIN_SNR_DB:g} dB; record in a quieter place"
        )
    if quality.clipping > settings.VOICEPRINT_ENROLL_MAX_CLIPPING:
        return (
            f"too clipped: {quality.clipping:.1%} of the samples at full scale, at most "
            f"{settings.VOICEPRINT_ENROLL_MAX_CLIPPING:.1%} allowed; lower the input gain"
        )
    return None


def quality_gate(quality: engine.ProbeQuality) -> None:
    """Refuse (40003, with the reason) a recording that would not help an enrollment."""
    reason = quality_refusal(quality)
    if reason is not None:
        raise ApiError(ErrorCode.TOO_LITTLE_SPEECH, f"enrollment sample refused: {reason}")


def spoof_gate(embedding: engine.EmbeddingResult) -> None:
    """Refuse (40003) a sample the countermeasure checked and flagged
    (VOICEPRINT_ENROLL_ANTI_SPOOFING): a recording or a clone would make its voice the
    attacker's."""
    check = spoof_check(embedding)
    if check is not None and check.is_spoof:
        raise ApiError(
            ErrorCode.TOO_LITTLE_SPEECH,
            f"enrollment sample refused: it sounds recorded or synthetic (anti-spoofing score "
            f"{check.score:g} below {check.threshold:g}, {check.model}); record the person "
            "speaking live",
        )


def enrollment_summary(
    samples: Sequence[SampleFacts], *, agreement_threshold: float
) -> EnrollmentSummary:
    """Progress of enrollment ``samples`` (in the order of ``voices/{id}/audio?sample=``)
    towards the target, and their issues; a sample agreeing with the others less than
    ``agreement_threshold`` (the voice's threshold) may be someone else."""
    target = settings.VOICEPRINT_ENROLL_TARGET_SECONDS
    speech = round(sum(s.speech_seconds for s in samples if not s.adaptation), 2)
    issues = []
    missing = target - speech
    if missing > 0:
        issues.append(f"add {math.ceil(missing)} s more speech")
    for index, sample in enumerate(samples):
        issues.extend(_sample_issues(index, sample, agreement_threshold))
    return EnrollmentSummary(
        speech_seconds=speech,
        target_speech_seconds=target,
        progress=round(min(speech / target, 1.0), 3),
        issues=issues,
    )


def _sample_issues(index: int, sample: SampleFacts, agreement_threshold: float) -> list[str]:
    where = f"sample #{index}"
    issues = []
    if sample.snr_db is not None and sample.snr_db < NOISY_SNR_DB:
        issues.append(f"noisy: SNR {sample.snr_db:.0f} dB in {where}; a quieter recording helps")
    if sample.clipping is not None and sample.clipping > CLIPPED_SHARE:
        issues.append(f"clipped: {sample.clipping:.1%} of {where} at full scale; lower the gain")
    if sample.agreement is not None and sample.agreement < agreement_threshold:
        issues.append(
            f"{where} does not agree with the others (score {sample.agreement:.3f}): if it is "
            f"someone else, remove it"
        )
    return issues


def lookalike_issue(*, voice_id: str, name: str, score: float) -> str:
    """The issue of a voice that an existing one would already match."""
    return (
        f"sounds like voice {voice_label(voice_id, name)} (score {score:.3f}): identify may "
        f"confuse them"
    )


def voice_label(voice_id: str, name: str) -> str:
    """A voice as messages name it: its id, and its name when it has one."""
    return f'{voice_id} "{name}"' if name else voice_id
