"""Default match thresholds per engine, as cosine similarity.

The Voiceprint API's `threshold` is a similarity (match when score >= threshold); the
Voice API's is the matching cosine distance, 1 - similarity. How these were chosen is in
the README ("Choosing a threshold"). VOICEPRINT_DEFAULT_THRESHOLDS overrides them, e.g.
"ge2e=0.80,eres2net=0.30".
"""

from __future__ import annotations

from django.conf import settings

from utilities.env import parse_number_map

DEFAULT_SIMILARITY_THRESHOLDS = {
    # The EER point of GE2E on the shared real speech (`python manage.py evaluate`): 0.743 on
    # the zh enroll+test set (EER 0%), 0.731 on LibriSpeech 3 s segments (EER 1.15%).
    "ge2e": 0.75,
    # The verification threshold (`thr`) on the ModelScope card of
    # iic/speech_eres2netv2_sv_zh-cn_16k-common; not measurable here either.
    "eres2netv2": 0.365,
    # ModelScope's published verification threshold for its ERes2Net zh-cn model; not
    # measurable here (no weights can be downloaded): measure it with `evaluate`.
    "eres2net": 0.25,
    # No published figure found; the ERes2Net value until measured with `evaluate`.
    "campplus": 0.25,
}
FALLBACK_SIMILARITY_THRESHOLD = 0.5


def _overrides() -> dict[str, float]:
    # Checked at start-up (core/checks.py), so a malformed value never gets this far.
    return parse_number_map(settings.VOICEPRINT_DEFAULT_THRESHOLDS, "VOICEPRINT_DEFAULT_THRESHOLDS")


def default_similarity_threshold(engine_name: str) -> float:
    overrides = _overrides()
    if engine_name in overrides:
        return overrides[engine_name]
    return DEFAULT_SIMILARITY_THRESHOLDS.get(engine_name, FALLBACK_SIMILARITY_THRESHOLD)


def default_distance_threshold(engine_name: str) -> float:
    return round(1.0 - default_similarity_threshold(engine_name), 6)
