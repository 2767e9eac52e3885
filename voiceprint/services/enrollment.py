"""Enrollment: a voice made from a recording, its samples, its settings and device
bindings (with the per-device capacity), its centroid, re-embedding, and deletion."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from django.conf import settings
from django.db import transaction

import engine
from core.exceptions import conflict
from devices.models import Device
from roles.models import Role
from roles.selectors import role_get_default
from tenancy.models import Tenant
from voiceprint.embedding import compute_embedding
from voiceprint.models import DEFAULT_STORE, Voice, VoiceBinding, VoiceSample
from voiceprint.services.recognition import audio_embed, voice_engine_check
from voiceprint.services.storage import audio_delete, audio_open, audio_store
from voiceprint.thresholds import default_similarity_threshold

#: Marks an update field that was not given (None means "unset it").
UNCHANGED = object()


def voice_create(
    tenant: Tenant,
    *,
    audio: bytes,
    devices: Iterable[Device] = (),
    role: Role | None = None,
    threshold: float | None = None,
    name: str = "",
    store: str = DEFAULT_STORE,
    labels: dict | None = None,
    engine_name: str | None = None,
) -> Voice:
    """Create a voice from one recording and bind it to `devices` and `role` (the
    tenant's default role when None)."""
    devices = list(devices)
    device_capacity_check(devices)  # cheap refusal before the expensive embedding
    embedded = audio_embed(audio=audio, engine_name=engine_name)
    result = embedded.embedding
    with audio_store(tenant, wav=embedded.wav) as audio_name, transaction.atomic():
        _lock_and_check_capacity(devices)
        voice = Voice.objects.create(
            tenant=tenant,
            name=name,
            role=role or role_get_default(tenant),
            threshold=default_similarity_threshold(result.model)
            if threshold is None
            else threshold,
            store=store,
            labels=labels or {},
            engine_name=result.model,
            dim=result.dim,
            centroid=result.vector,
        )
        _sample_create(voice, result, audio_name)
        VoiceBinding.objects.bulk_create(VoiceBinding(voice=voice, device=d) for d in devices)
    return voice


def voice_sample_add(voice: Voice, *, audio: bytes) -> Voice:
    """Add a recording; the voiceprint becomes the normalised mean of all samples."""
    embedded = audio_embed(audio=audio)
    voice_engine_check(voice, engine_name=embedded.embedding.model)
    with audio_store(voice.tenant, wav=embedded.wav) as audio_name, transaction.atomic():
        voice = Voice.objects.select_for_update().get(pk=voice.pk)
        voice_engine_check(voice, engine_name=embedded.embedding.model)
        _sample_create(voice, embedded.embedding, audio_name)
        voice_centroid_refresh(voice)
    return voice


def _sample_create(voice: Voice, result: engine.EmbeddingResult, audio_name: str) -> VoiceSample:
    return VoiceSample.objects.create(
        voice=voice,
        audio=audio_name,
        engine_name=result.model,
        embedding=result.vector,
        duration_seconds=result.duration_seconds,
        speech_seconds=result.speech_seconds,
    )


def voice_centroid_refresh(voice: Voice) -> None:
    """The voiceprint becomes the L2-normalised mean of its samples' embeddings."""
    embeddings = [np.asarray(e) for e in voice.samples.values_list("embedding", flat=True)]
    mean = np.mean(np.stack(embeddings), axis=0)
    voice.centroid = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
    voice.save(update_fields=["centroid", "updated_at"])


def voice_reembed(voice: Voice, *, engine_name: str) -> bool:
    """Recompute the voice's samples and centroid from its stored audio with the engine
    `engine_name`, all or nothing. False when the voice is already on that engine (done
    by a concurrent run)."""
    with transaction.atomic():
        voice = Voice.objects.select_for_update().get(pk=voice.pk)
        if voice.engine_name == engine_name:
            return False
        samples = list(voice.samples.all())
        if not samples:
            raise conflict(f"voice {voice.voice_id} has no stored audio to re-embed")
        for sample in samples:
            with audio_open(sample.audio.name) as stored:
                result = compute_embedding(stored.read(), engine_name)
            sample.embedding, sample.engine_name = result.vector, result.model
            sample.save(update_fields=["embedding", "engine_name"])
        voice.engine_name, voice.dim = result.model, result.dim
        voice.save(update_fields=["engine_name", "dim", "updated_at"])
        voice_centroid_refresh(voice)
    return True


# --- settings and bindings --------------------------------------------------------------


def voice_update(
    voice: Voice,
    *,
    name: str | object = UNCHANGED,
    labels: dict | object = UNCHANGED,
    threshold: float | object | None = UNCHANGED,
    role: Role | object | None = UNCHANGED,
    devices: Iterable[Device] | object = UNCHANGED,
) -> None:
    """Change name, labels, threshold (None: the engine's default), role (None unbinds)
    and the set of bound devices, all or nothing."""
    with transaction.atomic():
        voice = Voice.objects.select_for_update().get(pk=voice.pk)
        if name is not UNCHANGED:
            voice.name = name
        if labels is not UNCHANGED:
            voice.labels = labels
        if threshold is not UNCHANGED:
            voice.threshold = (
                default_similarity_threshold(voice.engine_name) if threshold is None else threshold
            )
        if role is not UNCHANGED:
            voice.role = role
        if devices is not UNCHANGED:
            _replace_devices(voice, list(devices))
        voice.save()


def _replace_devices(voice: Voice, devices: list[Device]) -> None:
    added = _devices_added(voice, devices)
    _lock_and_check_capacity(added)
    voice.bindings.exclude(device_id__in=[device.pk for device in devices]).delete()
    VoiceBinding.objects.bulk_create(VoiceBinding(voice=voice, device=d) for d in added)


def _devices_added(voice: Voice, devices: Iterable[Device]) -> list[Device]:
    """Those of `devices` the voice is not bound to yet (each once)."""
    current = set(voice.bindings.values_list("device_id", flat=True))
    wanted = {device.pk: device for device in devices}
    return [device for pk, device in wanted.items() if pk not in current]


def device_capacity_check(devices: Iterable[Device], *, voice: Voice | None = None) -> None:
    """Refuse (40900) when binding a voice to `devices` would take one of them past
    VOICEPRINT_MAX_VOICES_PER_DEVICE. A device `voice` is already bound to takes no
    new place."""
    limit = settings.VOICEPRINT_MAX_VOICES_PER_DEVICE
    for device in _devices_added(voice, devices) if voice is not None else devices:
        if device.bindings.count() + 1 > limit:
            raise conflict(
                f"device {device.device_id} already holds {limit} voices "
                f"(VOICEPRINT_MAX_VOICES_PER_DEVICE)"
            )


def _lock_and_check_capacity(devices: list[Device]) -> None:
    """Lock the devices (in a fixed order, against deadlocks) so that two concurrent
    enrollments cannot both take a device's last free place."""
    if not devices:
        return
    pks = [device.pk for device in devices]
    device_capacity_check(Device.objects.select_for_update().filter(pk__in=pks).order_by("pk"))


# --- deletion ---------------------------------------------------------------------------


def voice_delete(voice: Voice) -> None:
    """Delete the voice, its samples and embeddings, and (once committed) their audio."""
    names = list(voice.samples.values_list("audio", flat=True))
    with transaction.atomic():
        voice.delete()
        transaction.on_commit(lambda: audio_delete(names))
