"""Optional utterance classifiers (emotion, age) from transformers checkpoints.

They are an extra (`pip install ".[analysis]"`): without transformers, or without a
checkpoint configured (VOICEPRINT_EMOTION_MODEL, VOICEPRINT_AGE_MODEL) or loadable, the
attribute is simply not offered. The checkpoint must have a plain
`AutoModelForAudioClassification` head.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_pipelines: dict[str, Any] = {}
SAMPLE_RATE = 16000


def _pipeline(model_ref: str) -> Any | None:
    with _lock:
        if model_ref not in _pipelines:
            _pipelines[model_ref] = _load(model_ref)
        return _pipelines[model_ref]


def _load(model_ref: str) -> Any | None:
    try:
        from transformers import pipeline
    except ImportError:
        logger.warning("transformers is not installed; %s is not available", model_ref)
        return None
    try:
        return pipeline("audio-classification", model=model_ref, device=-1)
    except Exception as exc:  # offline, missing files, wrong head: degrade, never fail
        logger.warning("audio classifier %s cannot be loaded: %s", model_ref, exc)
        return None


def classify(model_ref: str, waveform: np.ndarray) -> dict | None:
    """`{"label", "scores"}` for a 16 kHz waveform, or None when the model is unavailable."""
    if not model_ref:
        return None
    classifier = _pipeline(model_ref)
    if classifier is None:
        return None
    predictions = classifier({"raw": waveform, "sampling_rate": SAMPLE_RATE}, top_k=None)
    scores = {p["label"]: round(float(p["score"]), 6) for p in predictions}
    return {"label": max(scores, key=scores.get), "scores": scores}
