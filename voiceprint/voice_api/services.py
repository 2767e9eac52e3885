"""The Voice API's decisions, on the same store as the Voiceprint API.

Its threshold is a cosine *distance* (1 - similarity); `confidence` falls from 1 at
distance 0 through 0.5 at the threshold to 0 at distance 2 (opposite vectors), linearly
on each side.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

import engine
from config import observability
from core.exceptions import ApiError, ErrorCode
from engine.attributes import load_gender_head
from engine.audio_classifiers import classify
from tenancy.models import Tenant
from tenancy.scoping import get_owned, owned
from voiceprint import services
from voiceprint.models import DEFAULT_STORE, Voice
from voiceprint.selectors import nearest_voices
from voiceprint.thresholds import default_distance_threshold

logger = logging.getLogger(__name__)

MAX_DISTANCE = 2.0


def confidence(distance: float, threshold: float) -> float:
    distance = min(max(distance, 0.0), MAX_DISTANCE)
    if distance <= threshold:
        value = 1.0 - 0.5 * distance / threshold if threshold > 0 else 0.5
    else:
        value = 0.5 * (MAX_DISTANCE - distance) / (MAX_DISTANCE - threshold)
    return round(value, 6)


@dataclass
class PairVerdict:
    verified: bool
    distance: float
    threshold: float
    confidence: float
    model: str
    processing_time_ms: int


def verify_pair(
    audio1: bytes, audio2: bytes, engine_name: str | None, threshold: float | None
) -> PairVerdict:
    started = time.perf_counter()
    first = services.embed(audio1, engine_name).embedding
    second = services.embed(audio2, first.model).embedding
    distance = round(1.0 - float(np.dot(first.vector, second.vector)), 6)
    threshold = default_distance_threshold(first.model) if threshold is None else threshold
    return PairVerdict(
        verified=distance <= threshold,
        distance=distance,
        threshold=threshold,
        confidence=confidence(distance, threshold),
        model=first.model,
        processing_time_ms=services.elapsed_ms(started),
    )


def embed(audio: bytes, engine_name: str | None) -> engine.EmbeddingResult:
    return services.embed(audio, engine_name).embedding


def register(
    tenant: Tenant,
    audio: bytes,
    *,
    name: str,
    labels: dict[str, str] | None,
    store: str | None,
    engine_name: str | None,
) -> Voice:
    """A voice of the shared store (visible in GET /v1/voiceprint/voices), bound to no device."""
    return services.enroll_voice(
        tenant=tenant,
        audio=audio,
        name=name,
        labels=labels,
        store=store or DEFAULT_STORE,
        engine_name=engine_name,
    )


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


def identify_in_store(
    tenant: Tenant,
    audio: bytes,
    *,
    store: str | None,
    engine_name: str | None,
    top_k: int,
    threshold: float | None,
) -> StoreIdentifyResult:
    """1:N over a whole store of the tenant, nearest first."""
    started = time.perf_counter()
    probe = services.embed(audio, engine_name).embedding
    threshold = default_distance_threshold(probe.model) if threshold is None else threshold
    gallery = owned(Voice, tenant).filter(store=store or DEFAULT_STORE)
    matches = []
    for voice in nearest_voices(gallery, probe.vector, probe.model, top_k):
        distance = round(max(float(voice.distance), 0.0), 6)
        matches.append(
            StoreMatch(voice, distance, confidence(distance, threshold), distance <= threshold)
        )
    observability.count_identify(probe.model, "store", any(m.match for m in matches))
    return StoreIdentifyResult(matches, probe.model, services.elapsed_ms(started))


def forget(tenant: Tenant, voice_id: str) -> None:
    services.delete_voice(get_owned(Voice, tenant, "voice", voice_id=voice_id))


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


def analyze(audio: bytes, engine_name: str | None, actions: list[str]) -> tuple[dict, str, int]:
    """The attributes among `actions` (all when empty) that can be computed; 501 when none."""
    started = time.perf_counter()
    embedded = services.embed(audio, engine_name)
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
    return found, model, services.elapsed_ms(started)
