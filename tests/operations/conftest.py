"""Fixtures of the operations tests (metrics, logs, OpenAPI)."""

from __future__ import annotations

import pytest


@pytest.fixture
def enroll_audio(shared_audio) -> bytes:
    return (shared_audio / "zh" / "enroll" / "fangjun-sr-1.wav").read_bytes()


@pytest.fixture
def probe_audio(shared_audio) -> bytes:
    return (shared_audio / "zh" / "test" / "fangjun-test-sr-1.wav").read_bytes()
