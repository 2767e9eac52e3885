"""Enrollment: a voice made from a recording, its samples (quality gates, contamination
check, agreement), look-alikes among existing voices, its settings and device bindings (with
the per-device capacity), its centroid, re-embedding, and deletion."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from django.conf import settings
from django.db import transaction

import engine
from audit.services import audit_record
from core.exceptions import conflict, not_found
from devices.models import Device
from engine.quality import SNR_CAP_DB
from roles.models import Role
from roles.selectors import role_get_default
from tenancy.models import Tenant
from voiceprint.decision import VoiceScore
from voiceprint.embedding import compute_embedding
from voiceprint.guidance import (
    EnrollmentSummary,
    lookalike_issue,
    quality_gate,
    spoof_gate,
    voice_label,
)
from voiceprint.models import DEFAULT_STORE, SampleKind, Voice, VoiceBinding
from voiceprint.selectors import (
    voice_enrollment,
    voice_list_lookalike_candidates,
    voice_list_nearest,
)
from voiceprint.services.consent import Consent, consent_check, consent_create
from voiceprint.services.recognition import audio_embed, voice_engine_check, voices_score
from voiceprint.services.samples import sample_create, voice_centroid_refresh
from voiceprint.services.storage import audio_delete, audio_read, audio_store
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
    force: bool = False,
    consent: Consent | None = None,
) -> Voice:
    """Create a voice from one recording and bind it to `devices` and `role` (the
    tenant's default role when None), with its `consent` record when given.

    Refused (40000) without `consent` when the tenant requires it.

    Refused (40003) when the recording fails the quality gates, and (40900) when
    VOICEPRINT_LOOKALIKE_POLICY is "refuse" and an existing voice on these devices or in
    this store would already match it, unless `force`.
    """
    consent_check(tenant, consent=consent)
    devices = list(devices)
    device_capacity_check(devices)  # cheap refusal before the expensive embedding
    embedded = audio_embed(
        audio=audio,
        engine_name=engine_name,
        anti_spoofing=settings.VOICEPRINT_ENROLL_ANTI_SPOOFING,
    )
    result = embedded.embedding
    quality_gate(result.quality)
    spoof_gate(result)
    if not force and settings.VOICEPRINT_LOOKALIKE_POLICY == "refuse":
        _lookalike_check(tenant, result, devices=devices, store=store)
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
        sample_create(voice, result, audio_name)
        VoiceBinding.objects.bulk_create(VoiceBinding(voice=voice, device=d) for d in devices)
        if consent is not None:
            consent_create(voice, consent=consent)
    details = {"devices": [d.device_id for d in devices], "store": store, "forced": force}
    if consent is not None:  # who and which text; the rest is in the voice's record
        details["consent"] = {"subject": consent.subject, "text_version": consent.text_version}
    audit_record(
        tenant, action="voice.create", object_type="voice", object_id=voice.voice_id,
        details=details,
    )  # fmt: skip
    return voice


def voice_sample_add(voice: Voice, *, audio: bytes, force: bool = False) -> Voice:
    """Add a recording; the voiceprint becomes the normalised mean of all samples.

    Refused (40003) when the recording fails the quality gates, and (40900) when it does
    not match the voice (below its decision point: someone else's voice would make two
    people share one voiceprint), unless `force`.
    """
    embedded = audio_embed(audio=audio, anti_spoofing=settings.VOICEPRINT_ENROLL_ANTI_SPOOFING)
    voice_engine_check(voice, engine_name=embedded.embedding.model)
    quality_gate(embedded.embedding.quality)
    spoof_gate(embedded.embedding)
    if not force:
        _contamination_check(voice, embedded.embedding)
    with audio_store(voice.tenant, wav=embedded.wav) as audio_name, transaction.atomic():
        voice = Voice.objects.select_for_update().get(pk=voice.pk)
        voice_engine_check(voice, engine_name=embedded.embedding.model)
        sample_create(voice, embedded.embedding, audio_name)
        voice_centroid_refresh(voice)
    audit_record(
        voice.tenant, action="voice.sample_add", object_type="voice", object_id=voice.voice_id,
        details={"forced": force},
    )  # fmt: skip
    return voice


def _contamination_check(voice: Voice, sample: engine.EmbeddingResult) -> None:
    """Refuse (40900) a sample that the voice itself would not match."""
    score = voices_score(voice.tenant, [voice], probe=sample)[0]
    if not score.passes:
        audit_record(
            voice.tenant, action="voice.sample_add", object_type="voice",
            object_id=voice.voice_id, outcome="refused: does not match",
            details={"score": round(score.cosine, 4)},
        )  # fmt: skip
        raise conflict(
            f"sample does not match voice {voice.voice_id} (score {score.cosine:.3f}; the "
            f"voice needs {score.threshold:g}): if it is the same speaker, send force=true"
        )


def voice_sample_delete(voice: Voice, *, sample_id: int) -> None:
    """Remove one sample (an outlier, an adaptation sample) and its audio; the centroid is
    recomputed. A voice keeps at least one enrollment sample (40900)."""
    with transaction.atomic():
        voice = Voice.objects.select_for_update().get(pk=voice.pk)
        sample = voice.samples.filter(pk=sample_id).first()
        if sample is None:
            raise not_found("sample")
        enrollment = voice.samples.filter(kind=SampleKind.ENROLLMENT)
        if sample.kind == SampleKind.ENROLLMENT and enrollment.count() == 1:
            raise conflict(
                f"that is the only enrollment sample of voice {voice.voice_id}; delete the "
                f"voice instead"
            )
        name = sample.audio.name
        sample.delete()
        voice_centroid_refresh(voice)
        transaction.on_commit(lambda: audio_delete([name]))
    audit_record(
        voice.tenant, action="voice.sample_delete", object_type="voice",
        object_id=voice.voice_id, details={"kind": sample.kind},
    )  # fmt: skip


# --- look-alikes --------------------------------------------------------------------------

#: Existing voices reported in `similar_voices`.
SIMILAR_VOICES = 3


def similar_voices(
    tenant: Tenant,
    probe: engine.EmbeddingResult,
    *,
    devices: Iterable[Device],
    store: str,
    exclude: Voice | None = None,
) -> list[VoiceScore]:
    """The existing voices closest to `probe` (a new recording, or a voice's centroid) on
    `devices` or in `store`, scored by the decision rule (`passes`: that voice would
    already match it), most similar first."""
    candidates = voice_list_lookalike_candidates(
        tenant, devices=devices, store=store, exclude=exclude
    )
    nearest = voice_list_nearest(
        candidates, vector=probe.vector, engine_name=probe.model, top_k=SIMILAR_VOICES
    )
    scored = voices_score(tenant, nearest, probe=probe)
    return sorted(scored, key=lambda score: score.cosine, reverse=True)


def voice_similar_voices(voice: Voice) -> list[VoiceScore]:
    """`similar_voices` of an enrolled voice: its centroid against the others on its
    devices and in its store, as a long clean recording of its enrolled speech."""
    speech = sum(voice.samples.values_list("speech_seconds", flat=True))
    return similar_voices(
        voice.tenant,
        _centroid_probe(voice, speech),
        devices=voice.devices.all(),
        store=voice.store,
        exclude=voice,
    )


def voice_pair_scores(voices: Sequence[Voice]) -> list[list[VoiceScore | None]]:
    """Every ordered pair of `voices` (one tenant's, e.g. a device's household): row i
    holds voice i's centroid, as a long clean recording of its enrolled speech, scored
    against each other voice j by the decision rule (`passes`: voice j would already
    match voice i's speaker). None on the diagonal, for a voice without a centroid and
    between voices of different engines (their embeddings are not comparable). Wants
    the voices' samples prefetched (it reads their speech)."""
    comparable = [voice for voice in voices if voice.centroid is not None]
    rows = []
    for voice in voices:
        scores: dict[int, VoiceScore] = {}
        others = [
            other
            for other in comparable
            if other.pk != voice.pk and other.engine_name == voice.engine_name
        ]
        if voice.centroid is not None and others:
            speech = sum(sample.speech_seconds for sample in voice.samples.all())
            probe = _centroid_probe(voice, speech)
            scores = {s.voice.pk: s for s in voices_score(voice.tenant, others, probe=probe)}
        rows.append([scores.get(other.pk) for other in voices])
    return rows


def _centroid_probe(voice: Voice, speech_seconds: float) -> engine.EmbeddingResult:
    """The voice's centroid as a probe: a clean recording of `speech_seconds` of speech."""
    return engine.EmbeddingResult(
        vector=np.asarray(voice.centroid, dtype=np.float32),
        model=voice.engine_name,
        dim=voice.dim,
        speech_seconds=speech_seconds,
        duration_seconds=speech_seconds,
        quality=engine.ProbeQuality(speech_seconds=speech_seconds, snr_db=SNR_CAP_DB, clipping=0.0),
    )


@dataclass(frozen=True)
class EnrollmentReport:
    """What an enrollment reply tells: the voice's progress and issues (look-alikes among
    them), and the existing voices most similar to it."""

    summary: EnrollmentSummary
    similar: list[VoiceScore]


def voice_enrollment_report(voice: Voice, *, seen_from_device: str = "") -> EnrollmentReport:
    """The enrollment report of `voice`. `seen_from_device`: the caller sees only that
    device (a device token), so only look-alikes bound to it are named."""
    similar = voice_similar_voices(voice)
    if seen_from_device:
        similar = [
            s for s in similar if s.voice.devices.filter(device_id=seen_from_device).exists()
        ]
    summary = voice_enrollment(voice)
    lookalikes = [
        lookalike_issue(voice_id=s.voice.voice_id, name=s.voice.name, score=s.cosine)
        for s in similar
        if s.passes
    ]
    return EnrollmentReport(
        summary=replace(summary, issues=[*summary.issues, *lookalikes]), similar=similar
    )


def _lookalike_check(
    tenant: Tenant, probe: engine.EmbeddingResult, *, devices: list[Device], store: str
) -> None:
    """Refuse (40900) a new voice that an existing one would already match."""
    for score in similar_voices(tenant, probe, devices=devices, store=store):
        if score.passes:
            other = score.voice
            audit_record(
                tenant, action="voice.create", object_type="voice", object_id="",
                outcome="refused: look-alike", details={"lookalike": other.voice_id},
            )  # fmt: skip
            raise conflict(
                f"already enrolled as voice {voice_label(other.voice_id, other.name)} (score "
                f"{score.cosine:.3f}): send force=true to enroll a second voice anyway"
            )


class Reembed(StrEnum):
    """What `voice_reembed` did with one voice."""

    REEMBEDDED = "re-embedded"
    CURRENT = "already on the engine"
    PURGED = "audio purged"


def voice_reembed(voice: Voice, *, engine_name: str) -> Reembed:
    """Recompute the voice's samples and centroid from its stored audio with the engine
    `engine_name`, all or nothing. CURRENT when the voice is already on that engine (done
    by a concurrent run). PURGED, changing nothing, when a sample's audio was purged
    (retention.py): its embedding cannot be recomputed, and embeddings of two engines
    never mix in one centroid, so the voice stays on its engine, as it identifies today,
    until it is re-enrolled (or its purged samples are removed: then it is recomputed
    from the rest)."""
    with transaction.atomic():
        voice = Voice.objects.select_for_update().get(pk=voice.pk)
        if voice.engine_name == engine_name:
            return Reembed.CURRENT
        samples = list(voice.samples.all())
        if not samples:
            raise conflict(f"voice {voice.voice_id} has no stored audio to re-embed")
        if any(sample.audio_purged_at is not None for sample in samples):
            return Reembed.PURGED
        for sample in samples:
            result = compute_embedding(audio_read(sample.audio.name), engine_name)
            sample.embedding, sample.engine_name = result.vector, result.model
            sample.save(update_fields=["embedding", "engine_name"])
        voice.engine_name, voice.dim = result.model, result.dim
        voice.save(update_fields=["engine_name", "dim", "updated_at"])
        voice_centroid_refresh(voice)
    return Reembed.REEMBEDDED


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
    audit_record(
        voice.tenant, action="voice.update", object_type="voice", object_id=voice.voice_id,
        details=_update_details(voice, threshold=threshold, role=role, devices=devices),
    )  # fmt: skip


def _update_details(voice: Voice, **changes) -> dict:
    """What an update set, by ids and values (the audit log's words)."""
    details: dict = {}
    if changes["threshold"] is not UNCHANGED:
        details["threshold"] = voice.threshold
    if changes["role"] is not UNCHANGED:
        details["role"] = voice.role.role_id if voice.role else None
    if changes["devices"] is not UNCHANGED:
        details["devices"] = [device.device_id for device in changes["devices"]]
    return details


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
    audit_record(voice.tenant, action="voice.delete", object_type="voice", object_id=voice.voice_id)
