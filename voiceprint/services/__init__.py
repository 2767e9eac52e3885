"""Writes and decisions of the voiceprint app, one job a module:

- `enrollment`: voices from recordings, samples (quality gates, contamination, agreement),
  look-alikes, settings and device bindings (with the per-device capacity), centroids,
  re-embedding, deletion;
- `recognition`: audio to embedding, and the 1:1 / 1:N decisions (by voiceprint.decision);
- `storage`: enrollment audio encoded as WAV, encrypted, stored, opened, re-encrypted
  when the key rotates, and deleted;
- `retention`: recordings older than VOICEPRINT_AUDIO_RETENTION_DAYS purged, embeddings kept;
- `consent`: the consent record of an enrollment, and the tenant setting requiring it;
- `export`: everything held about a voice, in one archive;
- `calibration`: a tenant's operating point, fitted on its labelled audio;
- `enrollment_limits`: the cap on the API's enrollments per device and hour;
- `bulk`: the fast path of large bulk runs (index dropped, rows loaded, index built), and
  the import of existing embeddings.

Callers import from `voiceprint.services`; the names below are the public ones.
"""

from voiceprint.services.bulk import (
    ImportResult,
    bulk_is_large,
    centroid_indexes_restore,
    centroid_indexes_suspended,
    voices_import,
)
from voiceprint.services.calibration import (
    OperatingPointFit,
    operating_point_delete,
    operating_point_fit,
)
from voiceprint.services.consent import Consent
from voiceprint.services.enrollment import (
    UNCHANGED,
    EnrollmentReport,
    Reembed,
    device_capacity_check,
    similar_voices,
    voice_centroid_refresh,
    voice_create,
    voice_delete,
    voice_enrollment_report,
    voice_pair_scores,
    voice_reembed,
    voice_sample_add,
    voice_sample_delete,
    voice_similar_voices,
    voice_update,
)
from voiceprint.services.enrollment_limits import device_enrollments_reserve
from voiceprint.services.export import voice_export
from voiceprint.services.recognition import (
    EmbeddedAudio,
    VoiceIdentifyResult,
    VoiceVerifyResult,
    audio_embed,
    cosine_similarity,
    elapsed_ms,
    voice_centroids,
    voice_engine_check,
    voice_identify,
    voice_identify_provisional,
    voice_verify,
    voices_score,
)
from voiceprint.services.retention import (
    audio_purge_plan,
    audio_retention_cutoff,
    voice_audio_purge,
)
from voiceprint.services.storage import (
    PurgedAudioError,
    Reseal,
    StoredAudioError,
    audio_delete,
    audio_open,
    audio_read,
    audio_store,
    sample_audio_open,
    voice_sample_audio_reseal,
    wav_encode,
)

__all__ = [
    "UNCHANGED",
    "Consent",
    "EmbeddedAudio",
    "EnrollmentReport",
    "ImportResult",
    "OperatingPointFit",
    "PurgedAudioError",
    "Reembed",
    "Reseal",
    "StoredAudioError",
    "VoiceIdentifyResult",
    "VoiceVerifyResult",
    "audio_delete",
    "audio_embed",
    "audio_open",
    "audio_purge_plan",
    "audio_read",
    "audio_retention_cutoff",
    "audio_store",
    "bulk_is_large",
    "centroid_indexes_restore",
    "centroid_indexes_suspended",
    "cosine_similarity",
    "device_capacity_check",
    "device_enrollments_reserve",
    "elapsed_ms",
    "operating_point_delete",
    "operating_point_fit",
    "sample_audio_open",
    "similar_voices",
    "voice_audio_purge",
    "voice_centroid_refresh",
    "voice_centroids",
    "voice_create",
    "voice_delete",
    "voice_engine_check",
    "voice_enrollment_report",
    "voice_export",
    "voice_identify",
    "voice_identify_provisional",
    "voice_pair_scores",
    "voice_reembed",
    "voice_sample_add",
    "voice_sample_audio_reseal",
    "voice_sample_delete",
    "voice_similar_voices",
    "voice_update",
    "voice_verify",
    "voices_import",
    "voices_score",
    "wav_encode",
]
