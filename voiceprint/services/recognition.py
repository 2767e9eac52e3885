"""Recognition: audio to embedding, and the 1:1 / 1:N decisions on it.

The decision rule itself lives in voiceprint.decision (shared with the household
evaluation); this module feeds it a device's voices or one voice, and acts on the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

import engine
from audit.services import audit_record
from config import observability
from core.exceptions import conflict
from devices.models import Device
from engine.scoring import load_scorer
from interrupts.selectors import agent_uncertain_interrupt_get, role_interrupt_get
from tenancy.models import Tenant
from tenancy.scoping import owned
from voiceprint.adaptation import raised_threshold
from voiceprint.decision import (
    OUTCOMES,
    Decision,
    Outcome,
    VoiceScore,
    decide,
    refuse_spoof,
    score_voices,
)
from voiceprint.embedding import compute_embedding
from voiceprint.models import IdentifyOutcomeCount, Voice
from voiceprint.selectors import operating_point_get, voice_list_nearest
from voiceprint.services.adaptation import probe_adapt
from voiceprint.services.storage import wav_encode
from voiceprint.spoofing import SpoofCheck, spoof_check
from voiceprint.thresholds import default_similarity_threshold

# --- audio to embedding -----------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddedAudio:
    """Audio as it is kept (16 kHz mono 16-bit WAV) and its embedding."""

    wav: bytes
    embedding: engine.EmbeddingResult


def audio_embed(
    *, audio: bytes, engine_name: str | None = None, anti_spoofing: bool = False
) -> EmbeddedAudio:
    """Decode here (bad audio is refused before any job is queued), embed in the worker
    with the named engine (None: the active one), and score it with the spoofing
    countermeasure in the same job when asked."""
    wav = wav_encode(engine.decode_audio(audio))
    embedding = compute_embedding(wav, engine_name, anti_spoofing=anti_spoofing)
    return EmbeddedAudio(wav=wav, embedding=embedding)


def voice_engine_check(voice: Voice, *, engine_name: str) -> None:
    """Refuse (40900) to compare or mix `voice` with an embedding of another engine."""
    if voice.engine_name != engine_name:
        raise conflict(
            f"voice {voice.voice_id} was enrolled with engine {voice.engine_name!r} but the "
            f"active engine is {engine_name!r}; run `python manage.py reembed` to recompute it"
        )


# --- scores --------------------------------------------------------------------------------


def cosine_similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Of two L2-normalised embeddings (every engine's and every centroid are)."""
    return float(np.dot(np.asarray(first, dtype=np.float32), np.asarray(second, dtype=np.float32)))


def voice_centroids(voices: Sequence[Voice]) -> np.ndarray:
    """The voices' centroids as rows of one float32 matrix (no rows for no voices)."""
    return np.array([np.asarray(v.centroid, dtype=np.float32) for v in voices], dtype=np.float32)


