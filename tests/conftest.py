"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import soundfile
from rest_framework.test import APIClient

pytest_plugins = ["tests.offline", "tests.local_servers"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The shared material (../shared/README.md); VOICEPRINT_SHARED_DIR points elsewhere, e.g.
#: at a missing folder to see what the suite does without it.
SHARED_DIR = Path(os.environ.get("VOICEPRINT_SHARED_DIR") or PROJECT_ROOT.parent / "shared")
SHARED_AUDIO = SHARED_DIR / "audio"
#: The default ge2e threshold (0.75, README "Choosing a threshold") is the EER point measured
#: on zh/enroll + zh/test (fangjun, leijun, liudehua) and on every LibriSpeech speaker here.
#: Only the 3D-Speaker trial files took no part in choosing it: tests of a decision at the
#: default threshold use them (speaker1_a/_b one person, speaker2_a another; _cn and _en).
HELD_OUT_AUDIO = SHARED_AUDIO / "zh" / "test" / "3d-speaker"


def require_shared(path: Path = SHARED_AUDIO / "zh") -> Path:
    """`path` inside the shared material. Without it a test skips, saying why, except when
    the environment variable CI is set: then it fails, so CI never passes without the data."""
    if not path.exists():
        reason = f"shared material not found: {path} (../shared, or VOICEPRINT_SHARED_DIR)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so it must be there", pytrace=False)
        pytest.skip(reason)
    return path


def require_espeak() -> None:
    """Skips without espeak-ng (the anti-spoofing material's synthetic speech), saying why;
    under CI, which installs it (.ci/run), fails instead."""
    if shutil.which("espeak-ng") is None:
        reason = "espeak-ng is not installed (apt-get install espeak-ng)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so it must be there", pytrace=False)
        pytest.skip(reason)


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
    """The real speech in ../shared/audio (see `require_shared` when it is missing)."""
    require_shared(SHARED_AUDIO / "zh")
    require_shared(SHARED_AUDIO / "librispeech-train-clean-100")
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


def redis_caches(location: str, prefix: str) -> dict:
    """settings.CACHES with the default cache in the Redis at `location`, as in production."""
    options = {"socket_connect_timeout": 1, "socket_timeout": 1}
    backend = "django.core.cache.backends.redis.RedisCache"
    return {"default": {"BACKEND": backend, "LOCATION": location, "KEY_PREFIX": prefix,
                        "OPTIONS": options}}  # fmt: skip


@pytest.fixture
def counts_in_redis(settings):
    """Every limit counted in the default cache (rates, failed authentications, enrollments)
    counting in the real Redis, under a key prefix of this test's own."""
    import uuid

    import redis

    from tests.integration.conftest import REDIS_URL, require_redis

    require_redis()
    prefix = f"voiceprint-test-{uuid.uuid4().hex[:8]}"
    settings.CACHES = redis_caches(REDIS_URL, prefix)
    yield
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
