"""A voice's samples as rows, and the centroid and agreements they make: shared by
enrollment (samples a person gives) and adaptation (samples from confident matches)."""

from __future__ import annotations

import numpy as np

import engine
from engine.base import l2_normalise
from voiceprint.adaptation import adaptation_share, adapted_centroid
from voiceprint.models import SampleKind, Voice, VoiceSample


def sample_create(
    voice: Voice,
    result: engine.EmbeddingResult,
    audio_name: str,
    *,
    kind: SampleKind = SampleKind.ENROLLMENT,
) -> VoiceSample:
    return VoiceSample.objects.create(
        voice=voice,
        audio=audio_name,
        engine_name=result.model,
        embedding=result.vector,
        duration_seconds=result.duration_seconds,
        speech_seconds=result.speech_seconds,
        snr_db=result.quality.snr_db,
        clipping=result.quality.clipping,
        kind=kind,
    )


def voice_centroid_refresh(voice: Voice) -> None:
    """The voiceprint becomes the L2-normalised mean of its samples' embeddings (adaptation
    samples weighed by voiceprint.adaptation); each sample's agreement becomes its cosine to
    the mean of the others."""
    samples = list(voice.samples.only("pk", "embedding", "kind").order_by("created_at", "pk"))
    vectors = np.stack([np.asarray(s.embedding, dtype=np.float32) for s in samples])
    total = vectors.sum(axis=0)
    for sample, vector in zip(samples, vectors, strict=True):
        agreement = float(vector @ l2_normalise(total - vector))
        sample.agreement = round(agreement, 4) if len(samples) > 1 else None
    VoiceSample.objects.bulk_update(samples, ["agreement"])
    adapted = np.array([s.kind == SampleKind.ADAPTATION for s in samples])
    voice.centroid = adapted_centroid(vectors[~adapted], vectors[adapted])
    voice.adaptation_share = adaptation_share(int((~adapted).sum()), int(adapted.sum()))
    voice.save(update_fields=["centroid", "adaptation_share", "updated_at"])