def voices_score(
    tenant: Tenant, voices: Sequence[Voice], *, probe: engine.EmbeddingResult
) -> list[VoiceScore]:
    """``voices`` scored for ``probe`` with its engine's scorer (if it has one), best first;
    an adapted voice at its raised threshold (voiceprint.adaptation)."""
    return score_voices(
        voices,
        centroids=voice_centroids(voices),
        thresholds=[v.threshold for v in voices],
        probe=probe,
        scorer=load_scorer(probe.model),
        default_threshold=default_similarity_threshold(probe.model),
        operating_point=operating_point_get(tenant, engine_name=probe.model),
        raised=[raised_threshold(v.threshold, share=v.adaptation_share) for v in voices],
    )


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started` (a time.perf_counter() value), for processing_time_ms."""
    return round((time.perf_counter() - started) * 1000)


# --- 1:N among a device's voices --------------------------------------------------------

#: Voices scored per identify at least (the reply shows `top_k` of them): enough for the
#: normalised ranking to reorder the nearest by cosine.
SCORED_VOICES = 8


@dataclass
class VoiceIdentifyResult:
    decision: Decision
    #: The first `top_k` of decision.ranked.
    candidates: list[VoiceScore]
    model: str
    interrupt: bool | None
    processing_time_ms: int
    quality: engine.ProbeQuality
    #: The countermeasure's verdict, when the probe was checked.
    spoof: SpoofCheck | None = None

    @property
    def matched(self) -> bool:
        return self.decision.matched

    @property
    def best(self) -> VoiceScore | None:
        return self.decision.best


def voice_identify(
    tenant: Tenant,
    *,
    device: Device,
    audio: bytes,
    agent_id: str | None,
    top_k: int,
    anti_spoofing: bool = False,
) -> VoiceIdentifyResult:
    """1:N among the voices bound to `device`; updates the device's stats atomically. With
    `anti_spoofing`, a probe the countermeasure flags is "spoof" and never matches."""
    started = time.perf_counter()
    embedded = audio_embed(audio=audio, anti_spoofing=anti_spoofing)
    probe = embedded.embedding
    decision, spoof = _spoof_judged(
        _device_decision(tenant, device=device, probe=probe, top_k=top_k), probe
    )
    probe_adapt(decision, wav=embedded.wav, probe=probe)
    # One transaction, so one commit (one WAL flush) for the counts and the audit event:
    # three commits made these writes cost more than the embedding on a busy machine.
    with transaction.atomic():
        _count_identify(device, decision.outcome)
        audit_record(
            tenant, action="identify", object_type="device", object_id=device.device_id,
            outcome=decision.outcome,
            details={"voice_id": decision.best.voice.voice_id if decision.matched else None},
        )  # fmt: skip
    observability.count_identify(probe.model, "device", decision.matched)
    return _identify_result(tenant, decision, probe=probe, agent_id=agent_id, top_k=top_k,
                            started=started, spoof=spoof)  # fmt: skip


def voice_identify_provisional(
    tenant: Tenant,
    *,
    device: Device,
    audio: bytes,
    agent_id: str | None,
    anti_spoofing: bool = False,
) -> VoiceIdentifyResult:
    """The decision `voice_identify` would take on `audio`, and nothing else: no device
    statistics, no audit event, no adaptation. A stream's partial results (the utterance's
    final result is a `voice_identify`, counted once)."""
    started = time.perf_counter()
    probe = audio_embed(audio=audio, anti_spoofing=anti_spoofing).embedding
    decision, spoof = _spoof_judged(
        _device_decision(tenant, device=device, probe=probe, top_k=1), probe
    )
    return _identify_result(tenant, decision, probe=probe, agent_id=agent_id, top_k=1,
                            started=started, spoof=spoof)  # fmt: skip


def _spoof_judged(
    decision: Decision, probe: engine.EmbeddingResult
) -> tuple[Decision, SpoofCheck | None]:
    """The decision, "spoof" instead when the probe was checked and flagged; the check."""
    check = spoof_check(probe)
    return (refuse_spoof(decision) if check and check.is_spoof else decision), check


def _device_decision(
    tenant: Tenant, *, device: Device, probe: engine.EmbeddingResult, top_k: int
) -> Decision:
    bound = owned(Voice, tenant).filter(bindings__device=device)
    nearest = voice_list_nearest(
        bound,
        vector=probe.vector,
        engine_name=probe.model,
        top_k=max(top_k, SCORED_VOICES),
        exact=True,  # a device's few voices: compared one by one, never missed
    )
    # No voice of this engine: only then is it worth asking whether others are bound.
    stale = None if nearest else bound.values_list("engine_name", flat=True).first()
    if stale is not None:
        raise conflict(
            f"the voices of device {device.device_id} were enrolled with engine {stale!r} "
            f"but the active engine is {probe.model!r}; run `python manage.py reembed`"
        )
    ranked = voices_score(tenant, nearest, probe=probe)
    return decide(ranked, load_scorer(probe.model))


def _identify_result(
    tenant: Tenant,
    decision: Decision,
    *,
    probe: engine.EmbeddingResult,
    agent_id: str | None,
    top_k: int,
    started: float,
    spoof: SpoofCheck | None,
) -> VoiceIdentifyResult:
    return VoiceIdentifyResult(
        decision=decision,
        candidates=decision.ranked[:top_k],
        model=probe.model,
        interrupt=_interrupt(tenant, agent_id, decision) if agent_id else None,
        processing_time_ms=elapsed_ms(started),
        quality=probe.quality,
        spoof=spoof,
    )


def _interrupt(tenant: Tenant, agent_id: str, decision: Decision) -> bool:
    """Whether the speaker may interrupt the agent: the matched role's setting, the agent's
    setting for uncertain speakers, never for an unknown one or a spoofed probe."""
    if decision.outcome == "spoof":
        return False
    if decision.outcome == "uncertain":
        return agent_uncertain_interrupt_get(tenant, agent_id=agent_id)
    role = decision.best.voice.role if decision.matched else None
    return role_interrupt_get(tenant, agent_id=agent_id, role=role)


def _count_identify(device: Device, outcome: Outcome) -> None:
    """Count one identification of `outcome` on the device (identify_count, matched_count,
    last_identify_at) and in its count of this hour (IdentifyOutcomeCount), in one statement.

    Both are additions in the database (UPDATE ... + 1; INSERT ... ON CONFLICT DO UPDATE):
    concurrent calls never lose a count, and the first call of an hour creates the hour's
    row without failing on the unique (device, hour), which a read-then-write would risk.
    """
    if outcome not in OUTCOMES:  # the column name below comes from it
        raise ValueError(f"unknown identify outcome {outcome!r}")
    quote = connection.ops.quote_name
    devices, hours = quote(Device._meta.db_table), quote(IdentifyOutcomeCount._meta.db_table)
    column = quote(outcome)
    counts = [1 if name == outcome else 0 for name in OUTCOMES]
    columns = ", ".join(quote(name) for name in OUTCOMES)
    values = ", ".join(["%s"] * (2 + len(OUTCOMES)))  # device, hour, one count per outcome
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH counted AS (UPDATE {devices} SET identify_count = identify_count + 1, "
            f"matched_count = matched_count + %s, last_identify_at = %s WHERE id = %s) "
            f"INSERT INTO {hours} (device_id, hour, {columns}) VALUES ({values}) "
            f"ON CONFLICT (device_id, hour) DO UPDATE SET {column} = {hours}.{column} + 1",
            [1 if outcome == "match" else 0, now, device.pk, device.pk, hour, *counts],
        )


# --- 1:1 against one voice --------------------------------------------------------------


@dataclass
class VoiceVerifyResult:
    decision: Decision
    model: str
    processing_time_ms: int
    quality: engine.ProbeQuality
    spoof: SpoofCheck | None = None

    @property
    def score(self) -> VoiceScore:
        return self.decision.ranked[0]

    @property
    def verified(self) -> bool:
        return self.decision.matched


def voice_verify(voice: Voice, *, audio: bytes, anti_spoofing: bool = False) -> VoiceVerifyResult:
    """1:1: the same rule as identify, with one voice (never "too close")."""
    started = time.perf_counter()
    embedded = audio_embed(audio=audio, anti_spoofing=anti_spoofing)
    probe = embedded.embedding
    voice_engine_check(voice, engine_name=probe.model)
    ranked = voices_score(voice.tenant, [voice], probe=probe)
    decision, spoof = _spoof_judged(decide(ranked, load_scorer(probe.model)), probe)
    probe_adapt(decision, wav=embedded.wav, probe=probe)
    audit_record(
        voice.tenant, action="verify", object_type="voice", object_id=voice.voice_id,
        outcome=decision.outcome,
    )  # fmt: skip
    return VoiceVerifyResult(
        decision=decision,
        model=probe.model,
        processing_time_ms=elapsed_ms(started),
        quality=probe.quality,
        spoof=spoof,
    )
