"""The Voice API's decisions, on the same store as the Voiceprint API.

Its threshold is a cosine *distance* (1 - similarity), and the decision is the Voiceprint
API's rule stated in distances (voiceprint.decision.is_match_by_distance). `confidence`
falls from 1 at distance 0 through 0.5 at the threshold to 0 at distance 2 (opposite
vectors), linearly on each side. Registering and forgetting a voice are the Voiceprint
API's services (voice_create, voice_delete), called by the views.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

import engine
from audit.services import audit_record
from config import observability
from core.exceptions import ApiError, ErrorCode
from engine.attributes import load_gender_head
from engine.audio_classifiers import classify
from engine.scoring import load_scorer
from tenancy.models import Tenant
from tenancy.scoping import owned
from voiceprint.decision import Outcome, decide, is_match_by_distance, score_voices
from voiceprint.models import DEFAULT_STORE, Voice
from voiceprint.selectors import voice_list_nearest
from voiceprint.services import audio_embed, cosine_similarity, elapsed_ms, voice_centroids
from voiceprint.spoofing import SpoofCheck, spoof_check
from voiceprint.thresholds import default_distance_threshold

logger = logging.getLogger(__name__)

MAX_DISTANCE = 2.0


def confidence(distance: float, threshold: float) -> float:
    distance = min(max(distance, 0.0), MAX_DISTANCE)
    if is_match_by_distance(distance=distance, threshold=threshold):  # the matching side
        value = 1.0 - 0.5 * distance / threshold if threshold > 0 else 0.5
    else:
        value = 0.5 * (MAX_DISTANCE - distance) / (MAX_DISTANCE - threshold)
    return round(value, 6)


@dataclass
class PairVerifyResult:
    verified: bool
    distance: float
    threshold: float
    confidence: float
    model: str
    processing_time_ms: int
    #: The calibrated outcome (voiceprint.decision) at the same threshold; `verified` keeps
    #: the seed's rule, distance <= threshold.
    decision: Outcome
    #: Of audio2, the probe (audio1 plays the enrolled voice).
    quality: engine.ProbeQuality
    #: The countermeasure's verdict on audio2, when it was asked for.
    spoof: SpoofCheck | None = None


def pair_verify(
    tenant: Tenant,
    *,
    audio1: bytes,
    audio2: bytes,
    engine_name: str | None,
    threshold: float | None,
    anti_spoofing: bool = False,
) -> PairVerifyResult:
    """1:1 between two recordings, both embedded by the engine of the first (no stored
    voice is involved; `tenant` is who asked, for the audit log). With `anti_spoofing`
    the probe (audio2) is checked, and a spoofed probe is never verified."""
    started = time.perf_counter()
    first = audio_embed(audio=audio1, engine_name=engine_name).embedding
    second = audio_embed(
        audio=audio2, engine_name=first.model, anti_spoofing=anti_spoofing
    ).embedding
    distance = round(1.0 - cosine_similarity(first.vector, second.vector), 6)
    threshold = default_distance_threshold(first.model) if threshold is None else threshold
    outcome = _calibrated_outcome([None], np.atleast_2d(first.vector), second, threshold)
    spoof = spoof_check(second)
    if spoof is not None and spoof.is_spoof:
        outcome = "spoof"
    audit_record(tenant, action="voice_api.verify", object_type="recording", outcome=outcome)
    return PairVerifyResult(
        verified=outcome != "spoof"
        and is_match_by_distance(distance=distance, threshold=threshold),
        distance=distance,
        threshold=threshold,
        confidence=confidence(distance, threshold),
        model=first.model,
        processing_time_ms=elapsed_ms(started),
        decision=outcome,
        quality=second.quality,
        spoof=spoof,
    )


def _calibrated_outcome(
    voices: list, centroids: np.ndarray, probe: engine.EmbeddingResult, distance_threshold: float
) -> Outcome:
    """The Voiceprint API's decision for `probe` among `voices`, at the cosine threshold
    that `distance_threshold` states."""
    scorer = load_scorer(probe.model)
    ranked = score_voices(
        voices,
        centroids=centroids,
        thresholds=[1.0 - distance_threshold] * len(voices),
        probe=probe,
        scorer=scorer,
    )
    return decide(ranked, scorer).outcome


@dataclass
class StoreMatch:
    voice: Voice
    distance: float
    confidence: float
    match: bool


@dataclass
class StoreIdentifyResult:
    matches: list[StoreMatch]
    model: str
    processing_time_ms: int
    quality: engine.ProbeQuality
    #: The calibrated outcome among the matches (voiceprint.decision); each `match` keeps
    #: the seed's rule, distance <= threshold.
    decision: Outcome


def store_identify(
    tenant: Tenant,
    *,
    audio: bytes,
    store: str | None,
    engine_name: str | None,
    top_k: int,
    threshold: float | None,
) -> StoreIdentifyResult:
    """1:N over a whole store of the tenant, nearest first."""
    started = time.perf_counter()
    probe = audio_embed(audio=audio, engine_name=engine_name).embedding
    threshold = default_distance_threshold(probe.model) if threshold is None else threshold
    gallery = owned(Voice, tenant).filter(store=store or DEFAULT_STORE)
    nearest = voice_list_nearest(gallery, vector=probe.vector, engine_name=probe.model, top_k=top_k)
    matches = []
    for voice in nearest:
        distance = round(max(float(voice.distance), 0.0), 6)
        match = is_match_by_distance(distance=distance, threshold=threshold)
        matches.append(StoreMatch(voice, distance, confidence(distance, threshold), match))
    observability.count_identify(probe.model, "store", any(m.match for m in matches))
    outcome = _calibrated_outcome(list(nearest), voice_centroids(nearest), probe, threshold)
    audit_record(
        tenant, action="voice_api.identify", object_type="store", object_id=store or DEFAULT_STORE,
        outcome=outcome, details={"matches": [m.voice.voice_id for m in matches if m.match]},
    )  # fmt: skip
    return StoreIdentifyResult(matches, probe.model, elapsed_ms(started), probe.quality, outcome)


def _gender_head(model: str):
    """The engine's gender head; one that fails to load leaves the attribute out."""
    try:
        return load_gender_head(model)
    except engine.EngineError as exc:
        logger.warning("gender head of %s unavailable: %s", model, exc)
        return None


