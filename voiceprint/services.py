"""Writes: enrollment, samples, bindings, deletion; and the 1:1 / 1:N decisions."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import soundfile
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

import engine
from config import observability
from core.exceptions import conflict
from devices.models import Device
from interrupts.selectors import may_interrupt
from roles.models import Role
from roles.selectors import default_role
from tenancy.models import Tenant, new_public_id
from tenancy.scoping import owned
from voiceprint.embedding import compute_embedding
from voiceprint.models import DEFAULT_STORE, Voice, VoiceBinding, VoiceSample
from voiceprint.selectors import nearest_voices
from voiceprint.thresholds import default_similarity_threshold

logger = logging.getLogger(__name__)

#: Marks an update field that was not given (None means "unset it").
UNCHANGED = object()


@dataclass(frozen=True)
class EmbeddedAudio:
    """Audio as it is kept (16 kHz mono 16-bit WAV) and its embedding."""

    wav: bytes
    embedding: engine.EmbeddingResult


def embed(audio: bytes, engine_name: str | None = None) -> EmbeddedAudio:
    """Decode here (bad audio is refused before any job is queued), embed in the worker."""
    wav = to_wav(engine.decode_audio(audio))
    return EmbeddedAudio(wav=wav, embedding=compute_embedding(wav, engine_name))


def to_wav(waveform: np.ndarray, sample_rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def centroid_of(embeddings: list[np.ndarray]) -> np.ndarray:
    mean = np.mean(np.stack(embeddings), axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


# --- enrollment -------------------------------------------------------------------------


def enroll_voice(
    *,
    tenant: Tenant,
    audio: bytes,
    devices: list[Device] = (),
    role: Role | None = None,
    threshold: float | None = None,
    name: str = "",
    store: str = DEFAULT_STORE,
    labels: dict | None = None,
    engine_name: str | None = None,
) -> Voice:
    """Create a voice from one recording and bind it to `devices` and `role` (the
    tenant's default role when None)."""
    _check_capacity(devices, adding=1)  # cheap refusal before the expensive embedding
    embedded = embed(audio, engine_name)
    result = embedded.embedding
    with stored_audio(tenant, embedded.wav) as audio_name, transaction.atomic():
        _lock_and_check_capacity(devices, adding=1)
        voice = Voice.objects.create(
            tenant=tenant,
            name=name,
            role=role or default_role(tenant),
            threshold=default_similarity_threshold(result.model)
            if threshold is None
            else threshold,
            store=store,
            labels=labels or {},
            model=result.model,
            dim=result.dim,
            centroid=result.vector,
        )
        _save_sample(voice, embedded.embedding, audio_name)
        VoiceBinding.objects.bulk_create(VoiceBinding(voice=voice, device=d) for d in devices)
    return voice


def add_sample(voice: Voice, audio: bytes) -> Voice:
    """Add a recording; the voiceprint becomes the normalised mean of all samples."""
    embedded = embed(audio)
    _require_same_engine(voice, embedded.embedding.model)
    with stored_audio(voice.tenant, embedded.wav) as audio_name, transaction.atomic():
        voice = Voice.objects.select_for_update().get(pk=voice.pk)
        _require_same_engine(voice, embedded.embedding.model)
        _save_sample(voice, embedded.embedding, audio_name)
        _refresh_centroid(voice)
    return voice


@contextmanager
def stored_audio(tenant: Tenant, wav: bytes) -> Iterator[str]:
    """Store enrollment audio; remove it again if the block that records it fails."""
    name = default_storage.save(f"voices/{tenant.pk}/{new_public_id()}.wav", ContentFile(wav))
    try:
        yield name
    except BaseException:
        _delete_files([name])
        raise


def _save_sample(voice: Voice, result: engine.EmbeddingResult, audio_name: str) -> VoiceSample:
    return VoiceSample.objects.create(
        voice=voice,
        audio=audio_name,
        model=result.model,
        embedding=result.vector,
        duration_seconds=result.duration_seconds,
        speech_seconds=result.speech_seconds,
    )


def _refresh_centroid(voice: Voice) -> None:
    embeddings = [np.asarray(e) for e in voice.samples.values_list("embedding", flat=True)]
    voice.centroid = centroid_of(embeddings)
    voice.save(update_fields=["centroid", "updated_at"])


def _require_same_engine(voice: Voice, model: str) -> None:
    if voice.model != model:
        raise conflict(
            f"voice {voice.voice_id} was enrolled with engine {voice.model!r} but the active "
            f"engine is {model!r}; run `python manage.py reembed` to recompute it"
        )


# --- bindings ---------------------------------------------------------------------------


def update_voice(
    voice: Voice,
    *,
    threshold: float | object | None = UNCHANGED,
    role: Role | object | None = UNCHANGED,
    devices: list[Device] | object = UNCHANGED,
) -> None:
    """Change threshold, role (None unbinds) and the set of bound devices, all or nothing."""
    with transaction.atomic():
        voice = Voice.objects.select_for_update().get(pk=voice.pk)
        if threshold is not UNCHANGED:
            voice.threshold = (
                default_similarity_threshold(voice.model) if threshold is None else threshold
            )
        if role is not UNCHANGED:
            voice.role = role
        if devices is not UNCHANGED:
            _replace_devices(voice, devices)
        voice.save()


def _replace_devices(voice: Voice, devices: list[Device]) -> None:
    current = set(voice.bindings.values_list("device_id", flat=True))
    wanted = {device.pk: device for device in devices}
    added = [device for pk, device in wanted.items() if pk not in current]
    _lock_and_check_capacity(added, adding=1)
    voice.bindings.exclude(device_id__in=wanted).delete()
    VoiceBinding.objects.bulk_create(VoiceBinding(voice=voice, device=d) for d in added)


def _check_capacity(devices: list[Device], adding: int) -> None:
    limit = settings.VOICEPRINT_MAX_VOICES_PER_DEVICE
    for device in devices:
        if device.bindings.count() + adding > limit:
            raise conflict(
                f"device {device.device_id} already holds {limit} voices "
                f"(VOICEPRINT_MAX_VOICES_PER_DEVICE)"
            )


def _lock_and_check_capacity(devices: list[Device], adding: int) -> None:
    """Lock the devices (in a fixed order, against deadlocks) so that two concurrent
    enrollments cannot both take a device's last free place."""
    if not devices:
        return
    pks = [device.pk for device in devices]
    locked = list(Device.objects.select_for_update().filter(pk__in=pks).order_by("pk"))
    _check_capacity(locked, adding)


# --- deletion ---------------------------------------------------------------------------


def delete_voice(voice: Voice) -> None:
    """Delete the voice, its samples and embeddings, and (once committed) their audio."""
    names = list(voice.samples.values_list("audio", flat=True))
    with transaction.atomic():
        voice.delete()
        transaction.on_commit(lambda: _delete_files(names))


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete stored audio %s", name)


# --- decisions --------------------------------------------------------------------------


@dataclass
class Candidate:
    voice: Voice
    score: float


@dataclass
class IdentifyResult:
    matched: bool
    best: Candidate | None
    candidates: list[Candidate]
    model: str
    interrupt: bool | None
    processing_time_ms: int
    threshold: float | None = None


def identify_on_device(
    *, tenant: Tenant, device: Device, audio: bytes, agent_id: str | None, top_k: int
) -> IdentifyResult:
    """1:N among the voices bound to `device`; updates the device's stats atomically."""
    started = time.perf_counter()
    bound = owned(Voice, tenant).filter(bindings__device=device)
    probe = embed(audio).embedding
    nearest = nearest_voices(bound, probe.vector, probe.model, top_k)
    # No voice of this engine: only then is it worth asking whether others are bound.
    stale = None if nearest else bound.values_list("model", flat=True).first()
    if stale is not None:
        raise conflict(
            f"the voices of device {device.device_id} were enrolled with engine {stale!r} "
            f"but the active engine is {probe.model!r}; run `python manage.py reembed`"
        )
    candidates = [Candidate(voice, 1.0 - float(voice.distance)) for voice in nearest]
    best = candidates[0] if candidates else None
    matched = best is not None and best.score >= best.voice.threshold
    _count_identify(device, matched)
    observability.count_identify(probe.model, "device", matched)
    interrupt = None
    if agent_id:
        interrupt = may_interrupt(tenant, agent_id, best.voice.role if matched else None)
    return IdentifyResult(
        matched=matched,
        best=best,
        candidates=candidates,
        model=probe.model,
        interrupt=interrupt,
        threshold=best.voice.threshold if best else None,
        processing_time_ms=elapsed_ms(started),
    )


def _count_identify(device: Device, matched: bool) -> None:
    # One UPDATE with F() expressions: concurrent requests never lose a count.
    Device.objects.filter(pk=device.pk).update(
        identify_count=F("identify_count") + 1,
        matched_count=F("matched_count") + (1 if matched else 0),
        last_identify_at=timezone.now(),
    )


@dataclass
class VerifyResult:
    score: float
    verified: bool
    model: str
    processing_time_ms: int


def verify_voice(voice: Voice, audio: bytes) -> VerifyResult:
    started = time.perf_counter()
    probe = embed(audio).embedding
    _require_same_engine(voice, probe.model)
    score = float(np.dot(np.asarray(voice.centroid, dtype=np.float32), probe.vector))
    return VerifyResult(
        score=score,
        verified=score >= voice.threshold,
        model=probe.model,
        processing_time_ms=elapsed_ms(started),
    )


def elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
