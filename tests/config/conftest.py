"""Fixtures of the operations tests (metrics, logs, OpenAPI)."""

from __future__ import annotations

import pytest

from tests.conftest import HELD_OUT_AUDIO


@pytest.fixture
def enroll_audio(shared_audio) -> bytes:
    """One speaker the default threshold was not chosen on (tests/conftest.py HELD_OUT_AUDIO)."""
    return (HELD_OUT_AUDIO / "speaker1_a_en_16k.wav").read_bytes()


@pytest.fixture
def probe_audio(shared_audio) -> bytes:
    """The same speaker, another recording: 0.86 against `enroll_audio` with ge2e (the
    default threshold: 0.75)."""
    return (HELD_OUT_AUDIO / "speaker1_b_en_16k.wav").read_bytes()
