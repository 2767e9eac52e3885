"""Retention of enrollment audio: recordings older than VOICEPRINT_AUDIO_RETENTION_DAYS are
deleted from storage (`manage.py purge_audio`, daily from cron) and their samples marked
purged. A purged sample keeps its embedding, speech, quality and agreement, so its voice
still identifies and verifies as before; what needs the recording no longer works for it:
its download answers 40400, the export lists it without a file, and `reembed` cannot
recompute it (voice_reembed leaves such a voice on its engine and says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.services import audit_record
from voiceprint.models import Voice, VoiceSample
from voiceprint.services.storage import audio_delete


def audio_retention_cutoff(*, now: datetime | None = None) -> datetime | None:
    """Recordings made before this moment are due for purging; None while the retention
    is off (VOICEPRINT_AUDIO_RETENTION_DAYS unset or "off")."""
    days = settings.VOICEPRINT_AUDIO_RETENTION_DAYS
    if days is None:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def samples_due_for_purge(cutoff: datetime) -> QuerySet[VoiceSample]:
    """Samples whose recording is still kept and was made before `cutoff`."""
    return VoiceSample.objects.filter(audio_purged_at__isnull=True, created_at__lt=cutoff)


@dataclass(frozen=True)
class PurgePlan:
    """What a purge at `cutoff` deletes: sample counts by voice (primary key)."""

    cutoff: datetime
    samples_by_voice: dict[int, int]

    @property
    def samples(self) -> int:
        return sum(self.samples_by_voice.values())


def audio_purge_plan(cutoff: datetime) -> PurgePlan:
    """The voices with recordings due at `cutoff`, and how many each (a dry run's answer)."""
    due = samples_due_for_purge(cutoff).order_by("voice_id").values_list("voice_id", flat=True)
    counts: dict[int, int] = {}
    for voice_id in due:
        counts[voice_id] = counts.get(voice_id, 0) + 1
    return PurgePlan(cutoff=cutoff, samples_by_voice=counts)


def voice_audio_purge(*, voice_id: int, cutoff: datetime) -> int:
    """Purge the voice's recordings made before `cutoff`: the samples are marked in one
    transaction, the files deleted once it commits (a crash in between leaves files no
    sample names, never a sample whose file is gone but not marked). An audit event
    "voice.audio_purge" records the count. Returns how many were purged (0: none due, or
    the voice was deleted meanwhile)."""
    with transaction.atomic():
        voice = Voice.objects.select_for_update().filter(pk=voice_id).first()
        if voice is None:
            return 0
        due = samples_due_for_purge(cutoff).filter(voice=voice).select_for_update()
        rows = list(due.values_list("pk", "audio"))
        if not rows:
            return 0
        VoiceSample.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            audio="", audio_purged_at=timezone.now()
        )
        names = [name for _, name in rows]
        transaction.on_commit(lambda: audio_delete(names))
    audit_record(
        voice.tenant, action="voice.audio_purge", object_type="voice", object_id=voice.voice_id,
        details={"count": len(rows)},
    )  # fmt: skip
    return len(rows)