def _classify(model_ref: str, waveform: np.ndarray) -> dict | None:
    try:
        return classify(model_ref, waveform)
    except Exception as exc:  # an optional extra: degrade, as the seed describes
        logger.warning("audio classifier %s failed: %s", model_ref, exc)
        return None


def recording_analyze(
    *, audio: bytes, engine_name: str | None, actions: list[str]
) -> tuple[dict, str, int]:
    """The attributes among `actions` (all when empty) that can be computed; 501 when none."""
    started = time.perf_counter()
    embedded = audio_embed(audio=audio, engine_name=engine_name)
    model = embedded.embedding.model
    asked = actions or ["age", "gender", "emotion"]
    found: dict[str, dict] = {}
    if "gender" in asked:
        head = _gender_head(model)
        if head is not None:
            found["gender"] = head.predict(embedded.embedding.vector)
    classifier_models = {
        "emotion": engine.current_settings().emotion_model,
        "age": engine.current_settings().age_model,
    }
    waveform = None
    for action in ("age", "emotion"):
        if action in asked and classifier_models[action]:
            if waveform is None:
                waveform = engine.decode_audio(embedded.wav)
            result = _classify(classifier_models[action], waveform)
            if result is not None:
                found[action] = result
    if not found:
        raise ApiError(
            ErrorCode.NOT_IMPLEMENTED,
            f"none of {', '.join(asked)} can be computed with model {model!r} on this server",
        )
    return found, model, elapsed_ms(started)
