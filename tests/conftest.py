"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile
from rest_framework.test import APIClient

pytest_plugins = ["tests.local_servers"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"
SHARED_AUDIO = SHARED_DIR / "audio"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """A test database per pytest process, so that two runs on one embedded server (a
    developer's `make test` beside another) never drop each other's database."""
    from django.conf import settings

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        f"test_{settings.DATABASES['default']['NAME']}_{os.getpid()}"
    )


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    """Enrollment audio goes to a fresh folder per test, never to var/."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def stored_files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


@pytest.fixture
def decoded_frames(monkeypatch) -> dict[soundfile.SoundFile, int]:
    """Frames libsndfile handed over, per opened file: the decoding work of a test, counted
    rather than timed (a spy on SoundFile.read; every read still happens)."""
    frames: dict[soundfile.SoundFile, int] = {}
    real_read = soundfile.SoundFile.read

    def counting_read(self, *args, **kwargs):
        block = real_read(self, *args, **kwargs)
        frames[self] = frames.get(self, 0) + len(block)
        return block

    monkeypatch.setattr(soundfile.SoundFile, "read", counting_read)
    return frames


@pytest.fixture
def shared_audio() -> Path:
    """The real speech in ../shared/audio; tests that need it skip, saying why, without it."""
    if not (SHARED_AUDIO / "zh").is_dir():
        pytest.skip(f"real speech not found at {SHARED_AUDIO} (../shared/audio)")
    return SHARED_AUDIO


def make_client(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def tenant_and_token(db):
    from tenancy.services import tenant_create

    tenant, issued = tenant_create(name="acme")
    return tenant, issued.plaintext


@pytest.fixture
def tenant(tenant_and_token):
    return tenant_and_token[0]


@pytest.fixture
def api(tenant_and_token) -> APIClient:
    """An API client authenticated as tenant "acme"."""
    return make_client(tenant_and_token[1])


@pytest.fixture
def other_api(db) -> APIClient:
    """An API client of a second tenant, for isolation tests."""
    from tenancy.services import tenant_create

    _, issued = tenant_create(name="globex")
    return make_client(issued.plaintext)
