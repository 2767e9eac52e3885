"""Recognition: audio to embedding, and the 1:1 / 1:N decisions on it.

The decision rule lives here once (`is_match`): a probe matches a voice when their cosine
similarity reaches the threshold. The Voiceprint API states it in similarities; the Voice
API (voiceprint.voice_api.services) states the same rule in distances (`is_match_by_distance`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from django.db.models import F
from django.utils import timezone

import engine
from config import observability
from core.exceptions import conflict
from devices.models import Device
from interrupts.selectors import role_interrupt_get
from tenancy.models import Tenant
from tenancy.scoping import owned
from voiceprint.embedding import compute_embedding
from voiceprint.models import Voice
from voiceprint.selectors import voice_list_nearest
from voiceprint.services.storage import wav_encode

# --- audio to embedding -----------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddedAudio:
    """Audio as it is kept (16 kHz mono 16-bit WAV) and its embedding."""

    wav: bytes
    embedding: engine.EmbeddingResult


def audio_embed(*, audio: bytes, engine_name: str | None = None) -> EmbeddedAudio:
    """Decode here (bad audio is refused before any job is queued), embed in the worker
    with the named engine (None: the active one)."""
    wav = wav_encode(engine.decode_audio(audio))
    return EmbeddedAudio(wav=wav, embedding=compute_embedding(wav, engine_name))


def voice_engine_check(voice: Voice, *, engine_name: str) -> None:
    """Refuse (40900) to compare or mix `voice` with an embedding of another engine."""
    if voice.engine_name != engine_name:
        raise conflict(
            f"voice {voice.voice_id} was enrolled with engine {voice.engine_name!r} but the "
            f"active engine is {engine_name!r}; run `python manage.py reembed` to recompute it"
        )


# --- the decision rule ------------------------------------------------------------------


def cosine_similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Of two L2-normalised embeddings (every engine's and every centroid are)."""
    return float(np.dot(np.asarray(first, dtype=np.float32), np.asarray(second, dtype=np.float32)))


def is_match(*, similarity: float, threshold: float) -> bool:
    """The one decision rule: a match when the similarity reaches the threshold."""
    return similarity >= threshold


def is_match_by_distance(*, distance: float, threshold: float) -> bool:
    """`is_match` stated in cosine distances (1 - similarity), as the Voice API does: a
    match when the distance is at most the threshold. Both sides are negated rather than
    subtracted from 1, which is the same order without the rounding of 1 - x."""
    return is_match(similarity=-distance, threshold=-threshold)


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started` (a time.perf_counter() value), for processing_time_ms."""
    return round((time.perf_counter() - started) * 1000)


# --- 1:N among a device's voices --------------------------------------------------------


@dataclass
class Candidate:
    voice: Voice
    score: float

    @property
    def passes(self) -> bool:
        """Whether the score reaches this voice's threshold."""
        return is_match(similarity=self.score, threshold=self.voice.threshold)


@dataclass
class VoiceIdentifyResult:
    matched: bool
    best: Candidate | None
    candidates: list[Candidate]
    model: str
    interrupt: bool | None
    processing_time_ms: int
    quality: engine.ProbeQuality
    threshold: float | None = None


def voice_identify(
    tenant: Tenant, *, device: Device, audio: bytes, agent_id: str | None, top_k: int
) -> VoiceIdentifyResult:
    """1:N among the voices bound to `device`; updates the device's stats atomically."""
    started = time.perf_counter()
    bound = owned(Voice, tenant).filter(bindings__device=device)
    probe = audio_embed(audio=audio).embedding
    nearest = voice_list_nearest(bound, vector=probe.vector, engine_name=probe.model, top_k=top_k)
    # No voice of this engine: only then is it worth asking whether others are bound.
    stale = None if nearest else bound.values_list("engine_name", flat=True).first()
    if stale is not None:
        raise conflict(
            f"the voices of device {device.device_id} were enrolled with engine {stale!r} "
            f"but the active engine is {probe.model!r}; run `python manage.py reembed`"
        )
    candidates = [Candidate(voice, 1.0 - float(voice.distance)) for voice in nearest]
    best = candidates[0] if candidates else None
    matched = best is not None and best.passes
    _count_identify(device, matched)
    observability.count_identify(probe.model, "device", matched)
    interrupt = None
    if agent_id:
        role = best.voice.role if matched else None
        interrupt = role_interrupt_get(tenant, agent_id=agent_id, role=role)
    return VoiceIdentifyResult(
        matched=matched,
        best=best,
        candidates=candidates,
        model=probe.model,
        interrupt=interrupt,
        threshold=best.voice.threshold if best else None,
        processing_time_ms=elapsed_ms(started),
        quality=probe.quality,
    )


def _count_identify(device: Device, matched: bool) -> None:
    # One UPDATE with F() expressions: concurrent requests never lose a count.
    Device.objects.filter(pk=device.pk).update(
        identify_count=F("identify_count") + 1,
        matched_count=F("matched_count") + (1 if matched else 0),
        last_identify_at=timezone.now(),
    )


# --- 1:1 against one voice --------------------------------------------------------------


@dataclass
class VoiceVerifyResult:
    score: float
    verified: bool
    model: str
    processing_time_ms: int
    quality: engine.ProbeQuality


def voice_verify(voice: Voice, *, audio: bytes) -> VoiceVerifyResult:
    started = time.perf_counter()
    probe = audio_embed(audio=audio).embedding
    voice_engine_check(voice, engine_name=probe.model)
    score = cosine_similarity(voice.centroid, probe.vector)
    return VoiceVerifyResult(
        score=score,
        verified=is_match(similarity=score, threshold=voice.threshold),
        model=probe.model,
        processing_time_ms=elapsed_ms(started),
        quality=probe.quality,
    )
