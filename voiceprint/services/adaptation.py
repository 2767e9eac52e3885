"""Safe adaptation in the service: with VOICEPRINT_ADAPTATION on (off by default), a probe
that identify or verify matched with high confidence and good quality joins the voice as an
adaptation sample (voiceprint.adaptation holds the rule; docs/ADAPTATION.md what it measured).

Adaptation samples are marked as such (`kind`), capped (the oldest makes room; enrollment
samples are never replaced), weigh at most half of the centroid, raise the voice's
threshold with their share, and are removed like any sample (DELETE voices/{id}/samples/n).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

import engine
from audit.services import audit_record
from voiceprint.adaptation import adaptation_voice, samples_to_replace
from voiceprint.decision import Decision
from voiceprint.models import SampleKind, Voice
from voiceprint.services.samples import sample_create, voice_centroid_refresh
from voiceprint.services.storage import audio_delete, audio_store


def probe_adapt(decision: Decision, *, wav: bytes, probe: engine.EmbeddingResult) -> bool:
    """Add the probe to the voice it matched when adaptation is on and the rule lets it;
    whether it was added."""
    if not settings.VOICEPRINT_ADAPTATION:
        return False
    voice = adaptation_voice(decision, probe.quality)
    return voice is not None and voice_adapt(voice, wav=wav, probe=probe)


def voice_adapt(voice: Voice, *, wav: bytes, probe: engine.EmbeddingResult) -> bool:
    """Store ``probe`` as an adaptation sample of ``voice``, the oldest beyond the cap gone,
    and recompute the centroid. False when the voice is gone or changed engine meanwhile."""
    with audio_store(voice.tenant, wav=wav) as audio_name, transaction.atomic():
        locked = Voice.objects.select_for_update().filter(pk=voice.pk).first()
        if locked is None or locked.engine_name != probe.model:
            transaction.on_commit(lambda: audio_delete([audio_name]))
            return False
        adapted = locked.samples.filter(kind=SampleKind.ADAPTATION).order_by("created_at", "pk")
        stale = samples_to_replace(list(adapted))
        names = [sample.audio.name for sample in stale]
        locked.samples.filter(pk__in=[sample.pk for sample in stale]).delete()
        sample_create(locked, probe, audio_name, kind=SampleKind.ADAPTATION)
        voice_centroid_refresh(locked)
        transaction.on_commit(lambda: audio_delete(names))
    audit_record(voice.tenant, action="voice.adapt", object_type="voice", object_id=voice.voice_id)
    return True
