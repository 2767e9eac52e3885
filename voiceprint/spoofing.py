"""Anti-spoofing for the APIs: whether a probe is checked, and what the check says.

The countermeasure itself (AASIST) is the engine's (engine.spoofing): it scores how likely
audio is bona fide speech, in the embedding job (voiceprint.embedding), so that the audio is
decoded and sent to a worker once. Here the score meets its threshold, and a request meets
the defaults: the request's `anti_spoofing` wins, else the device's, else the tenant's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

import engine
from devices.models import Device
from tenancy.models import Tenant


@dataclass(frozen=True)
class SpoofCheck:
    """A probe's countermeasure score against the threshold in force."""

    score: float
    threshold: float
    model: str

    @property
    def is_spoof(self) -> bool:
        return self.score < self.threshold

    def as_dict(self) -> dict[str, Any]:
        """The reply's `spoof` object."""
        return {
            "score": self.score,
            "is_spoof": self.is_spoof,
            "threshold": self.threshold,
            "model": self.model,
        }


def spoof_check(probe: engine.EmbeddingResult) -> SpoofCheck | None:
    """The countermeasure's score of `probe`, judged at the threshold in force for its model;
    None when the probe was not checked."""
    result = probe.spoof
    if result is None:
        return None
    threshold = spoof_threshold(result.model)
    return SpoofCheck(score=round(result.score, 4), threshold=threshold, model=result.model)


def spoof_threshold(model: str) -> float:
    """VOICEPRINT_SPOOF_THRESHOLD, or the model's measured default (engine.spoofing)."""
    configured = settings.VOICEPRINT_SPOOF_THRESHOLD
    return engine.default_spoof_threshold(model) if configured is None else configured


def anti_spoofing_wanted(
    tenant: Tenant, *, requested: bool | None, device: Device | None = None
) -> bool:
    """Whether to check a probe: the request's choice, else the device's, else the tenant's."""
    if requested is not None:
        return requested
    if device is not None and device.anti_spoofing is not None:
        return device.anti_spoofing
    return tenant.anti_spoofing
