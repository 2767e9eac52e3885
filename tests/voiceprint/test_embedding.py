"""What a worker's reply becomes on the web side (voiceprint.embedding); the round trip
through a real worker is tests/integration/test_celery_worker.py."""

from __future__ import annotations

import pytest

import engine
from voiceprint.embedding import _result_from_payload

PAYLOAD = {
    "vector": [0.6, 0.8],
    "model": "ge2e",
    "dim": 2,
    "speech_seconds": 1.5,
    "duration_seconds": 2.0,
    "quality": {"speech_seconds": 1.5, "snr_db": 14.2, "clipping": 0.0013},
}


def test_the_reply_carries_the_probe_quality():
    result = _result_from_payload(PAYLOAD)

    assert result.quality == engine.ProbeQuality(speech_seconds=1.5, snr_db=14.2, clipping=0.0013)


def test_a_reply_of_an_older_worker_is_unavailable_not_an_internal_error():
    older = {key: value for key, value in PAYLOAD.items() if key != "quality"}

    with pytest.raises(engine.EngineUnavailableError, match="older release"):
        _result_from_payload(older)


def test_too_little_speech_in_the_worker_is_still_insufficient_speech():
    reply = {"error": "InsufficientSpeechError", "speech_seconds": 0.4, "minimum_seconds": 1.0}

    with pytest.raises(engine.InsufficientSpeechError) as caught:
        _result_from_payload(reply)
    assert (caught.value.speech_seconds, caught.value.minimum_seconds) == (0.4, 1.0)
