"""Fixtures of the operations tests (metrics, logs, OpenAPI)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """Uploaded audio goes to a fresh folder, never to var/."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def enroll_audio(shared_audio) -> bytes:
    return (shared_audio / "zh" / "enroll" / "fangjun-sr-1.wav").read_bytes()


@pytest.fixture
def probe_audio(shared_audio) -> bytes:
    return (shared_audio / "zh" / "test" / "fangjun-test-sr-1.wav").read_bytes()
